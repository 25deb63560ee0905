"""mHC coefficients (arXiv 2512.24880): H_pre, H_post, H_res from the flattened state.

    x'     = RMSNorm(vec(H))                              (1 x nC, no learned scale)
    H_pre  = sigmoid(α_pre  · x' φ_pre  + b_pre)          (1 x n)
    H_post = 2 sigmoid(α_post · x' φ_post + b_post)       (1 x n)
    H_res  = SinkhornKnopp(α_res · mat(x' φ_res) + b_res) (n x n, doubly stochastic)

The layer update x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l) is the step matrix
M = [[0, H_post], [H_preᵀ, H_resᵀ]]. Coefficients are computed in float32 (autocast off), as
the paper does, and cast back to the state's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinkhorn_log(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """exp(logits) made doubly stochastic: alternate column then row normalisation, in the
    log domain (no overflow). After the last (row) step rows sum to 1 exactly."""
    log_m = logits
    for _ in range(iters):
        log_m = log_m - torch.logsumexp(log_m, dim=-2, keepdim=True)  # columns sum to 1
        log_m = log_m - torch.logsumexp(log_m, dim=-1, keepdim=True)  # rows sum to 1
    return log_m.exp()


class ManifoldCoef(nn.Module):
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
        with torch.autocast(device_type=h.device.type, enabled=False):
            x = h.float().flatten(-2)  # (B, T, n*C)
            x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
            pre = torch.sigmoid(self.alpha_pre * (x @ self.phi_pre.float()) + self.b_pre)
            post = 2 * torch.sigmoid(self.alpha_post * (x @ self.phi_post.float()) + self.b_post)
            res_logits = self.alpha_res * (x @ self.phi_res.float()).unflatten(-1, (n, n))
            res = sinkhorn_log(res_logits + self.b_res, self.iters)  # (B, T, n, n)
            corner = pre.new_zeros(pre.shape[:-1] + (1, 1))
            top = torch.cat([corner, post.unsqueeze(-2)], dim=-1)  # (B, T, 1, 1 + n)
            rest = torch.cat([pre.unsqueeze(-1), res.transpose(-1, -2)], dim=-1)  # (B,T,n,1+n)
            m = torch.cat([top, rest], dim=-2)  # (B, T, 1 + n, 1 + n)
        return m.to(h.dtype)
