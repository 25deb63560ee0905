"""torch.autograd.gradcheck in float64, one tiny model per family: the analytic gradients of
every parameter (moved off its init, so zero gates and identity matrices hide nothing)
match finite differences. A module that computes in float32 inside a float64 model fails
here, as its gradients carry float32 rounding."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

import hcdsl
from helpers import model_text, perturb

def tiny(connect: str, prelude: str = "") -> str:
    return model_text(connect, name="tiny", dim=8, vocab=16, prelude=prelude, body="[a, f]",
                      layers=(("a", "attention(heads=2)"), ("f", "mlp(hidden=16)")))
LRW = """connection lrw {
  param alpha = scalar(init=1, bound=double)
  param beta = scalar(init=0.5, bound=unit)
  param gamma = 1
  all = [[0, alpha], [gamma, beta]]
}"""
FAMILIES = {
    "residual pre": "residual",
    "residual post": "residual(post)",
    "parallel": "parallel(separate)",
    "hyper static": "hyper(n=2, static)",
    "hyper dynamic": "hyper(n=2, dynamic)",
    "frac": "frac(m=2, dynamic)",
    "mudd": "mudd",
    "denseformer": "denseformer",
    "attnres": "attnres",
    "user connection with params": "lrw",
    "mhc": "mhc(n=2, iters=4)",
}

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("family", FAMILIES)
def test_gradients_match_finite_differences_in_float64(family: str) -> None:
    connect = FAMILIES[family]
    spec = tiny(connect, LRW if connect == "lrw" else "")
    model = hcdsl.compile(spec, seed=0, dtype=torch.float64)
    perturb(model, seed=1)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = tuple(dict(model.named_parameters())[n].detach().clone().requires_grad_()
                   for n in names)
    tokens = torch.tensor([[1, 5, 9, 14]])

    def logits(*values: torch.Tensor) -> torch.Tensor:
        return functional_call(model, dict(zip(names, values)), (tokens,))

    assert all(p.dtype == torch.float64 for p in params)
    assert torch.autograd.gradcheck(logits, params, eps=1e-6, atol=1e-6, rtol=1e-5,
                                    fast_mode=True)


@pytest.mark.parametrize("backend", ["fx", "reference"])
def test_literal_constants_stay_exact_when_the_model_is_converted(backend: str) -> None:
    """A float32 model converted with .double() holds its literal matrix entries exactly
    (the fx GraphModule reads them from the ConstCoef itself, not from a float32 copy)."""
    spec = ("model m { dim = 8 vocab = 16 layer a = mlp body = [a, a] connect hyper(n=1, "
            "fixed) { all = [[0, 0.1], [1, 0.3]] } }")
    model = hcdsl.compile(spec, seed=0, passes=None, backend=backend).double()
    values = {round(v, 20) for n, b in model.named_buffers() if n.endswith(".value")
              for v in b.flatten().tolist()}
    assert values == {0.0, 0.1, 1.0, 0.3}
