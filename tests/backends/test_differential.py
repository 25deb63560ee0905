"""Random small valid specs (tests/differential.py), each built four ways (fx and reference,
with and without passes) from one state_dict: the same logits and gradients as the
reference interpreter without passes, in float32 (1e-5) and float64 (1e-10)."""

from __future__ import annotations

import pytest
import torch

from differential import compare, random_spec

pytestmark = pytest.mark.usefixtures("one_thread")


def _check(seed: int, dtype: torch.dtype) -> None:
    text = random_spec(seed)
    bad = [d for d in compare(text, dtype, seed) if not d.ok]
    assert not bad, f"{bad}\n{text}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("seed", range(30))
def test_random_specs_agree_every_way(seed: int, dtype: torch.dtype) -> None:
    _check(seed, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("seed", range(30, 330))
def test_more_random_specs_differential(seed: int, dtype: torch.dtype) -> None:
    _check(seed, dtype)


def test_the_comparison_can_fail() -> None:
    """One way built wrong (a parameter nudged by 1e-6 after loading) is caught, the others
    still agree."""
    import hcdsl
    from differential import WAYS

    def nudged(text: str, **kw: object) -> torch.nn.Module:
        model = hcdsl.compile(text, **kw)
        if (kw["backend"], kw["passes"]) == ("fx", None):
            load = model.load_state_dict

            def load_then_nudge(state, strict=True):  # noqa: ANN001, ANN202
                out = load(state, strict=strict)
                with torch.no_grad():
                    next(model.parameters()).add_(1e-6)
                return out

            model.load_state_dict = load_then_nudge
        return model

    diffs = compare(random_spec(0), torch.float64, 0, build=nudged)
    assert [d.ok for d in diffs] == [w != ("fx", None) for w in WAYS], diffs
