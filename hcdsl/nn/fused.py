"""Layers that read one value, run with one input matmul: the parallel block of GPT-J and
PaLM (attention's q, k, v and the MLP's up-projection from the same normalised input).

The fused module refers to the layers' own modules without registering them, so the
parameters keep their names (the state_dict is the layers' own) and stay shared with them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hcdsl.nn.io import takes_mask


class ParallelLayers(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        object.__setattr__(self, "layers", layers)  # not submodules: their own names stay
        self.masked = [takes_mask(layer) for layer in layers]  # their finish takes the mask


    def forward(self, x: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """Each layer's output; mask (hcdsl.nn.io.attention_mask) reaches the layers that
        take one."""
        projections = [p for layer in self.layers for p in layer.in_projections()]
        weight = torch.cat([p.weight for p in projections], dim=0)
        biases = [p.bias for p in projections]
        bias = None if all(b is None for b in biases) else torch.cat([
            b if b is not None else p.weight.new_zeros(p.out_features)
            for b, p in zip(biases, projections)])
        y = F.linear(x, weight, bias)  # (B, T, sum of the projections' widths)
        parts = list(torch.split(y, [p.out_features for p in projections], dim=-1))
        out = []
        for layer, masked in zip(self.layers, self.masked):
            count = len(layer.in_projections())
            kwargs = {"mask": mask} if masked and mask is not None else {}
            out.append(layer.finish(parts[:count], **kwargs))
            parts = parts[count:]
        return tuple(out)
