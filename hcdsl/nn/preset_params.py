"""Where a generator keeps its parameters when a preset desugared to it: the names, shapes
and layouts the presets had before they were generators (and that checkpoints, `hcdsl.wrap`'s
write-back, the optimiser groups and the papers' reference tests read), mapped to the one
computation of hcdsl/nn/generator.py through a View per output.

    hc   dynamic HC (arXiv 2409.19606 Eqs. 10-13): static_gain B (n,), static_mix [A_m | A_r]
         (n, 1 + n), w_gain W_β (C,), w_mix [W_m | W_r] (C, 1 + n), s_gain s_β, s_mix s_α
         (shared by read and res), norm (the model's norm kind over C); dynamic FC (arXiv
         2503.14125 §3, a split state of m fractions) the same with m read columns:
         static_mix [Y | A] (m, 2m), w_mix [W_γ | W_α] (d/m, 2m)
    mhc  mHC (arXiv 2512.24880 Eqs. 5-8): phi_pre, phi_post (nC, n), phi_res (nC, n²) on
         H_res row-major, alpha_pre, alpha_post, alpha_res, b_pre, b_post (n,), b_res (n, n)
         on H_res (the generator's res is RES = H_resᵀ)

The records say what is computed; these only say where the numbers live. Creation order and
random draws are the presets' own, so a seed gives the same weights as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from hcdsl.lang.generator import Generator
from hcdsl.nn.layers import make_norm


class View(NamedTuple):
    """One output's parameters as the computation reads them, wherever they are kept:
    weight (out, in) of a linear projection (down, up of a low-rank one), the learned scale
    (its own or the shared one), the bias shaped (out,) (flat input) or (n, out) (each)."""

    weight: Tensor | None
    down: Tensor | None
    up: Tensor | None
    scale: Tensor | None
    bias: Tensor | None


def _linear(weight: Tensor, scale: Tensor, bias: Tensor) -> View:
    return View(weight, None, None, scale, bias)


@dataclass(frozen=True)
class Layout:
    build: Callable[[nn.Module, Generator, int, int, "torch.dtype | None"], None]
    views: Callable[[nn.Module], dict[str, View]]
    static: tuple[str, ...]  # the static parts (no weight decay, HC §4; hcdsl/nn/groups.py)
    dynamic: tuple[str, ...]  # the dynamic projections (decayed)
    # an affine generator's terms in M's column order, read straight from the parameters
    # (GeneratorCoef.packed says what they are), or None: built from the views
    packed: Callable[[nn.Module], tuple[Tensor, ...]] | None = None


def _values(bias: float | tuple[float, ...], count: int, dtype: torch.dtype | None) -> Tensor:
    return torch.tensor(bias if isinstance(bias, tuple) else (bias,) * count, dtype=dtype)


def _hc_build(m: nn.Module, rec: Generator, n: int, width: int,
              dtype: torch.dtype | None) -> None:
    read, write, res = rec.output("read"), rec.output("write"), rec.output("res")
    R = rec.fractions  # read columns: 1 (HC), m (FC's Y)
    gain = _values(write.bias, n, dtype)
    a_m = _values(read.bias, n * R, dtype).reshape(n, R)
    a_r = _values(res.bias, n * n, dtype).reshape(n, n)
    m.static_gain = nn.Parameter(gain)  # B
    m.static_mix = nn.Parameter(torch.cat([a_m, a_r], dim=-1))  # [A_m | A_r], (n, R + n)
    norm = rec.norm
    affine = norm.weight != "none"
    m.norm = make_norm(norm.kind, width, affine, norm.eps)
    m.w_gain = nn.Parameter(torch.zeros(width))  # W_β
    m.w_mix = nn.Parameter(torch.zeros(width, R + n))  # [W_m | W_r]
    m.s_gain = nn.Parameter(torch.tensor(float(write.scale)))  # s_β
    m.s_mix = nn.Parameter(torch.tensor(float(read.scale)))  # s_α


def _hc_views(m: nn.Module) -> dict[str, View]:
    R = m.rec.fractions
    return {"read": _linear(m.w_mix[:, :R].t(), m.s_mix, m.static_mix[:, :R]),
            "write": _linear(m.w_gain.unsqueeze(0), m.s_gain, m.static_gain.unsqueeze(-1)),
            "res": _linear(m.w_mix[:, R:].t(), m.s_mix, m.static_mix[:, R:])}


def _hc_packed(m: nn.Module) -> tuple[Tensor, ...]:
    """[W_β | W_m | W_r] as the preset laid it out (one cat), B, [A_m | A_r], s_β, s_α."""
    weight = torch.cat([m.w_gain.unsqueeze(0), m.w_mix.t()], dim=0)
    return weight, m.static_gain, m.static_mix, m.s_gain, m.s_mix


def _mhc_build(m: nn.Module, rec: Generator, n: int, width: int,
               dtype: torch.dtype | None) -> None:
    read, write, res = rec.output("read"), rec.output("write"), rec.output("res")
    flat, std = n * width, read.proj.init_std
    m.phi_pre = nn.Parameter(torch.randn(flat, n) * std)
    m.phi_post = nn.Parameter(torch.randn(flat, n) * std)
    m.phi_res = nn.Parameter(torch.randn(flat, n * n) * std)
    m.alpha_pre = nn.Parameter(torch.tensor(float(read.scale)))
    m.alpha_post = nn.Parameter(torch.tensor(float(write.scale)))
    m.alpha_res = nn.Parameter(torch.tensor(float(res.scale)))
    m.b_pre = nn.Parameter(torch.full((n,), float(read.bias)))
    m.b_post = nn.Parameter(torch.full((n,), float(write.bias)))
    m.b_res = nn.Parameter(torch.full((n, n), float(res.bias)))
    # RES[s, t] = H_res[t, s]: the logit of RES row-major s*n + t is column t*n + s of φ_res
    order = torch.arange(n * n).reshape(n, n).t().reshape(-1)
    m.register_buffer("res_order", order, persistent=False)
    m.iters, m.eps = res.constraint.iters, rec.norm.eps  # the preset module's attributes


def _mhc_views(m: nn.Module) -> dict[str, View]:
    n = m.n
    return {"read": _linear(m.phi_pre.t(), m.alpha_pre, m.b_pre),
            "write": _linear(m.phi_post.t(), m.alpha_post, m.b_post),
            "res": _linear(m.phi_res.t()[m.res_order], m.alpha_res,
                           m.b_res.t().reshape(n * n))}


PRESET_PARAMS: dict[str, Layout] = {
    "hc": Layout(_hc_build, _hc_views, ("static_gain", "static_mix", "s_gain", "s_mix"),
                 ("w_gain", "w_mix"), _hc_packed),
    "mhc": Layout(_mhc_build, _mhc_views, ("alpha_*", "b_*"), ("phi_*",)),
}
PARAMS = ("outputs",) + tuple(PRESET_PARAMS)  # the values of a generator node's `params`
