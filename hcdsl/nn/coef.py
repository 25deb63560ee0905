"""Generators of a step's mixing matrix M = [[0, OUT], [READ, RES]] (see schemes/primitive.py).

HyperCoef implements static and dynamic Hyper-/Frac-Connections (HC Eqs. 10-13, FC §3):
    H̄ = norm(H)                                   per stream, over its width w
    gain_s = B_s + s_β · act(H̄_s W_β)              OUT: a row (HC) or diag (FC)
    [READ|RES]_s = [A_m|A_r]_s + s_α · act(H̄_s [W_m|W_r])
with act = tanh (or identity for "W/O tanh"). Static: only the learned B and [A_m|A_r].
"""

from __future__ import annotations

import torch
from torch import nn

from hcdsl.nn.layers import make_norm
from hcdsl.nn.ops import normed_linear


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
    def __init__(self, init: torch.Tensor, fractions: int, gain: str, dynamic: bool,
                 tanh: bool, scale_init: float, norm: str, norm_affine: bool, norm_eps: float,
                 width: int) -> None:
        super().__init__()
        F = fractions
        S, C = init.shape[0] - F, init.shape[1]
        out_block = init[:F]
        R = self.reads = C - S  # S' = S: the state keeps its stream count
        assert gain == "row" and F == 1 or gain == "diag" and F == S, (gain, F, S)
        self.gain_layout, self.dynamic, self.tanh = gain, dynamic, tanh
        gains = out_block[0, R:] if gain == "row" else torch.diagonal(out_block[:, R:])
        self.static_gain = nn.Parameter(gains.clone())  # B
        self.static_mix = nn.Parameter(init[F:].clone())  # [A_m | A_r], (S, R + S')
        if dynamic:
            self.norm = make_norm(norm, width, norm_affine, norm_eps)
            self.w_gain = nn.Parameter(torch.zeros(width))  # W_β
            self.w_mix = nn.Parameter(torch.zeros(width, C))  # [W_m | W_r]
            self.s_gain = nn.Parameter(torch.tensor(float(scale_init)))  # s_β
            self.s_mix = nn.Parameter(torch.tensor(float(scale_init)))  # s_α

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) if self.tanh else x

    def forward(self, h: torch.Tensor | None = None) -> torch.Tensor:
        gain, mix = self.static_gain, self.static_mix  # (S',), (S, C)
        if self.dynamic:
            assert h is not None, "a dynamic coefficient needs the state H"
            # W_β and [W_m | W_r] in one matmul of the normed state norm(H) (B, T, S, w), as
            # F.linear with the weight laid out (out, in): its backward is then the fast
            # short-wide GEMM (grad^T @ H), not H^T @ grad (8x slower on CPU for 4096 x 256
            # by 6); the norm is applied after the projection (normed_linear), so no
            # normalised copy of the state is kept for backward
            weight = torch.cat([self.w_gain.unsqueeze(0), self.w_mix.t()], dim=0)  # (1+C, w)
            proj = normed_linear(h, self.norm, weight)
            gain = gain + self.s_gain * self._act(proj[..., 0])  # (B, T, S)
            mix = mix + self.s_mix * self._act(proj[..., 1:])  # (B, T, S, C)
        if self.gain_layout == "row":
            out = gain.unsqueeze(-2)  # (..., 1, S')
        else:
            out = torch.diag_embed(gain)  # (..., F, S')
        corner = out.new_zeros(out.shape[:-1] + (self.reads,))  # (..., F, R)
        top = torch.cat([corner, out], dim=-1)  # (..., F, C)
        return torch.cat([top, mix], dim=-2)  # (..., F + S, C)
