"""Modules for user-defined connections: matrices with named learned scalars, norms of some
streams, and a low-rank map on the state."""

from __future__ import annotations

import math

import torch
from torch import nn

from hcdsl.lang.expr import evaluate
from hcdsl.nn.layers import STD, make_norm

# bound -> (raw -> value, value -> raw): the stored parameter is the raw one
BOUNDS = {
    "none": (lambda r: r, lambda v: v),
    "unit": (torch.sigmoid, lambda v: math.log(v / (1 - v))),
    "double": (lambda r: 2 * torch.sigmoid(r), lambda v: math.log(v / (2 - v))),
    "exp": (torch.exp, math.log),
}


class TemplateCoef(nn.Module):
    """M[i][j] = a number, or bound(p) for a learned scalar p named in the template.

    The scalar `p` is stored raw (before its bound) as the parameter `raw_p`: the prefix
    keeps any user name (`eval`, `training`, `consts`, ...) clear of nn.Module's attributes.
    Built in `dtype` (the model's), so an init is rounded once, as a constant matrix's is;
    the numbers of the template are kept as written and the buffer rebuilt from them on a
    conversion (`.double()`), as ConstCoef's."""

    def __init__(self, template: tuple[tuple[object, ...], ...],
                 params: tuple[tuple[str, float, str], ...],
                 dtype: torch.dtype | None = None,
                 shared: dict[str, tuple["TemplateCoef", str]] | None = None) -> None:
        super().__init__()
        self.template = template
        self.bounds = {name: bound for name, _, bound in params}
        # tied params owned by another node's module: (that module, bound), kept in a plain
        # dict so the owner is not registered here (its scalar is counted and saved once)
        self.shared = dict(shared or {})
        for name, init, bound in params:
            raw = nn.Parameter(torch.tensor(BOUNDS[bound][1](init), dtype=dtype))
            self.register_parameter(f"raw_{name}", raw)
        self.exact = [[0.0 if isinstance(e, str) else float(e) for e in row] for row in template]
        self.register_buffer("consts", torch.tensor(self.exact, dtype=dtype))

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module's hook
        super()._apply(fn, recurse)
        if self.consts.is_floating_point() and self.consts.device.type != "meta":
            self.consts = torch.tensor(self.exact, dtype=self.consts.dtype,
                                       device=self.consts.device)
        return self

    def forward(self) -> torch.Tensor:
        values = {name: BOUNDS[b][0](getattr(self, f"raw_{name}"))
                  for name, b in self.bounds.items()}
        for name, (owner, b) in self.shared.items():
            values[name] = BOUNDS[b][0](getattr(owner, f"raw_{name}"))
        rows = [
            torch.stack([evaluate(e, values, float) if isinstance(e, str) else self.consts[i, j]
                         for j, e in enumerate(row)])
            for i, row in enumerate(self.template)
        ]
        return torch.stack(rows)


class ChannelGain(nn.Module):
    """x -> e ⊙ x over the last axis (channels): e a matrix entry over learned vectors (a
    name, or arithmetic of names and numbers), each vector stored raw as `raw_<name>` here or,
    when shared, read from its owner module (kept in a plain dict: not registered here)."""

    def __init__(self, entry: str, width: int, params: tuple[tuple[str, float, str], ...],
                 dtype: torch.dtype | None = None,
                 shared: dict[str, tuple[nn.Module, str]] | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.bounds = {name: bound for name, _, bound in params}
        self.shared = dict(shared or {})
        for name, init, bound in params:
            raw = torch.full((width,), BOUNDS[bound][1](init), dtype=dtype)
            self.register_parameter(f"raw_{name}", nn.Parameter(raw))

    def vector(self) -> torch.Tensor:
        values = {name: BOUNDS[b][0](getattr(self, f"raw_{name}"))
                  for name, b in self.bounds.items()}
        for name, (owner, b) in self.shared.items():
            values[name] = BOUNDS[b][0](getattr(owner, f"raw_{name}"))
        return evaluate(self.entry, values, float)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.vector()


class NormStreams(nn.Module):
    """Normalise the streams in `which` (each over its width); others pass unchanged."""

    def __init__(self, kind: str, width: int, affine: bool, eps: float, count: int,
                 which: tuple[int, ...]) -> None:
        super().__init__()
        self.which, self.count = which, count
        self.norm = make_norm(kind, width, affine, eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, S, w)
        parts = [self.norm(h[..., s, :]) if s in self.which else h[..., s, :]
                 for s in range(self.count)]
        return torch.stack(parts, dim=-2)


class LowRank(nn.Module):
    """x -> B A x per stream; A ~ N(0, 0.02), B = 0 (so it starts as zero). full: x -> W x
    with one w x w matrix W (`up`) = 0 at init."""

    def __init__(self, width: int, rank: int, full: bool = False) -> None:
        super().__init__()
        self.full = full
        if not full:
            self.down = nn.Parameter(torch.randn(rank, width) * STD)  # A
        self.up = nn.Parameter(torch.zeros(width, width if full else rank))  # B (or W)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.up.t() if self.full else h @ self.down.t() @ self.up.t()
