"""mHC's one-GEMM step (GeneratorCoef._mhc_step, φ read as stored) against the generator's
general path (the views: φ_res's columns and b_res reordered to RES, Sinkhorn on the
transpose), in float64 at perturbed weights, values and gradients; and which records take it."""

from __future__ import annotations

import torch

import hcdsl
from hcdsl.lang.generator import GenOut
from hcdsl.nn.generator import GeneratorCoef, is_mhc
from hcdsl.schemes.mhc import mhc_generator

SPEC = """model m {
 dim = 16
 vocab = 64
 layer ffn = mlp
 body = repeat 2 [ffn]
 connect mhc(n=3, iters=7)
}
"""


def _step_generators() -> list[GeneratorCoef]:
    model = hcdsl.compile(SPEC, seed=0).double()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return [g for g in model.modules() if isinstance(g, GeneratorCoef) and g.role == "step"]


def test_mhc_step_equals_the_general_path() -> None:
    gens = _step_generators()
    assert gens and all(g.mhc_step for g in gens)
    for g in gens:
        h = torch.randn(2, 5, 3, 16, dtype=torch.float64, requires_grad=True)
        got = g(h)
        grads = torch.autograd.grad((got * torch.linspace(-1, 2, got.numel(), dtype=got.dtype)
                                     .reshape(got.shape)).sum(), [h, *g.parameters()])
        g.mhc_step = False
        want = g(h)
        ref = torch.autograd.grad((want * torch.linspace(-1, 2, want.numel(), dtype=want.dtype)
                                   .reshape(want.shape)).sum(), [h, *g.parameters()])
        assert (got - want).abs().max().item() < 1e-14
        assert max((a - b).abs().max().item() for a, b in zip(grads, ref)) < 1e-13
        # RES = H_resᵀ is doubly stochastic, H_pre in (0, 1): the path is mHC's
        assert torch.allclose(got[..., 1:, 1:].sum(-2), torch.ones(2, 5, 3, dtype=got.dtype))


def test_only_mhc_records_take_the_step_path() -> None:
    rec = mhc_generator(4, 8, 20, "paper", 0.01)
    assert is_mhc(rec)
    assert is_mhc(mhc_generator(3, 8, 5, "identity", 0.1))
    read = rec.output("read")
    tanh = rec.model_copy(update={"outputs": (read.model_copy(update={"act": "tanh"}),)
                                  + rec.outputs[1:]})
    assert not is_mhc(tanh)
    no_scale = rec.model_copy(update={"outputs": rec.outputs[:2] + (
        rec.outputs[2].model_copy(update={"scale": None}),)})
    assert not is_mhc(no_scale)
    assert not is_mhc(rec.model_copy(update={"outputs": rec.outputs[:2]}))
    assert isinstance(read, GenOut)
