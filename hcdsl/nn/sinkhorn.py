"""Sinkhorn-Knopp as one registered op: mHC's H_res (arXiv 2512.24880, §4.2, "Parameterization
and Manifold Projection").

mHC projects the residual mixing matrix onto the doubly stochastic matrices (the Birkhoff
polytope) with Sinkhorn-Knopp: M = exp(logits), then `iters` times normalise the columns, then
the rows (the paper uses t_max = 20). `sinkhorn(logits, iters)` computes exactly that; after
the last (row) step the rows sum to 1 to rounding, the columns to within the truncation error
of `iters` rounds.

Why an op. Written as 2 x iters Python-level steps, `torch.compile` unrolls every step of every
layer into the graph: the bundled 4-layer tiny mHC specs took 53-100 s to compile their first
training step cold on 2 shared cores, 22-48 s with the op (Pre-Norm: 15 s;
benchmarks/README.md, "Sinkhorn-Knopp as one op"). `torch.ops.hcdsl.sinkhorn` is a
`torch.library.custom_op`: dynamo, AOTAutograd and inductor see one node in the forward graph
and one (`hcdsl::sinkhorn_backward`) in the backward graph, and run this module's kernels for
them.

Numerics (stable, and equal to the log-domain iteration). A column step in the log domain is
x - logsumexp(x, dim=-2) = log_softmax(x, dim=-2), and exp of it is exp(x) / colsum(exp(x)):
the two domains give the same matrix, the log domain only protects exp(logits) from overflow
and the sums from underflow. So the first column and row steps run in the log domain, and the
remaining 2 (iters - 1) steps in the plain domain, where they are now safe: after one
log-domain round, every entry is in [0, 1] and every row and column has an entry >= 1/n^2, and
each later step keeps that (the normalised axis has an entry >= 1/n, the sums along the other
axis are in [1/n^2, n]), so no sum is ever 0 or inf. Every entry equals the all-log-domain
result to rounding (measured: <= 3e-7 in float32 against the all-log-domain loop, the same as
log_softmax against logsumexp; entries below the dtype's smallest normal, 1e-38 in float32,
are flushed, as the final exp flushes them anyway). Why not the log domain throughout: on the
(n, n, N) layout below, a log_softmax over an axis of n = 4 costs 2.6x a sum plus an in-place
divide (29 us against 11 us at N = 1024, float32, one thread; the old (N, n, n) layout: 135 us
against 74 us), so the plain-domain steps save ~0.7 ms of a 20-iteration forward at that N.

Layout (docs/optimiser.md, "The Sinkhorn op's layout"): the op permutes its (..., n, n) input
once to (n, n, N), N the number of matrices, contiguous, so every column or row sum adds n
contiguous rows of N values (vectorised over the matrices, where the (..., n, n) layout reduces
n-element runs one matrix at a time) and every divide broadcasts over N; the plain-domain steps
of the forward divide in place in one buffer. The steps, their order and the sums are the same:
float64 results equal the (..., n, n) loop's (bit-equal at n = 4, within 3e-16 at n = 8),
float32 within 1.5e-7 (log_softmax's vectorised kernel over a non-last axis). One forward +
backward at 8 x 128 x 4 x 4, float32, one thread: 9.0 ms -> 2.0 ms CPU time.

Backward (chosen by measurement, benchmarks/README.md "Sinkhorn-Knopp as one op"):
recomputation, as the paper itself recomputes mHC's intermediates in the backward (§4.3.2).
The op saves only its input; the backward re-runs the steps keeping each step's
matrix P_k = exp(y_k) (y_k = log_softmax of the step's input), then walks them back with
log_softmax's exact vector-Jacobian product g <- g - P_k * sum(g) along the step's axis (in
place on g). That is the gradient of the unrolled loop (equal to rounding; float64 gradcheck
passes), for one more forward inside the backward, and the 2 x iters (..., n, n) tensors that
autograd through the loop keeps alive from forward to backward (25 MiB per layer at batch
16 x 512, n = 4) live only inside one layer's backward. Implicit differentiation at the fixed
point (one 2n x 2n solve per matrix) is faster but exact only at convergence: with 20
iterations and logits of std 1 its gradient differs from the unrolled loop's by 1e-4 to 5e-4
(std 2: 1e-2), so it is not the gradient of what the forward computed.

Dtypes: bfloat16 and float16 inputs are computed in float32 (the paper computes mHC's
coefficients in float32, §4.3), float32 and float64 in their own dtype; the result has the input's
dtype. Any batch shape (..., n, n), any device: only device-generic torch ops, no
synchronisation. The backward is not itself differentiable (no double backward).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sinkhorn", "compute_dtype"]

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype Sinkhorn-Knopp runs in: float32 for bf16/fp16 inputs, else the input's."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _check(logits: Tensor, iters: int) -> None:
    if logits.dim() < 2 or logits.shape[-1] != logits.shape[-2]:
        raise ValueError(f"sinkhorn: expects (..., n, n) logits, got shape {tuple(logits.shape)}")
    if iters < 1:
        raise ValueError(f"sinkhorn: iters must be >= 1, got {iters}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"sinkhorn: expects floating-point logits, got {logits.dtype}")


def _layout(x: Tensor) -> Tensor:
    """(..., n, n) -> (n, n, N) contiguous, N the number of matrices: the stream axes first,
    the matrices last, so every column or row sum is an add of n contiguous rows of N values
    (vectorised over the matrices) and every divide a broadcast over N."""
    n = x.shape[-1]
    return x.reshape(-1, n, n).permute(1, 2, 0).contiguous()


def _unlayout(p: Tensor, shape: torch.Size) -> Tensor:
    """(n, n, N) -> the (..., n, n) `shape`, contiguous."""
    return p.permute(2, 0, 1).reshape(shape).contiguous()


def _steps(x: Tensor, iters: int, keep: list[Tensor] | None = None) -> Tensor:
    """The 2 x iters normalisations (column, row, column, ...) of exp(x); returns P.

    x: logits in the (n, n, N) layout of `_layout`, so a column sum (over the matrix's rows,
    dim -2 of the (..., n, n) matrix) runs over dim 0 here and a row sum over dim 1. Step k's
    matrix P_k is appended to `keep` when given (the backward's recomputation): step 2j
    normalises the columns, step 2j + 1 the rows. Without `keep` the plain-domain steps divide
    in place (one buffer for all of them; x itself is never written)."""
    y = torch.log_softmax(x, dim=0)  # log domain: no overflow, no underflowing sums
    if keep is not None:
        keep.append(y.exp())
    y = torch.log_softmax(y, dim=1)
    p = y.exp_()  # y is this function's own tensor
    if keep is not None:
        keep.append(p)
    for _ in range(iters - 1):  # plain domain: every sum is in [1/n^2, n] from here on
        if keep is None:
            p.div_(p.sum(dim=0, keepdim=True))
            p.div_(p.sum(dim=1, keepdim=True))
            continue
        p = p / p.sum(dim=0, keepdim=True)
        keep.append(p)
        p = p / p.sum(dim=1, keepdim=True)
        keep.append(p)
    return p


@torch.library.custom_op("hcdsl::sinkhorn", mutates_args=())
def _sinkhorn_op(logits: Tensor, iters: int) -> Tensor:
    """exp(logits) made doubly stochastic; see the module docstring."""
    p = _steps(_layout(logits.to(compute_dtype(logits.dtype))), iters)
    return _unlayout(p.to(logits.dtype), logits.shape)


@_sinkhorn_op.register_fake
def _sinkhorn_fake(logits: Tensor, iters: int) -> Tensor:
    return logits.new_empty(logits.shape)  # contiguous, like the real kernel's result


@torch.library.custom_op("hcdsl::sinkhorn_backward", mutates_args=())
def _sinkhorn_backward_op(grad: Tensor, logits: Tensor, iters: int) -> Tensor:
    """Gradient w.r.t. the logits of sum(grad * sinkhorn(logits, iters)): the steps are
    recomputed from the saved logits, then walked back one by one (exact, not implicit)."""
    ct = compute_dtype(logits.dtype)
    mats: list[Tensor] = []
    _steps(_layout(logits.to(ct)), iters, keep=mats)
    g = _layout(grad.to(ct)) * mats[-1]  # the gradient w.r.t. log P: d exp(y) = exp(y) dy
    for k in range(len(mats) - 1, -1, -1):
        p = mats.pop()  # P_k = exp(y_k); freed as we go
        # y_k = log_softmax(x, dim): dL/dx = g - exp(y_k) * sum(g, dim), in place on g
        g.addcmul_(p, g.sum(dim=k % 2, keepdim=True), value=-1)
    return _unlayout(g.to(logits.dtype), logits.shape)


@_sinkhorn_backward_op.register_fake
def _sinkhorn_backward_fake(grad: Tensor, logits: Tensor, iters: int) -> Tensor:
    return logits.new_empty(logits.shape)


def _setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple[Tensor, int],
                   output: Tensor) -> None:
    logits, iters = inputs
    ctx.save_for_backward(logits)  # only the input: the backward recomputes the rest
    ctx.iters = iters  # type: ignore[attr-defined]


def _backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
    (logits,) = ctx.saved_tensors  # type: ignore[attr-defined]
    iters: int = ctx.iters  # type: ignore[attr-defined]
    return torch.ops.hcdsl.sinkhorn_backward(grad, logits, iters), None


_sinkhorn_op.register_autograd(_backward, setup_context=_setup_context)


def sinkhorn(logits: Tensor, iters: int) -> Tensor:
    """exp(logits) made doubly stochastic by `iters` rounds of column then row normalisation
    (mHC, arXiv 2512.24880, §4.2), stable for any logits (see the module docstring).

    logits: (..., n, n), float16/bfloat16 (computed in float32), float32 or float64, on any
    device. Returns the same shape and dtype. One op for torch.compile (no unrolling), with an
    exact backward that recomputes the iterations; traced by torch.compile without autograd
    (`_inline`: decoding, inference), where no backward is needed."""
    _check(logits, iters)
    if torch.compiler.is_compiling() and not (torch.is_grad_enabled() and logits.requires_grad):
        return _inline_region(logits, int(iters))
    return torch.ops.hcdsl.sinkhorn(logits, int(iters))


def _inline(logits: Tensor, iters: int) -> Tensor:
    """The op's steps as traceable torch code, for a compiled graph without autograd (a
    decode step: one token per sequence, where the op's 2 x iters eager reductions and
    divides on a (n, n, N) tensor of a few matrices are launch-bound and most of mHC's cost
    over Pre-Norm). The same steps in the same order on the (..., n, n) layout, equal to the
    op to rounding (7e-7 in float32 after 8 chained calls, compiled)."""
    x = logits.to(compute_dtype(logits.dtype))
    p = torch.log_softmax(torch.log_softmax(x, dim=-2), dim=-1).exp()
    for _ in range(iters - 1):
        p = p / p.sum(dim=-2, keepdim=True)
        p = p / p.sum(dim=-1, keepdim=True)
    return p.to(logits.dtype)


# traced once and compiled once per graph, whatever the number of layers calling it: 8 chained
# calls at (1, 1, 4, 4), no autograd, one thread, inductor caches off: 13.7 s cold compile and
# 0.60 ms per 8 calls, against 37.4 s and 0.75 ms inlined at every call and 3.4 ms for the op's
# eager kernels (the op inside a compiled graph)
# (torch.compiler.nested_compile_region is in torch >= 2.9: older versions inline the steps)
_region = getattr(torch.compiler, "nested_compile_region", None)
_inline_region = _inline if _region is None else _region(_inline)
