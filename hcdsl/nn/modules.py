"""The module of every IR node kind that holds parameters or buffers, in one table, and the
`parts` module that holds them all under the IR's node names.

Both backends hold exactly these modules under exactly these names, so a state_dict moves
between the reference interpreter and the fx GraphModule unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.names import attr_name
from hcdsl.ir.tables import registrar
from hcdsl.nn import coef, dense, fused, generator, layers, template
from hcdsl.nn.extern import extern_layer

LayerFactory = Callable[..., nn.Module]


@dataclass
class Context:
    """What a module factory may need beyond its node's payload."""

    ir: IR
    parts: nn.Module  # the modules built so far (a tied head reads the embedding's)
    factories: Mapping[str, LayerFactory]
    dtype: torch.dtype | None
    seed: int | None = 0


Factory = Callable[[n.Node, Context], nn.Module]
MODULES: dict[type[n.Node], Factory | None] = {}  # None: the kind has no module


module = registrar(MODULES, "MODULES")


module(*(k for k in n.KINDS if not k.builds_module))(None)  # the kinds without a module


@module(n.Embed)
def _embed(p: n.Embed, ctx: Context) -> nn.Module:
    return layers.Embedding(p.vocab, p.dim, p.positions)


@module(n.Unembed)
def _unembed(p: n.Unembed, ctx: Context) -> nn.Module:
    tied = None
    if p.tied:
        embed = next(v for v in ctx.ir.g.nodes if isinstance(ctx.ir.payload(v), n.Embed))
        tied = getattr(ctx.parts, attr_name(embed))
    return layers.Unembed(p.vocab, p.dim, tied)


@module(n.Norm)
def _norm(p: n.Norm, ctx: Context) -> nn.Module:
    norm = layers.make_norm(p.kind, p.width, p.affine, p.eps)
    if p.affine and p.scale_init != 1.0:
        nn.init.constant_(norm.weight, p.scale_init)
    return norm


# the module of each built-in layer kind (hcdsl.lang.catalog.LAYERS), by the kind's name
LayerModule = Callable[[n.Layer], nn.Module]
LAYER_MODULES: dict[str, LayerModule] = {}
layer_module = registrar(LAYER_MODULES, "LAYER_MODULES")


@layer_module("attention")
def _attention(p: n.Layer) -> nn.Module:
    attn = layers.Attention(p.dim, out_scale=p.out_scale, dropout=p.dropout, **dict(p.args))
    attn.return_values = "v" in p.taps
    return attn


@layer_module("mlp")
def _mlp(p: n.Layer) -> nn.Module:
    return layers.MLP(p.dim, out_scale=p.out_scale, **dict(p.args))


@layer_module("opaque")
def _opaque(p: n.Layer) -> nn.Module:
    return layers.Opaque(p.dim, out_scale=p.out_scale, **dict(p.args))


@layer_module("layernorm", "rmsnorm")
def _norm_layer(p: n.Layer) -> nn.Module:
    return layers.NormLayer(p.kind, p.dim, **dict(p.args))


@module(n.Layer)
def _layer(p: n.Layer, ctx: Context) -> nn.Module:
    if p.extern:
        return extern_layer(p, ctx.factories)
    if p.kind not in LAYER_MODULES:
        raise CompileError(f"no module for layer kind '{p.kind}'")
    return LAYER_MODULES[p.kind](p)


@module(n.ParallelLayers)
def _parallel_layers(p: n.ParallelLayers, ctx: Context) -> nn.Module:
    """The layers' own modules, under their own names (built here, with the weights their
    own nodes would get, when the IR holds only the fused node)."""
    for v, layer in zip(p.ids, p.layers):
        if not hasattr(ctx.parts, attr_name(v)):
            with torch.random.fork_rng(devices=[], enabled=ctx.seed is not None):
                if ctx.seed is not None:
                    torch.manual_seed(node_seed(ctx.seed, v))
                ctx.parts.add_module(attr_name(v), _layer(layer, ctx))
    return fused.ParallelLayers([getattr(ctx.parts, attr_name(v)) for v in p.ids])


