"""The fx backend: IR -> torch.fx.GraphModule, built node by node.

Stream mixing is one einsum over the stream axis; constants are buffers read with get_attr;
submodules carry the IR node names (L3_attn); `gm.code` reads like the IR dump.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx, nn

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Coef, Hidden
from hcdsl.nn.parts import attr_name


class _Builder:
    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.g = fx.Graph()
        self.types = ir.types()

    def emit(self, op: str, target: Any, args: tuple, node_id: str,
             kwargs: dict | None = None) -> fx.Node:
        return self.g.create_node(op, target, args, kwargs or {}, name=attr_name(node_id).lower())

    def lower(self, v: str, p: n.Node, x: dict[str, fx.Node]) -> fx.Node:
        mod = attr_name(v)
        if isinstance(p, n.Input):
            return self.g.placeholder("tokens")
        if isinstance(p, n.Output):
            return self.g.output(x["x"])
        if isinstance(p, (n.Embed, n.Norm, n.Unembed, n.NormStreams, n.LowRank)):
            return self.emit("call_module", mod, (x["x"],), v)
        if isinstance(p, n.Layer):
            return self.emit("call_module", mod, tuple(x[q] for q in p.ports()), v)
        if isinstance(p, n.ConstCoef):
            return self.emit("get_attr", f"{mod}.value", (), v)
        if isinstance(p, n.Tap):
            return self.emit("call_function", operator.getitem, (x["x"], p.index), v)
        if isinstance(p, (n.ManifoldCoef, n.LearnedCoef, n.DenseCoef, n.TemplateCoef)):
            return self.emit("call_module", mod, tuple(x[q] for q in p.ports()), v)
        if isinstance(p, n.Split):  # (B, T, d) -> (B, T, parts, d/parts)
            return self.emit("call_method", "unflatten", (x["x"], -1, (p.parts, -1)), v)
        if isinstance(p, n.Merge):  # (B, T, S, w) -> (B, T, S*w)
            return self.emit("call_method", "flatten", (x["x"], -2), v)
        if isinstance(p, n.Stack):  # concatenate on the stream axis
            src = self.ir.inputs(v)
            items = [
                self.g.call_method("unsqueeze", (x[q], -2))
                if isinstance(self.types[src[q]], Hidden) else x[q]
                for q in p.ports()
            ]
            return self.emit("call_function", torch.cat, (items,), v, {"dim": -2})
        if isinstance(p, n.Copy):  # n copies of one stream
            return self.emit("call_method", "expand", (x["x"], -1, -1, p.n, -1), v)
        if isinstance(p, n.SumStreams):  # the sum of the streams, kept as one stream
            return self.emit("call_method", "sum", (x["x"], -2), v, {"keepdim": True})
        if isinstance(p, n.InvStd):  # x / std(x), centred std, no eps (HC Eq. 16)
            std = self.g.call_method("std", (x["x"],), {"dim": -1, "correction": 0, "keepdim": True})
            return self.emit("call_function", operator.truediv, (x["x"], std), v)
        if isinstance(p, n.Add):
            out = x["s0"]
            for q in p.ports()[1:-1]:
                out = self.g.call_function(operator.add, (out, x[q]))
            return self.emit("call_function", operator.add, (out, x[p.ports()[-1]]), v)
        if isinstance(p, n.Mix):
            return self.mix(v, p, x["x"], x["coef"])
        raise NotImplementedError(f"fx backend: no lowering for {p.op}")

    def mix(self, v: str, p: n.Mix, h: fx.Node, m: fx.Node) -> fx.Node:
        """y = M[rows, cols]ᵀ h as one einsum over the stream axis."""
        coef: Coef = self.types[self.ir.inputs(v)["coef"]]
        (r0, r1), (c0, c1) = p.rows, p.cols
        if (r0, r1, c0, c1) != (0, coef.rows, 0, coef.cols):
            if coef.dynamic:  # a strided per-token slice sends eager bmm down a slow path
                m = self.emit("call_function", operator.getitem,
                              (m, (Ellipsis, slice(r0, r1), slice(c0, c1))), f"{v}.slice")
                m = self.emit("call_method", "contiguous", (m,), f"{v}.m")
            else:
                m = self.emit("call_function", operator.getitem,
                              (m, (Ellipsis, slice(r0, r1), slice(c0, c1))), f"{v}.m")
        pattern = "btsw,btsc->btcw" if coef.dynamic else "btsw,sc->btcw"
        return self.emit("call_function", torch.einsum, (pattern, h, m), v)


def lower_fx(ir: IR, parts: nn.Module) -> fx.GraphModule:
    b = _Builder(ir)
    env: dict[str, fx.Node] = {}
    for v in ir.order():
        env[v] = b.lower(v, ir.payload(v), {q: env[u] for q, u in ir.inputs(v).items()})
    b.g.lint()
    gm = fx.GraphModule(parts, b.g, class_name=f"HC_{attr_name(ir.name)}")
    for node in b.g.nodes:  # GraphModule copies get_attr buffers as persistent: undo that
        if node.op == "get_attr":
            owner, _, field = node.target.rpartition(".")
            gm.get_submodule(owner)._non_persistent_buffers_set.add(field)
    return gm
