"""Stream mixing, the connections' one hot loop: y_c = sum_s M[s, c] h_s over the stream
axis, for a per-token M (B, T, S, C) or a fixed M (S, C).

Eager, a batched matmul is fastest (one BLAS call). Under torch.compile the same contraction
written as a broadcast product summed over s is one fused loop that reads h once; a batched
matmul of B x T tiny (C x S) @ (S x w) products is a poor fit for BLAS and stays a separate
kernel. Measured on a 2-core CPU, (8, 128, 4, 256) by (8, 128, 4, 5), forward + backward:
einsum 5.6 ms eager / 2.6 ms compiled; broadcast 14.7 ms eager / 1.3 ms compiled.
"""

from __future__ import annotations

import torch


def mix_streams(h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(B, T, S, w) mixed by M (B, T, S, C) or (S, C) -> (B, T, C, w)."""
    if torch.compiler.is_compiling():
        mt = m.transpose(-1, -2).unsqueeze(-1)  # (..., C, S, 1)
        return (h.unsqueeze(-3) * mt).sum(-2)
    if m.dim() == 4:
        return torch.einsum("btsw,btsc->btcw", h, m.contiguous())
    return torch.einsum("btsw,sc->btcw", h, m)


class _MixParts(torch.autograd.Function):
    """mix_streams(cat(parts, -2), m) that keeps the parts, not their concatenation, for
    backward (the concatenation is rebuilt there and freed at once)."""

    @staticmethod
    def forward(ctx, m: torch.Tensor, *parts: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(m, *parts)
        return mix_streams(torch.cat(parts, dim=-2), m)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        # in the forward's compute dtype (grad's: under autocast, bf16/fp16), each gradient
        # returned in its input's dtype, as autocast's casts would
        m, *parts = ctx.saved_tensors
        grad_m = grad_parts = None
        if ctx.needs_input_grad[0]:  # dL/dM[s, c] = sum_w h[s, w] dL/dy[c, w]
            h = torch.cat(parts, dim=-2).to(grad.dtype)
            spec = "btsw,btcw->btsc" if m.dim() == 4 else "btsw,btcw->sc"
            grad_m = torch.einsum(spec, h, grad).to(m.dtype)
            del h
        if any(ctx.needs_input_grad[1:]):  # dL/dh[s, w] = sum_c M[s, c] dL/dy[c, w]
            spec = "btsc,btcw->btsw" if m.dim() == 4 else "sc,btcw->btsw"
            grad_h = torch.einsum(spec, m.to(grad.dtype), grad)
            grad_parts = [g.to(p.dtype) for g, p in
                          zip(grad_h.split([p.shape[-2] for p in parts], dim=-2), parts)]
        return (grad_m, *(grad_parts or (None,) * len(parts)))


def mix_parts(m: torch.Tensor, *parts: torch.Tensor) -> torch.Tensor:
    """mix_streams(torch.cat(parts, dim=-2), m): a mix of a stack of the model's earlier
    outputs (the dense families' history, read at every layer) without keeping the stack for
    backward. Autograd would keep each layer's (B, T, S, w) concatenation, a copy of the
    whole history per layer (quadratic in depth); this keeps the parts, which are alive
    anyway (later layers read them). Under torch.compile the plain form: the partitioner
    chooses what to keep."""
    if torch.compiler.is_compiling() or not torch.is_grad_enabled():
        return mix_streams(torch.cat(parts, dim=-2), m)
    return _MixParts.apply(m, *parts)


def normed_linear(x: torch.Tensor, norm: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """F.linear(norm(x), weight) for a LayerNorm or RMSNorm over the last axis, without the
    normalised copy of x: the norm's per-row statistics are applied after the projection,
    x̂ Wᵀ = ((x - μ) ⊙ γ) Wᵀ r + β Wᵀ = (x (W ⊙ γ)ᵀ - μ (W γ)) r + β Wᵀ, with r = 1/√(var + ε)
    (LayerNorm; RMSNorm: μ = 0, β = 0, r = 1/√(mean x² + ε)). Autograd then keeps x (which
    the caller keeps anyway: the connection's state) instead of a normalised copy as large
    as x: the mHC paper's reordering (arXiv 2512.24880), here for HC's and FC's dynamic
    coefficients. Exact up to rounding; the subtraction of μ happens after the projection,
    which loses accuracy only when |μ| is far above the spread of x."""
    gamma = getattr(norm, "weight", None)
    beta = getattr(norm, "bias", None)
    eps = norm.eps if norm.eps is not None else torch.finfo(x.dtype).eps
    w = weight * gamma if gamma is not None else weight  # (out, in)
    proj = torch.nn.functional.linear(x, w)  # x (W ⊙ γ)ᵀ
    if isinstance(norm, torch.nn.LayerNorm):
        var, mean = torch.var_mean(x, dim=-1, correction=0, keepdim=True)
        proj = (proj - mean * w.sum(-1)) * torch.rsqrt(var + eps)
    elif isinstance(norm, torch.nn.RMSNorm):
        proj = proj * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    else:
        raise TypeError(f"normed_linear: a LayerNorm or RMSNorm, not {type(norm).__name__}")
    if beta is not None:
        proj = proj + torch.nn.functional.linear(beta, weight)
    return proj
