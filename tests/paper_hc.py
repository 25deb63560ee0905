"""Plain-torch references of the Hyper-/Frac-Connection papers' per-token matrices, written
from the equations (not from hcdsl's code), for the tests that check the presets' desugared
generators.

Dynamic FC (arXiv 2503.14125 §3), per fraction f of the split state H (m fractions of
width d/m), from H̄_f = norm(H_f) over its d/m entries:

    B_f = B_f + s_β tanh(H̄_f W_β)                 (m,)
    Y_f = Y_f + s_α tanh(H̄_f W_γ)                 (m x m), row f
    A_f = A_f + s_α tanh(H̄_f W_α)                 (m x m), row f
    M   = [[0, diag(B)], [Y, A]]                  (2m x 2m)

(tanh -> identity for "W/O tanh"). Parameters by the preset's names: static_gain = B,
static_mix = [Y | A], w_gain = W_β, w_mix = [W_γ | W_α], s_gain = s_β, s_mix = s_α.
"""

from __future__ import annotations

import torch


def normed(h: torch.Tensor, kind: str, weight: torch.Tensor | None, bias: torch.Tensor | None,
           eps: float) -> torch.Tensor:
    """RMSNorm or LayerNorm over the last axis, written out."""
    if kind == "layernorm":
        h = h - h.mean(-1, keepdim=True)
    out = h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out + bias if bias is not None else out


def fc_dynamic_matrix(H: torch.Tensor, p: dict[str, torch.Tensor], m: int, tanh: bool,
                      kind: str, eps: float) -> torch.Tensor:
    """M (..., 2m, 2m) of dynamic FC for the state H (..., m, d/m)."""
    act = torch.tanh if tanh else (lambda t: t)
    Hbar = normed(H, kind, p.get("norm.weight"), p.get("norm.bias"), eps)
    B = p["static_gain"] + p["s_gain"] * act(Hbar @ p["w_gain"])  # (..., m)
    Y = p["static_mix"][:, :m] + p["s_mix"] * act(Hbar @ p["w_mix"][:, :m])  # (..., m, m)
    A = p["static_mix"][:, m:] + p["s_mix"] * act(Hbar @ p["w_mix"][:, m:])
    top = torch.cat([torch.zeros_like(Y), torch.diag_embed(B)], dim=-1)
    return torch.cat([top, torch.cat([Y, A], dim=-1)], dim=-2)


class DynamicRef(torch.nn.Module):
    """Dynamic HC (arXiv 2409.19606 Eqs. 10-13) and dynamic FC (arXiv 2503.14125 §3) as one
    plain-torch module with the presets' parameter names (so a generator's state_dict loads
    into it strictly): per stream s of H (..., S, w), H̄_s = norm(H_s),

        gain_s = B_s + s_β act(H̄_s W_β)                   OUT: a row (HC) or diag (FC)
        [READ | RES]_s = [A_m | A_r]_s + s_α act(H̄_s [W_m | W_r])

    M = [[0, OUT], [READ, RES]]; R read columns (HC 1, FC m = S)."""

    def __init__(self, streams: int, reads: int, width: int, tanh: bool, norm: str,
                 affine: bool, eps: float) -> None:
        super().__init__()
        S, R = streams, reads
        self.R, self.tanh = R, tanh
        self.static_gain = torch.nn.Parameter(torch.zeros(S))
        self.static_mix = torch.nn.Parameter(torch.zeros(S, R + S))
        cls = torch.nn.LayerNorm if norm == "layernorm" else torch.nn.RMSNorm
        self.norm = cls(width, eps=eps, elementwise_affine=affine)
        self.w_gain = torch.nn.Parameter(torch.zeros(width))
        self.w_mix = torch.nn.Parameter(torch.zeros(width, R + S))
        self.s_gain = torch.nn.Parameter(torch.tensor(0.0))
        self.s_mix = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        act = torch.tanh if self.tanh else (lambda t: t)
        Hbar = self.norm(H)
        gain = self.static_gain + self.s_gain * act(Hbar @ self.w_gain)  # (..., S)
        mix = self.static_mix + self.s_mix * act(Hbar @ self.w_mix)  # (..., S, R + S)
        out = gain.unsqueeze(-2) if self.R == 1 else torch.diag_embed(gain)
        top = torch.cat([torch.zeros(*out.shape[:-1], self.R, dtype=out.dtype), out], dim=-1)
        return torch.cat([top, mix], dim=-2)
