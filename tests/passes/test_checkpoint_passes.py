"""A checkpoint does not depend on the pass settings: the modules come from the IR before
passes, so a state_dict saved with the optimiser on loads strictly with it off, and back,
and the two compute the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.passes.pipeline import DEFAULT

# layer 2's output is written with weight 0 and never read: the optimiser prunes it
DEAD = """model dead {
  dim = 16
  vocab = 32
  layer a = attention(heads=2)
  layer f = mlp
  body = [a, f]
  connect hyper(n=1, fixed) { all = [[0, 1], [1, 1]] layer 2 = [[0, 0], [1, 1]] }
}
"""
SPECS = Path(__file__).resolve().parents[2] / "specs"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_optimiser_prunes_the_dead_layer() -> None:
    ir = hcdsl.lower(DEAD)
    assert "L2.f" not in ir.g and "L2.f" in hcdsl.lower(DEAD, passes=None).g


@pytest.mark.parametrize("backend", ["fx", "reference"])
@pytest.mark.parametrize(("save", "load"), [("default", "none"), ("none", "default")])
def test_a_checkpoint_loads_strictly_across_pass_settings(
        save: str, load: str, backend: str, tmp_path: Path) -> None:
    passes = {"default": DEFAULT, "none": None}
    a = hcdsl.compile(DEAD, seed=1, passes=passes[save], backend=backend)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn_like(p))
    torch.save(a.state_dict(), tmp_path / "a.pt")
    b = hcdsl.compile(DEAD, seed=2, passes=passes[load], backend=backend)
    b.load_state_dict(torch.load(tmp_path / "a.pt", weights_only=True), strict=True)
    x = torch.randint(0, 32, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (a(x) - b(x)).abs().max().item() <= 1e-5


def test_dead_modules_stay_but_are_frozen() -> None:
    m = hcdsl.compile(DEAD, seed=0)
    frozen = {n for n, p in m.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(("L2_f.", "L2_norm.")) for n in frozen)
    x = torch.randint(0, 32, (2, 6))
    m(x).sum().backward()  # the frozen parameters get no gradient, and nothing complains
    assert all(p.grad is None for n, p in m.named_parameters() if n in frozen)


@pytest.mark.parametrize("name", ["tiny_dhc4.hc", "families/mudd_tiny.hc",
                                  "duality/hc_parallel_n2.hc", "custom/laurel_lr.hc",
                                  "families/attnres_tiny.hc", "families/mhc_tiny_paper4.hc"])
def test_state_dict_keys_do_not_depend_on_passes(name: str) -> None:
    with torch.device("meta"):
        keys = [set(hcdsl.compile(SPECS / name, passes=p).state_dict())
                for p in (DEFAULT, None)]
    assert keys[0] == keys[1]


def test_the_same_seed_gives_the_same_weights_with_and_without_passes() -> None:
    a = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=3).state_dict()
    b = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=3, passes=None).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
