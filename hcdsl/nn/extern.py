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


PROBE_SHAPE = (2, 3)  # (batch, time) of the probe: two distinct sequences


class eval_mode:
    """Run a module in eval mode (no dropout, no batch-statistics updates) and restore every
    submodule's own training flag afterwards."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.flags = [(m, m.training) for m in module.modules()]

    def __enter__(self) -> nn.Module:
        self.module.eval()
        return self.module

    def __exit__(self, *exc: object) -> None:
        for m, flag in self.flags:
            m.training = flag


def probe_input(dim: int, module: nn.Module, batch: int = PROBE_SHAPE[0],
                time: int = PROBE_SHAPE[1]) -> torch.Tensor:
    """Distinct random hidden states (batch, time, dim) on the module's device and dtype,
    from a generator of their own (torch's global RNG is not touched)."""
    param = next(module.parameters(), None)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, time, dim, generator=gen, dtype=torch.float64)
    return x.to(device=param.device if param is not None else None,
                dtype=param.dtype if param is not None else torch.get_default_dtype())


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """a equals b up to the rounding of their dtype (a batch of 2 and of 1 may take different
    kernels)."""
    tol = max(float(torch.finfo(a.dtype).eps) ** 0.5, 1e-6) if a.is_floating_point() else 0.0
    scale = max(float(b.abs().max()), 1.0) if b.numel() else 1.0
    return bool(((a - b).abs() <= tol * scale).all())


def _probe(p: n.Layer, module: nn.Module) -> None:
    """A user's module must map (batch, time, dim) to (batch, time, dim), each sample on its
    own: tried on two distinct sequences together, then on each alone (in eval mode)."""
    param = next(module.parameters(), None)
    if param is not None and param.device.type == "meta":
        return  # shapes only (hcdsl stats): nothing to run
    x = probe_input(p.dim, module)
    what = f"layer '{p.name}' (extern {p.kind})"
    with eval_mode(module), torch.no_grad():
        y = _run(p, module, x, what)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise CompileError(f"{what} maps {tuple(x.shape)} to {got}; it must return "
                               f"(batch, time, dim) = {tuple(x.shape)}, one output per "
                               "input sample and position")
        for b in range(x.shape[0]):
            alone = _run(p, module, x[b:b + 1], what)
            if not isinstance(alone, torch.Tensor) or alone.shape != x[b:b + 1].shape \
                    or not close(y[b:b + 1], alone):
                raise CompileError(
                    f"{what} mixes the samples of a batch: on a batch of {x.shape[0]} "
                    f"distinct sequences its output for sample {b} differs from its output "
                    f"on sample {b} alone; a layer maps each sample (batch, time, dim) on its "
                    "own (no statistics or copies across the batch)")


def _run(p: n.Layer, module: nn.Module, x: torch.Tensor, what: str) -> object:
    try:
        return module(*[x for _ in p.in_ports])
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as such
        raise CompileError(f"{what} fails on an input of shape (batch, time, dim) = "
                           f"{tuple(x.shape)}{_ports_note(p)}: {type(exc).__name__}: "
                           f"{exc}") from None


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


def _factory_name(factory: Callable[..., object]) -> str:
    name = getattr(factory, "__qualname__", None) or type(factory).__name__
    module = getattr(factory, "__module__", None)
    return f"{module}.{name}" if module else name


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
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as such
        verb = "rejected its options" if isinstance(exc, TypeError) else "raised on its options"
        raise CompileError(f"layer '{p.name}' (extern {p.kind}): factory '{p.kind}' {verb} "
                           f"(dim={p.dim}, {args}): {type(exc).__name__}: {exc} (the factory: "
                           f"{_factory_name(factory)})") from None
    if not isinstance(module, nn.Module):
        raise CompileError(f"layer '{p.name}' (extern {p.kind}): factory '{p.kind}' "
                           f"({_factory_name(factory)}) returned {type(module).__name__}, "
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
