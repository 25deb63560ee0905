"""Generators of a step's mixing matrix M = [[0, OUT], [READ, RES]] (see schemes/primitive.py).

HyperCoef holds static Hyper-/Frac-Connections' learned entries (HC Eq. 1, FC §3): the gains
B (OUT: a row for HC, diag(B) for FC) and [A_m | A_r]. Their dynamic forms (HC Eqs. 10-13,
FC §3) are generators (hcdsl/schemes/hyper.py, frac.py; hcdsl/nn/generator.py).
"""

from __future__ import annotations

import torch
from torch import nn



class ConstCoef(nn.Module):
    """A fixed matrix, held as a buffer. Not persistent: it comes from the spec, not from
    training, so checkpoints hold only learned state and load whatever passes ran. The
    entries are kept as written, so a conversion (`.double()`, `.to(dtype)`) rebuilds the
    buffer from them exactly instead of rounding a float32 copy."""

    def __init__(self, value: tuple[tuple[float, ...], ...],
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.exact = value
        self.register_buffer("value", torch.tensor(value, dtype=dtype), persistent=False)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's hook
        super()._apply(fn, recurse)
        if self.value.is_floating_point() and self.value.device.type != "meta":
            self.value = torch.tensor(self.exact, dtype=self.value.dtype,
                                      device=self.value.device)
        return self

    def forward(self) -> torch.Tensor:
        return self.value


class HyperCoef(nn.Module):
    def __init__(self, init: torch.Tensor, fractions: int, gain: str) -> None:
        super().__init__()
        F = fractions
        S, C = init.shape[0] - F, init.shape[1]
        out_block = init[:F]
        R = self.reads = C - S  # S' = S: the state keeps its stream count
        assert gain == "row" and F == 1 or gain == "diag" and F == S, (gain, F, S)
        self.gain_layout = gain
        gains = out_block[0, R:] if gain == "row" else torch.diagonal(out_block[:, R:])
        self.static_gain = nn.Parameter(gains.clone())  # B
        self.static_mix = nn.Parameter(init[F:].clone())  # [A_m | A_r], (S, R + S')

    def forward(self) -> torch.Tensor:
        gain, mix = self.static_gain, self.static_mix  # (S',), (S, C)
        if self.gain_layout == "row":
            out = gain.unsqueeze(-2)  # (..., 1, S')
        else:
            out = torch.diag_embed(gain)  # (..., F, S')
        corner = out.new_zeros(out.shape[:-1] + (self.reads,))  # (..., F, R)
        top = torch.cat([corner, out], dim=-1)  # (..., F, C)
        return torch.cat([top, mix], dim=-2)  # (..., F + S, C)
