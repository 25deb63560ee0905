"""The traced Sinkhorn-Knopp steps (hcdsl.nn.sinkhorn._inline) that a compiled graph without
autograd runs instead of the op (decoding): the same matrices as the op, and the op (with its
backward) wherever a gradient is needed. The reference is a plain loop over exp(logits)."""

from __future__ import annotations

import pytest
import torch

from hcdsl.nn import sinkhorn as S


def loop(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """exp, then column then row normalisation, `iters` times (arXiv 2512.24880 Eq. 9)."""
    m = logits.exp()
    for _ in range(iters):
        m = m / m.sum(-2, keepdim=True)
        m = m / m.sum(-1, keepdim=True)
    return m


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (3, 5, 4, 4), (7, 3, 3), (2, 8, 8)])
def test_inline_steps_equal_the_loop_and_the_op(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64) * 2
    got = S._inline(x, 20)
    assert (got - loop(x, 20)).abs().max().item() < 1e-14
    assert (got - torch.ops.hcdsl.sinkhorn(x, 20)).abs().max().item() < 1e-14
    x32 = x.float()
    assert (S._inline(x32, 20) - torch.ops.hcdsl.sinkhorn(x32, 20)).abs().max().item() < 1e-6
    assert S._inline(x.half(), 3).dtype == torch.float16


@pytest.mark.slow
def test_compiled_without_autograd_traces_the_steps_and_with_autograd_keeps_the_op() -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 1, 4, 4)

    def f(t: torch.Tensor) -> torch.Tensor:
        return S.sinkhorn(S.sinkhorn(t, 20) + t, 20)

    g = torch.compile(f, fullgraph=True)
    with torch.no_grad():
        assert (g(x) - f(x)).abs().max().item() < 1e-5
    xg = x.clone().requires_grad_()
    w = torch.randn(2, 1, 4, 4)
    (grad,) = torch.autograd.grad((g(xg) * w).sum(), xg)
    xe = x.clone().requires_grad_()
    (want,) = torch.autograd.grad((f(xe) * w).sum(), xe)
    assert (grad - want).abs().max().item() < 1e-5
