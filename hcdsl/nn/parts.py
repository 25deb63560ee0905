"""Build the parameter-holding modules of an IR, named after their nodes.

Both backends hold exactly these modules under exactly these names, so a state_dict moves
between the reference interpreter and the fx GraphModule unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn import coef, dense, layers, manifold, template

LayerFactory = Callable[..., nn.Module]


def attr_name(node_id: str) -> str:
    """'L3.attn' -> 'L3_attn', a valid Python identifier."""
    out = "".join(c if c.isalnum() else "_" for c in node_id)
    return out if out[0].isalpha() else "n_" + out


def _probe(p: n.Layer, module: nn.Module) -> None:
    """A user's module must map (B, T, dim) to (B, T, dim): try it once on zeros."""
    param = next(module.parameters(), None)
    if param is not None and param.device.type == "meta":
        return  # shapes only (hcdsl stats): nothing to run
    x = torch.zeros(1, 2, p.dim, device=param.device if param is not None else None,
                    dtype=param.dtype if param is not None else None)
    try:
        with torch.no_grad():
            y = module(x)
    except Exception as exc:  # noqa: BLE001 - any failure of user code is reported as such
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) fails on an input of shape "
                           f"(batch, time, dim) = {tuple(x.shape)}: {type(exc).__name__}: "
                           f"{exc}") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise CompileError(f"layer '{p.name}' (extern {p.kind}) maps {tuple(x.shape)} to "
                           f"{got}; it must return (batch, time, dim) = {tuple(x.shape)}")


def _layer(p: n.Layer, factories: Mapping[str, LayerFactory]) -> nn.Module:
    args = dict(p.args)
    if p.extern:
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
    if p.kind == "attention":
        attn = layers.Attention(p.dim, out_scale=p.out_scale, **args)
        attn.return_values = "v" in p.taps
        return attn
    if p.kind == "mlp":
        return layers.MLP(p.dim, out_scale=p.out_scale, **args)
    if p.kind == "opaque":
        return layers.Opaque(p.dim, out_scale=p.out_scale, **args)
    if p.kind in ("layernorm", "rmsnorm"):
        return layers.NormLayer(p.kind, p.dim, **args)
    raise CompileError(f"no module for layer kind '{p.kind}'")


def module_for(ir: IR, node_id: str, parts: nn.Module,
               factories: Mapping[str, LayerFactory]) -> nn.Module | None:
    p = ir.payload(node_id)
    if isinstance(p, n.Embed):
        return layers.Embedding(p.vocab, p.dim)
    if isinstance(p, n.Unembed):
        tied = None
        if p.tied:
            embeds = ir.of_type(n.Embed)
            tied = getattr(parts, attr_name(embeds[0]))
        return layers.Unembed(p.vocab, p.dim, tied)
    if isinstance(p, n.Norm):
        norm = layers.make_norm(p.kind, p.width, p.affine, p.eps)
        if p.affine and p.scale_init != 1.0:
            nn.init.constant_(norm.weight, p.scale_init)
        return norm
    if isinstance(p, n.Layer):
        return _layer(p, factories)
    if isinstance(p, n.LearnedCoef):
        return coef.HyperCoef(torch.tensor(p.init), p.fractions, p.gain, p.dynamic, p.tanh,
                              p.scale_init, p.norm, p.norm_affine, p.norm_eps, p.width)
    if isinstance(p, n.TemplateCoef):
        return template.TemplateCoef(p.template, p.params)
    if isinstance(p, n.NormStreams):
        return template.NormStreams(p.kind, p.width, p.affine, p.eps, p.count, p.which)
    if isinstance(p, n.LowRank):
        return template.LowRank(p.width, p.rank)
    if isinstance(p, n.DenseCoef):
        return dense.DenseCoef(torch.tensor(p.init), p.generator, p.hidden, p.width)
    if isinstance(p, n.ManifoldCoef):
        return manifold.ManifoldCoef(p.n, p.width, p.iters, p.init, p.alpha)
    if isinstance(p, n.ConstCoef):
        return coef.ConstCoef(torch.tensor(p.value))
    return None


def node_seed(seed: int, node_id: str) -> int:
    """A seed for one node's module: the same node id gets the same weights, whatever else
    the IR holds (so a module before and after a pass can be compared directly)."""
    return (seed * 1_000_003 + zlib.crc32(node_id.encode())) % (2**63)


def build_parts(ir: IR, factories: Mapping[str, LayerFactory] | None = None,
                seed: int = 0) -> nn.Module:
    """An nn.Module whose children are the IR's modules, in IR order."""
    parts = nn.Module()
    with torch.random.fork_rng(devices=[]):
        for v in ir.order():
            torch.manual_seed(node_seed(seed, v))
            module = module_for(ir, v, parts, factories or {})
            if module is not None:
                parts.add_module(attr_name(v), module)
    return parts
