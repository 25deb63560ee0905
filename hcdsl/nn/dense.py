"""Weights of depth-wise aggregates (DenseFormer, MUDD, attention residuals, DCA), made by a
history generator (hcdsl/lang/history_generator.py):

    A = act(proj(norm(input))) + a

A has shape (sources, ways) when static, (B, T, sources, ways) when dynamic, with a last axis
of channel groups when the query has heads or a is per channel; then the module mixes the
sources itself and returns the ways, (B, T, ways, D). A norm over all of D is an IR node of
its own (build_dense.py), so x arrives normalised with the model's eps; a query with heads
normalises each channel group here. The presets:
- static:  A = a (DenseFormer's α, MUDD's static a_i)
- MUDD:    A = GELU(x W1) W2 + a, x = RMSNorm(X_i) without scale (MUDDFormer Eq. 6;
           W1 ~ N(0, 1/D), W2 = 0 at init, so A = a at init)
- AttnRes: A_j = softmax_j(q · k_j), k_j = RMSNorm(X_j) with its own scale (the pseudo-query
           q = 0 at init, so A is uniform over the sources); heads H: per channel group
- DCA:     A_j = ReLU(w · RMSNorm(X_j)) + b_j, b_j per channel (GRN-v3; w = 0, b = 1 at init)
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hcdsl.lang.history_generator import HistoryGenerator

ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda y: y, "relu": F.relu, "gelu": F.gelu, "silu": F.silu,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid,
}


class DenseCoef(nn.Module):
    def __init__(self, init: torch.Tensor, spec: HistoryGenerator, width: int,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.spec, self.width, self.eps = spec, width, eps
        self.sources, self.ways = init.shape
        self.groups = spec.groups(width)
        # the record as plain attributes: forward reads no pydantic model (torch.compile)
        self.dynamic, self.act, self.proj = spec.dynamic, spec.act, spec.proj.kind
        self.mid, self.heads = spec.proj.mid, spec.heads
        self.newest = spec.input == "newest"
        self.static_per = None if spec.static is None else spec.static.per
        self.norm_groups = spec.grouped_norm()
        if spec.static is not None:  # a
            per_channel = spec.static.per == "channel"
            a = init.unsqueeze(-1).expand(-1, -1, width) if per_channel else init
            self.static = nn.Parameter(a.clone())
        p = spec.proj
        if p.kind == "lowrank":
            self.w1 = nn.Parameter(torch.randn(width, p.rank, dtype=init.dtype)
                                   / math.sqrt(width))
            self.w2 = nn.Parameter(torch.zeros(p.rank, self.sources * self.ways,
                                               dtype=init.dtype))
        elif p.kind == "linear":
            out = self.ways * (self.sources if spec.input == "newest" else 1)
            self.w1 = nn.Parameter(torch.zeros(width, out, dtype=init.dtype))
        elif p.kind == "query":
            shape = (width,) if self.ways == 1 else (self.ways, width)
            self.query = nn.Parameter(torch.zeros(shape, dtype=init.dtype))
        if spec.grouped_norm() and spec.norm is not None and spec.norm.weight == "scale":
            self.norm_weight = nn.Parameter(torch.ones(width, dtype=init.dtype))

    def forward(self, x: torch.Tensor | None = None,
                src: torch.Tensor | None = None) -> torch.Tensor:
        a = self.weights(x)
        if self.groups == 1:
            return a
        assert src is not None, "a grouped aggregate mixes its sources itself"
        if a.shape[-1] != self.groups:  # one value for every group
            a = a.expand(*a.shape[:-1], self.groups)
        g = src.unflatten(-1, (self.groups, self.width // self.groups))  # (B, T, S, G, D/G)
        out = torch.einsum("...sgc,...swg->...wgc", g, a)
        return out.flatten(-2)  # (B, T, ways, D)

    def weights(self, x: torch.Tensor | None) -> torch.Tensor:
        """A: (sources, ways) or (B, T, sources, ways), with a last axis of channel groups
        (heads, or D for a per channel) when the aggregate is grouped."""
        static = None if self.static_per is None else self.static
        if static is not None and self.groups > 1 and self.static_per == "source":
            static = static.unsqueeze(-1)  # (S, W, 1): the same for every group
        if not self.dynamic:
            assert static is not None
            return static
        assert x is not None, "a dynamic aggregate needs its input"
        y = self.project(x)
        if self.groups > 1 and self.heads == 1:
            y = y.unsqueeze(-1)  # one value for every group
        if self.act == "softmax":
            a = torch.softmax(y, dim=y.dim() - (3 if self.groups > 1 else 2))  # over sources
        else:
            a = ACT[self.act](y)
        if static is None:
            return a
        if static.shape[-1] != a.shape[-1] and a.shape[-1] > 1:  # heads -> channels
            a = a.repeat_interleave(static.shape[-1] // a.shape[-1], dim=-1)
        return a + static

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """y per token: (B, T, sources, ways), with a last axis of heads for a query with
        heads > 1."""
        S, W = self.sources, self.ways
        if self.proj == "lowrank":  # x: RMSNorm(X_i), the newest output (B, T, D)
            return (ACT[self.mid](x @ self.w1) @ self.w2).unflatten(-1, (S, W))
        if self.proj == "linear":
            y = x @ self.w1
            return y.unflatten(-1, (S, W)) if self.newest else y
        # query over the sources x (B, T, S, D)
        if self.heads == 1:
            return (x @ self.query).unsqueeze(-1) if W == 1 else x @ self.query.T
        xg = x.unflatten(-1, (self.heads, self.width // self.heads))  # (B, T, S, H, D/H)
        if self.norm_groups:
            xg = xg * torch.rsqrt(xg.pow(2).mean(-1, keepdim=True) + self.eps)
            if hasattr(self, "norm_weight"):
                xg = xg * self.norm_weight.view(self.heads, -1)
        q = self.query.view(W, self.heads, -1)
        return torch.einsum("...shc,whc->...swh", xg, q)
