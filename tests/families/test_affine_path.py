"""Dynamic HC's and FC's generators have two ways to their matrix M: the one-GEMM affine path
(eager, inference, and FC's split state) and the per-output path (a compiled training step of
dynamic HC, which Inductor partitions better: docs/optimiser.md "The presets against
1549c84"). Both must give the same M, and each call must take the path the rule names."""

from __future__ import annotations

import pytest
import torch

import hcdsl
from hcdsl.nn.generator import GeneratorCoef

from helpers import attn_ffn, model_text

DIM = 32


def generators(connect: str) -> list[GeneratorCoef]:
    text = model_text(connect, name="paths", dim=DIM, vocab=64,
                      settings="norm = rmsnorm(affine=true)",
                      layers=attn_ffn(2, "mlp(hidden=64, act=swiglu)"))
    model = hcdsl.compile(text, seed=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    mods = [m for m in model.modules() if isinstance(m, GeneratorCoef) and m.role == "step"]
    for mod in mods:
        for p in mod.parameters():  # away from init: W = 0 would hide a wrong projection
            p.data = p.data + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype)
    return mods


def states(mod: GeneratorCoef) -> torch.Tensor:
    return torch.randn(2, 5, mod.n, mod.width, generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64)


@pytest.mark.parametrize("connect,reads", [("hyper(n=4, dynamic)", 1),
                                           ("hyper(n=2, dynamic, tanh=false)", 1),
                                           ("frac(m=2, dynamic)", 2)])
def test_both_paths_give_the_same_matrix(connect: str, reads: int) -> None:
    mods = generators(connect)
    assert mods and all(m.affine_all and m.reads == reads for m in mods)
    for mod in mods:
        H = states(mod)
        affine = mod(H)
        mod.affine_all = False  # the per-output path
        try:
            per_output = mod(H)
        finally:
            mod.affine_all = True
        torch.testing.assert_close(affine, per_output, rtol=0, atol=1e-12)
        assert affine.shape[-2:] == (mod.n + reads, mod.n + reads)


@pytest.mark.parametrize("compiling,grad,connect,affine", [
    (False, True, "hyper(n=4, dynamic)", True),   # eager training
    (True, False, "hyper(n=4, dynamic)", True),   # compiled inference
    (True, True, "hyper(n=4, dynamic)", False),   # compiled training: per output
    (True, True, "frac(m=2, dynamic)", True),     # FC's split state: always affine
])
def test_the_path_each_call_takes(monkeypatch: pytest.MonkeyPatch, compiling: bool,
                                  grad: bool, connect: str, affine: bool) -> None:
    mod = generators(connect)[0]
    taken: list[bool] = []
    step = GeneratorCoef._affine_step

    def spy(self: GeneratorCoef, x: torch.Tensor) -> torch.Tensor:
        taken.append(True)
        return step(self, x)

    monkeypatch.setattr(GeneratorCoef, "_affine_step", spy)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    with torch.set_grad_enabled(grad):
        mod(states(mod))
    assert taken == ([True] if affine else [])
