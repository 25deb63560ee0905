"""The one rule for assembling a compiled model's modules, and handing them to a backend.

A compiled model holds the modules of the IR *before* passes (every parameter-holding node;
passes never rename those) and runs the IR *after* them, so its state_dict is the same
whatever passes ran: a checkpoint saved with the optimiser on loads strictly with it off,
and back. The nodes the passes created or changed (folded constants, fused parallel blocks)
get modules of their own, holding no parameters; a pass that changed a module's parameter
shapes is a bug in hcdsl. A module the optimised graph does not use (a dead layer) stays a
submodule, its parameters frozen (they can get no gradient).

`hcdsl.wrap` assembles with the same rule, from the IR that runs, with the wrapped model's
own modules given by node id (`prebuilt`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MethodType
from typing import Any

import torch
from torch import nn

from hcdsl.backends import ReferenceModel, lower_fx
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn.decode import generate
from hcdsl.nn.modules import MODULES, Context, attr_name, build_parts, load_weights, node_seed
from hcdsl.passes.freeze import freezable

__all__ = ["assemble", "attr_name", "load_weights", "lower", "lower_plain", "matrix_of",
           "static_matrices"]


def assemble(raw: IR, ir: IR, factories: Mapping[str, Any] | None, seed: int | None,
             dtype: torch.dtype | None, parts: nn.Module | None = None,
             prebuilt: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """The modules of every module-holding node of `raw` (built unless `parts` holds them;
    those of `prebuilt` used as they are), then of the nodes of `ir` that the passes
    created or changed. seed=None draws from torch's global generator; an int fixes every
    node's weights by (seed, node id)."""
    factories = factories or {}
    if parts is None:
        parts = build_parts(raw, factories, seed=seed, dtype=dtype, prebuilt=prebuilt)
    if ir is raw:
        return parts
    ctx = Context(ir, parts, factories, dtype, seed)
    for v in ir.order():
        p = ir.payload(v)
        factory = MODULES[type(p)]
        if factory is None:
            continue
        same = v in raw.g and raw.payload(v) == p
        if same and attr_name(v) in parts._modules:
            continue
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(node_seed(seed, v))
            module = factory(p, ctx)
        old = parts._modules.get(attr_name(v))
        if old is not None and _shapes(old) != _shapes(module):  # a bug, not the user's
            raise RuntimeError(f"a pass changed the parameter shapes of node '{v}': "
                               "checkpoints would depend on the pass settings")
        parts.add_module(attr_name(v), module)
    return parts


def lower(ir: IR, parts: nn.Module, backend: str, recompute: bool | str = False,
          every: int = 0) -> nn.Module:
    """What hcdsl.compile returns: the backend's module of `ir` over `parts` (fx or the
    reference interpreter), with the unused modules kept and `hc_ir` and `generate`."""
    module = lower_plain(ir, parts, backend, recompute, every)
    _keep_originals(module, parts)
    _keep_unused(module, parts, ir)
    _attach(module, hc_ir=ir, generate=MethodType(generate, module))
    return module


def lower_plain(ir: IR, parts: nn.Module, backend: str, recompute: bool | str = False,
                every: int = 0) -> nn.Module:
    """The backend's module of `ir` over `parts`, nothing added (every: layers per segment
    of recomputation across layers, 0 for none; hcdsl.memory.layers_per_segment)."""
    return (lower_fx(ir, parts, recompute, every) if backend == "fx"
            else ReferenceModel(ir, parts))


def static_matrices(ir: IR, parts: nn.Module) -> dict[str, tuple[tuple[float, ...], ...]]:
    """The trained matrix of every freezable static coefficient of ir, from its module."""
    return {v: matrix_of(getattr(parts, attr_name(v)))
            for v in ir.g.nodes if freezable(ir.payload(v))}


def matrix_of(module: nn.Module) -> tuple[tuple[float, ...], ...]:
    """The matrix a static coefficient module produces, as exact floats."""
    with torch.no_grad():
        return tuple(tuple(float(x) for x in row) for row in module().double().tolist())


def _shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(t.shape) for k, t in module.state_dict().items()}


def _attach(module: nn.Module, **attrs: object) -> None:
    """Set attributes that copies keep: a GraphModule's deepcopy rebuilds it from its graph
    and keeps only what its meta lists as user-preserved (torch.fx)."""
    for name, value in attrs.items():
        setattr(module, name, value)
    meta = getattr(module, "meta", None)
    if isinstance(meta, dict):
        meta.setdefault("_user_preserved_attributes", {}).update(attrs)


def _keep_originals(module: nn.Module, parts: nn.Module) -> None:
    """A GraphModule reads a constant (get_attr L1_coef.value) from a plain copy of its
    owner; put the owner itself back (a ConstCoef, whose dtype conversions rebuild the
    entries exactly: `.double()` of an fx model must not round them through float32)."""
    for name, child in parts.named_children():
        held = getattr(module, name, None)
        if held is not None and held is not child and not any(True for _ in held.parameters()):
            setattr(module, name, child)


def _keep_unused(module: nn.Module, parts: nn.Module, ir: IR) -> None:
    """The modules of nodes the optimised IR no longer has (a dead layer) stay submodules,
    so the state_dict is the same with or without passes; their parameters are frozen (no
    gradient can reach them). A GraphModule copies only the modules its graph uses: the
    others are added back. Constants the passes dropped (no state) are left out."""
    used = {attr_name(v) for v in ir.g.nodes}
    for v in ir.g.nodes:  # a fused parallel block runs its layers' own modules
        p = ir.payload(v)
        if isinstance(p, n.ParallelLayers):
            used |= {attr_name(layer) for layer in p.ids}
    for name, child in parts.named_children():
        if name in used or not child.state_dict():
            continue
        child.requires_grad_(False)
        if not hasattr(module, name):
            module.add_module(name, child)