@module(n.LearnedCoef)
def _learned(p: n.LearnedCoef, ctx: Context) -> nn.Module:
    return coef.HyperCoef(torch.tensor(p.init, dtype=ctx.dtype), p.fractions, p.gain)


@module(n.TemplateCoef)
def _template(p: n.TemplateCoef, ctx: Context) -> nn.Module:
    shared = {name: (getattr(ctx.parts, attr_name(owner)), bound)
              for name, owner, _, bound in p.shared}
    return template.TemplateCoef(p.template, p.params, ctx.dtype, shared)


@module(n.ChannelGain)
def _gain(p: n.ChannelGain, ctx: Context) -> nn.Module:
    shared = {name: (getattr(ctx.parts, attr_name(owner)), bound)
              for name, owner, _, bound in p.shared}
    return template.ChannelGain(p.entry, p.width, p.params, ctx.dtype, shared)


@module(n.NormStreams)
def _norm_streams(p: n.NormStreams, ctx: Context) -> nn.Module:
    return template.NormStreams(p.kind, p.width, p.affine, p.eps, p.count, p.which)


@module(n.LowRank)
def _lowrank(p: n.LowRank, ctx: Context) -> nn.Module:
    return template.LowRank(p.width, p.rank, p.full)


@module(n.DenseCoef)
def _dense(p: n.DenseCoef, ctx: Context) -> nn.Module:
    return dense.DenseCoef(torch.tensor(p.init, dtype=ctx.dtype), p.spec, p.width, p.eps)


@module(n.GeneratorCoef)
def _generator(p: n.GeneratorCoef, ctx: Context) -> nn.Module:
    return generator.GeneratorCoef(p.spec, p.n, p.width, p.role, p.names, ctx.dtype)


@module(n.ConstCoef)
def _const(p: n.ConstCoef, ctx: Context) -> nn.Module:
    return coef.ConstCoef(p.value, ctx.dtype)


def node_seed(seed: int, node_id: str) -> int:
    """A seed for one node's module: the same node id gets the same weights, whatever else
    the IR holds (so a module before and after a pass can be compared directly)."""
    return (seed * 1_000_003 + zlib.crc32(node_id.encode())) % (2**63)


def build_parts(ir: IR, factories: Mapping[str, LayerFactory] | None = None,
                seed: int | None = 0, dtype: torch.dtype | None = None,
                into: nn.Module | None = None,
                prebuilt: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """An nn.Module whose children are the IR's modules, in IR order. seed=None draws from
    torch's global generator (so torch.manual_seed decides); an int fixes every node's
    weights by (seed, node id). into: add only the modules it does not hold yet. prebuilt:
    modules given by node id, used as they are (the caller's: hcdsl.wrap puts a wrapped
    model's embedding, norms and head there)."""
    parts = nn.Module() if into is None else into
    ctx = Context(ir, parts, factories or {}, dtype, seed)
    given = prebuilt or {}
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        for v in ir.order():
            factory = MODULES[type(ir.payload(v))]
            if hasattr(parts, attr_name(v)):
                continue
            if v in given:
                parts.add_module(attr_name(v), given[v])
                continue
            if factory is None:
                continue
            if seed is not None:
                torch.manual_seed(node_seed(seed, v))
            parts.add_module(attr_name(v), factory(ir.payload(v), ctx))
    return parts


def load_weights(parts: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load a state_dict strictly; CompileError naming what does not fit."""
    mine = parts.state_dict()
    missing = sorted(k for k in mine if k not in state)
    unexpected = sorted(k for k in state if k not in mine)
    shapes = sorted(f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
                    for k, v in mine.items() if k in state and state[k].shape != v.shape)
    if missing or unexpected or shapes:
        problems = [f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                    f"wrong shape {', '.join(shapes[:5])}" if shapes else ""]
        raise CompileError("the weights do not fit this spec: "
                           + "; ".join(p for p in problems if p))
    parts.load_state_dict(state, strict=True)
