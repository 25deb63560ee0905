"""Seeds: hcdsl.compile follows torch's global generator unless seed= is given (then every
node's weights depend on the seed and the node id only, and the global generator is left
as it was); `hcdsl run --seed` seeds the weights, the tokens and dropout, so its output
reproduces (the README's numbers)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from typer.testing import CliRunner

import hcdsl
from hcdsl.cli import app

SPEC = """
model seeds {
  dim = 16
  vocab = 32
  dropout = 0.1
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = repeat 2 [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_compile_follows_torch_manual_seed() -> None:
    torch.manual_seed(1)
    a = weights(hcdsl.compile(SPEC))
    torch.manual_seed(1)
    b = weights(hcdsl.compile(SPEC))
    torch.manual_seed(2)
    c = weights(hcdsl.compile(SPEC))
    assert same(a, b) and not same(a, c)


def test_seed_fixes_every_node_and_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(7)
    a = weights(hcdsl.compile(SPEC, seed=5))
    after = torch.rand(3)
    torch.manual_seed(8)
    b = weights(hcdsl.compile(SPEC, seed=5))
    torch.manual_seed(7)
    assert same(a, b) and torch.equal(after, torch.rand(3))  # the global draws untouched
    # per node: a node's weights do not depend on what else the IR holds
    other = weights(hcdsl.compile(SPEC.replace("repeat 2", "repeat 3"), seed=5))
    assert all(torch.equal(other[k], v) for k, v in a.items() if k.startswith(("L1_", "L2_")))
    assert not same(a, weights(hcdsl.compile(SPEC, seed=6)))


def run(path: Path, seed: int) -> list[str]:
    result = CliRunner().invoke(app, ["run", str(path), "--seed", str(seed), "--steps", "2"])
    assert result.exit_code == 0, result.stdout
    # the numbers, not the timings
    return re.findall(r"loss [0-9.]+", result.stdout)


def test_run_seed_reproduces(tmp_path: Path) -> None:
    """Weights, tokens and dropout: the same seed gives the same losses, step by step."""
    path = tmp_path / "seeds.hc"
    path.write_text(SPEC)
    first = run(path, 3)
    assert len(first) == 2 and first == run(path, 3)
    assert first != run(path, 4)
