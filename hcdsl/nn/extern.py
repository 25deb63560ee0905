"""Layers the user supplies from Python: looked up by name in the factories the caller
passes (a spec never names code), built with the layer's width and options, and probed once
so a wrong shape or a crash is reported as a CompileError naming the layer.

The connection's output scale (HC §4: the init std of every output projection divided by
sqrt(n); `Layer.out_scale`) reaches an extern layer by one rule, in this order:

1. the factory takes a parameter named `out_scale`: it is called with out_scale=...;
2. the module declares its output projection, `output_projection = "proj"` (the dotted
   name of a submodule with a `weight`): that weight is multiplied by the scale once built;
3. otherwise the init is left alone and a warning names the layer and the scale.

A spec that sets `out_scale` itself among the layer's options gets exactly that. The
factory's `ports` attribute (or `ports=` in the spec) declares the layer's input ports; the
layer is then called with one tensor per port, in that order.
"""

from __future__ import annotations

import inspect
import warnings
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
                           f"(batch, time, dim) = {tuple(x.shape)}"
                           f"{_ports_note(p)}: {type(exc).__name__}: {exc}") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) maps {tuple(x.shape)} to "
                           f"{got}; it must return (batch, time, dim) = {tuple(x.shape)}")


def _ports_note(p: n.Layer) -> str:
    if len(p.in_ports) == 1:
        return ""
    return f" on each of its {len(p.in_ports)} ports ({', '.join(p.in_ports)})"


def takes(fn: Callable[..., object], name: str) -> bool:
    """Whether fn has a parameter called `name` (not merely **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params and params[name].kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _scale_projection(p: n.Layer, module: nn.Module, name: str) -> None:
    try:
        proj = module.get_submodule(name)
    except AttributeError:
        proj = None
    weight = getattr(proj, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) declares output_projection "
                           f"= {name!r}, but has no submodule '{name}' with a weight")
    with torch.no_grad():
        weight.mul_(p.out_scale)


def extern_layer(p: n.Layer, factories: Mapping[str, Callable[..., nn.Module]]) -> nn.Module:
    args = dict(p.args)
    if p.kind not in factories:
        raise CompileError(
            f"layer '{p.name}' uses extern '{p.kind}', but no factory was given: call "
            f"hcdsl.compile(spec, layers={{'{p.kind}': factory}}) where factory(dim=..., "
            f"**options) returns an nn.Module")
    factory = factories[p.kind]
    # rule 1: the factory takes out_scale (unless the spec set it among the options)
    scaled = p.out_scale == 1.0 or "out_scale" in args
    if not scaled and takes(factory, "out_scale"):
        args["out_scale"] = p.out_scale
        scaled = True
    try:
        module = factory(dim=p.dim, **args)
    except TypeError as exc:
        raise CompileError(f"layer '{p.name}': factory '{p.kind}' rejected its options "
                           f"(dim={p.dim}, {args}): {exc}") from None
    if not isinstance(module, nn.Module):
        raise CompileError(f"factory for '{p.kind}' returned {type(module).__name__}, "
                           "expected an nn.Module")
    declared = getattr(module, "output_projection", None)
    if not scaled and isinstance(declared, str):  # rule 2: a declared output projection
        _scale_projection(p, module, declared)
        scaled = True
    if not scaled:  # rule 3: say so
        warnings.warn(
            f"layer '{p.name}' (extern {p.kind}): the connection scales the init std of "
            f"output projections by {p.out_scale:.4g} (HC §4: 1/sqrt(n)), but factory "
            f"'{p.kind}' takes no out_scale parameter and the module declares no "
            "output_projection, so its init is left unchanged (docs/language.md, 'Your own "
            "layers')", UserWarning, stacklevel=2)
    _probe(p, module)
    return module
