"""Weights of depth-wise aggregates (DenseFormer, MUDD, attention residuals).

All return A with shape (sources, ways), or (B, T, sources, ways) when dynamic. The norms
the papers put in front of the generators are IR nodes of their own (build_dense.py), so
the port x arrives already normalised and the norm's eps is the model's:
- static:  A = a (learned; DenseFormer's α, MUDD's static a_i)
- mudd:    A = GELU(x W1) W2 + a, x = RMSNorm(X_i) without scale (MUDDFormer Eq. 6;
           W1 ~ N(0, 1/D), W2 = 0 at init, so A = a at init)
- softmax: A_j = softmax_j(q · k_j), k_j = RMSNorm(v_j) with its own scale (attention
           residuals; the pseudo-query q = 0 at init, so A is uniform over the sources)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenseCoef(nn.Module):
    def __init__(self, init: torch.Tensor, generator: str, hidden: int, width: int) -> None:
        super().__init__()
        self.generator = generator
        self.sources, self.ways = init.shape
        if generator == "softmax":
            self.query = nn.Parameter(torch.zeros(width))
            return
        self.static = nn.Parameter(init.clone())  # a
        if generator == "mudd":
            self.w1 = nn.Parameter(torch.randn(width, hidden) / math.sqrt(width))
            self.w2 = nn.Parameter(torch.zeros(hidden, self.sources * self.ways))

    def forward(self, x: torch.Tensor | None = None) -> torch.Tensor:
        if self.generator == "static":
            return self.static
        assert x is not None, f"a {self.generator} aggregate needs its input"
        if self.generator == "mudd":  # x: RMSNorm(X_i), the newest output (B, T, D)
            dyn = F.gelu(x @ self.w1) @ self.w2  # (B, T, sources * ways)
            return dyn.unflatten(-1, (self.sources, self.ways)) + self.static
        logits = x @ self.query  # x: the normalised sources (B, T, sources, D) -> (B, T, S)
        return torch.softmax(logits, dim=-1).unsqueeze(-1)  # (B, T, sources, 1)
