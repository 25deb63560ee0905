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
