"""The Sinkhorn op on its (n, n, N) layout with in-place steps (hcdsl/nn/sinkhorn.py) and both
Sinkhorn orders a generator runs (hcdsl/nn/generator.py `_sinkhorn`): the paper's (mHC,
arXiv 2512.24880 Eq. 9: exp, then `iters` rounds of column then row normalisation, on
H_res = RESᵀ) and the softmax-first one (DeepSeek-V4: a softmax over each row of RES + eps,
then columns, then (iters - 1) row/column rounds, eps in every denominator).

The reference is written here in numpy, in the plain domain and float64, independent of the
code under test; gradients are checked with torch.autograd.gradcheck in float64. The in-place
steps must never write the caller's tensors (the op is registered as mutating nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hcdsl.lang.generator import Constraint
from hcdsl.nn.generator import _sinkhorn
from hcdsl.nn.sinkhorn import sinkhorn

pytestmark = pytest.mark.usefixtures("one_thread")


def ref_paper(logits: np.ndarray, iters: int) -> np.ndarray:
    """exp, then `iters` times: columns sum to 1, rows sum to 1 (of each (n, n) matrix)."""
    m = np.exp(logits)
    for _ in range(iters):
        m = m / m.sum(axis=-2, keepdims=True)
        m = m / m.sum(axis=-1, keepdims=True)
    return m


def ref_softmax_rows(logits: np.ndarray, iters: int, eps: float) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    m = e / e.sum(axis=-1, keepdims=True) + eps
    m = m / (m.sum(axis=-2, keepdims=True) + eps)
    for _ in range(iters - 1):
        m = m / (m.sum(axis=-1, keepdims=True) + eps)
        m = m / (m.sum(axis=-2, keepdims=True) + eps)
    return m


def logits_of(shape: tuple[int, ...], std: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * std


SHAPES = [(4, 4), (1, 4, 4), (1, 1, 4, 4), (3, 1, 1), (2, 5, 2, 2), (8, 16, 4, 4), (6, 8, 8)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("iters", [1, 2, 20])
def test_op_equals_the_numpy_reference(shape: tuple[int, ...], iters: int) -> None:
    x = logits_of(shape, 1.5, seed=iters)
    want = ref_paper(x.numpy(), iters)
    got = sinkhorn(x, iters)
    assert got.shape == x.shape and got.is_contiguous()
    assert np.abs(got.numpy() - want).max() <= 1e-14
    assert np.abs(sinkhorn(x.float(), iters).double().numpy() - want).max() <= 1e-6
    # not the answer for another count: the count is really used (a 1 x 1 matrix is always 1)
    if iters < 20 and shape[-1] > 1:
        assert np.abs(got.numpy() - ref_paper(x.numpy(), iters + 1)).max() > 1e-6


@pytest.mark.parametrize("order", ["paper", "softmax_rows"])
@pytest.mark.parametrize("iters", [1, 3, 20])
def test_both_orders_equal_the_reference(order: str, iters: int) -> None:
    """A generator's RES (B, T, n, n): the paper's order on H_res = RESᵀ, the softmax-first
    order on RES itself."""
    eps = 1e-3  # large enough that its placement shows (the bundled specs use 1e-6)
    x = logits_of((2, 7, 4, 4), 1.0, seed=iters)
    got = _sinkhorn(x, Constraint(kind="sinkhorn", order=order, iters=iters, eps=eps))
    xn = x.numpy()
    if order == "paper":
        want = ref_paper(xn.swapaxes(-1, -2), iters).swapaxes(-1, -2)
    else:
        want = ref_softmax_rows(xn, iters, eps)
    assert np.abs(got.numpy() - want).max() <= 1e-14
    other = ref_softmax_rows(xn, iters, eps) if order == "paper" else \
        ref_paper(xn.swapaxes(-1, -2), iters).swapaxes(-1, -2)
    assert np.abs(got.numpy() - other).max() > 1e-4  # the two orders differ


@pytest.mark.parametrize("order", ["paper", "softmax_rows"])
@pytest.mark.parametrize("shape", [(3, 3), (1, 4, 4), (2, 3, 4, 4)],
                         ids=["3x3", "1x4x4", "2x3x4x4"])
def test_gradcheck_float64(order: str, shape: tuple[int, ...]) -> None:
    c = Constraint(kind="sinkhorn", order=order, iters=5, eps=1e-6)
    x = logits_of(shape, 1.5, seed=len(shape)).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: _sinkhorn(t, c), (x,))


@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4), (1, 1, 4, 4), (5, 4, 4)],
                         ids=lambda s: "x".join(map(str, s)))
def test_inputs_are_never_written(shape: tuple[int, ...]) -> None:
    """The steps divide in place on the op's own buffers: the logits and the incoming gradient
    are unchanged, also where the (n, n, N) layout is a view of them (N = 1), and for a
    transposed (non-contiguous) input as the paper's order passes it."""
    for make in (lambda t: t, lambda t: t.transpose(-1, -2)):
        base = logits_of(shape, 1.0)
        x = make(base.clone()).requires_grad_()
        before = x.detach().clone()
        out = sinkhorn(x, 20)
        grad = logits_of(shape, 1.0, seed=1)
        grad_before = grad.clone()
        out.backward(grad)
        assert torch.equal(x.detach(), before) and torch.equal(grad, grad_before)
        assert np.abs(out.detach().numpy() - ref_paper(before.numpy(), 20)).max() <= 1e-14
        y = before.clone().requires_grad_()
        want = torch.from_numpy(ref_paper(y.detach().numpy(), 20))
        assert want.shape == out.shape
        # and the gradient is the reference's (autograd through a torch copy of the numpy loop)
        m = y.exp()
        for _ in range(20):
            m = m / m.sum(-2, keepdim=True)
            m = m / m.sum(-1, keepdim=True)
        m.backward(grad)
        assert (x.grad - y.grad).abs().max() <= 1e-13
