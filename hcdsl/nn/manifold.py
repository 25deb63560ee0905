"""mHC coefficients (arXiv 2512.24880, §4.2): H_pre, H_post, H_res from the state.

    x'     = RMSNorm(vec(H))                              (1 x nC, no learned scale)
    H_pre  = sigmoid(α_pre  · x' φ_pre  + b_pre)          (1 x n)
    H_post = 2 sigmoid(α_post · x' φ_post + b_post)       (1 x n)
    H_res  = SinkhornKnopp(α_res · mat(x' φ_res) + b_res) (n x n, doubly stochastic)

The layer update x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l) (§4.1) is the step matrix
M = [[0, H_post], [H_preᵀ, H_resᵀ]]. Sinkhorn-Knopp is one registered op
(hcdsl/nn/sinkhorn.py), so torch.compile does not unroll its iterations.

Dtype rule (the project's): under a bfloat16/float16 autocast the coefficients are computed in
float32 with autocast off, as the paper does (its kernels keep the coefficient computations in
float32, §4.3); otherwise they follow the model's dtype (the dtype of the projections φ), so a
float64 model computes them in float64 and gradcheck sees float64 end to end. The step matrix
is returned in the state's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hcdsl.nn.sinkhorn import sinkhorn

_LOW_PRECISION = (torch.bfloat16, torch.float16)


def sinkhorn_log(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """exp(logits) made doubly stochastic: `iters` rounds of column then row normalisation
    (hcdsl.nn.sinkhorn.sinkhorn, one op with an exact backward).

    Kept under this name because it is the module-level hook ManifoldCoef calls (tests patch
    it to record the dtype the coefficients are computed in)."""
    return sinkhorn(logits, iters)


def coef_dtype(model_dtype: torch.dtype, device_type: str) -> torch.dtype:
    """The dtype mHC's coefficients are computed in: float32 (at least) under a bf16/fp16
    autocast on `device_type`, the model's dtype otherwise."""
    if torch.is_autocast_enabled(device_type) and \
            torch.get_autocast_dtype(device_type) in _LOW_PRECISION:
        return torch.promote_types(model_dtype, torch.float32)
    return model_dtype


class ManifoldCoef(nn.Module):
    """The step matrix (B, T, 1 + n, 1 + n) of one mHC layer from its state H (B, T, n, C)."""

    def __init__(self, n: int, width: int, iters: int = 20, init: str = "paper",
                 alpha: float = 0.01, eps: float = 1e-6) -> None:
        super().__init__()
        self.n, self.iters, self.eps = n, iters, eps
        flat = n * width
        # paper init: small random projections (std 1/sqrt(nC)); identity init: zero
        std = 0.0 if init == "identity" else 1.0 / math.sqrt(flat)
        self.phi_pre = nn.Parameter(torch.randn(flat, n) * std)
        self.phi_post = nn.Parameter(torch.randn(flat, n) * std)
        self.phi_res = nn.Parameter(torch.randn(flat, n * n) * std)
        self.alpha_pre = nn.Parameter(torch.tensor(alpha))
        self.alpha_post = nn.Parameter(torch.tensor(alpha))
        self.alpha_res = nn.Parameter(torch.tensor(alpha))
        # identity init: sigmoid(b_pre) = 1/n so the read sums equal streams to h;
        # paper init (bias values unpublished): b_pre = 0 (H_pre = 1/2)
        b_pre = -math.log(n - 1) if init == "identity" and n > 1 else 0.0
        self.b_pre = nn.Parameter(torch.full((n,), b_pre))
        self.b_post = nn.Parameter(torch.zeros(n))  # H_post = 2 sigmoid(0) = 1
        self.b_res = nn.Parameter(torch.zeros(n, n))  # H_res = uniform 1/n

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n = self.n
        dt = coef_dtype(self.phi_res.dtype, h.device.type)

        def p(t: torch.Tensor) -> torch.Tensor:
            return t.to(dt)

        with torch.autocast(device_type=h.device.type, enabled=False):
            x = h.to(dt).flatten(-2)  # (B, T, n*C), a view when no cast is needed
            # x' φ = (x φ) · rsqrt(mean x² + eps): the norm is applied after the projection
            # (the paper's reordering, §4.3), so the normalised (B, T, nC) copy of the state is
            # never materialised nor saved for backward; one GEMM for φ_pre | φ_post | φ_res.
            phi = torch.cat([p(self.phi_pre), p(self.phi_post), p(self.phi_res)], dim=-1)
            inv_rms = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)  # (B, T, 1)
            proj = (x @ phi) * inv_rms  # (B, T, 2n + n²) = x' [φ_pre | φ_post | φ_res]
            pre_l, post_l, res_l = proj.split([n, n, n * n], dim=-1)
            pre = torch.sigmoid(p(self.alpha_pre) * pre_l + p(self.b_pre))
            post = 2 * torch.sigmoid(p(self.alpha_post) * post_l + p(self.b_post))
            res_logits = p(self.alpha_res) * res_l.unflatten(-1, (n, n))
            res = sinkhorn_log(res_logits + p(self.b_res), self.iters)  # (B, T, n, n)
            corner = pre.new_zeros(pre.shape[:-1] + (1, 1))
            top = torch.cat([corner, post.unsqueeze(-2)], dim=-1)  # (B, T, 1, 1 + n)
            rest = torch.cat([pre.unsqueeze(-1), res.transpose(-1, -2)], dim=-1)  # (B,T,n,1+n)
            m = torch.cat([top, rest], dim=-2)  # (B, T, 1 + n, 1 + n)
        return m.to(h.dtype)
