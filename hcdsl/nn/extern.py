"""Layers the user supplies from Python: looked up by name in the factories the caller
passes (a spec never names code), built with the layer's width and options, and probed once
so a wrong shape or a crash is reported as a CompileError naming the layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n


def _probe(p: n.Layer, module: nn.Module) -> None:
    """A user's module must map (B, T, dim) to (B, T, dim): try it once on zeros."""
    param = next(module.parameters(), None)
    if param is not None and param.device.type == "meta":
        return  # shapes only (hcdsl stats): nothing to run
    x = torch.zeros(1, 2, p.dim, device=param.device if param is not None else None,
                    dtype=param.dtype if param is not None else None)
    try:
        with torch.no_grad():
            y = module(*[x for _ in p.in_ports])
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as such
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) fails on an input of shape "
                           f"(batch, time, dim) = {tuple(x.shape)}: {type(exc).__name__}: "
                           f"{exc}") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) maps {tuple(x.shape)} to "
                           f"{got}; it must return (batch, time, dim) = {tuple(x.shape)}")


def extern_layer(p: n.Layer, factories: Mapping[str, Callable[..., nn.Module]]) -> nn.Module:
    args = dict(p.args)
    if p.kind not in factories:
        raise CompileError(
            f"layer '{p.name}' uses extern '{p.kind}', but no factory was given: call "
            f"hcdsl.compile(spec, layers={{'{p.kind}': factory}}) where factory(dim=..., "
            f"**options) returns an nn.Module")
    try:
        module = factories[p.kind](dim=p.dim, **args)
    except TypeError as exc:
        raise CompileError(f"layer '{p.name}': factory '{p.kind}' rejected its options "
                           f"(dim={p.dim}, {args}): {exc}") from None
    if not isinstance(module, nn.Module):
        raise CompileError(f"factory for '{p.kind}' returned {type(module).__name__}, "
                           "expected an nn.Module")
    _probe(p, module)
    return module
