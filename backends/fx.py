"""The fx backend: IR -> torch.fx.GraphModule, built node by node from one table of
lowering rules (FX: node kind -> rule).

Stream mixing is one einsum over the stream axis; constants are buffers read with get_attr;
submodules carry the IR node names (L3_attn); `gm.code` reads like the IR dump. The module's
inputs besides the tokens (mask, return_hidden, targets) are hcdsl.nn.io's: the mask reaches
every layer whose module takes a `mask` keyword, each layer's input is kept when hidden
states are asked for, and the output goes through io.finish.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.tables import registrar
from hcdsl.ir.types import Coef, Hidden
from hcdsl.nn import io
from hcdsl.nn.boundary import Boundary, boundary_write, find
from hcdsl.nn.generator import channel_write
from hcdsl.nn.modules import attr_name
from hcdsl.nn.ops import mix_parts, mix_streams
from hcdsl.backends.recompute import lower_region, runs
from hcdsl.backends.segments import lower_segment, plan

# the fused layer boundary of dynamic connections (hcdsl/nn/boundary.py): on by default;
# lower_fx(fuse_boundary=False) lowers the IR's mixes one by one
FUSE_BOUNDARY = True


class Builder:
    def __init__(self, ir: IR, parts: nn.Module, fuse_boundary: bool | None = None) -> None:
        self.ir = ir
        self.parts = parts
        self.g = fx.Graph()
        self.env: dict[str, fx.Node] = {}
        # the extra inputs and what is threaded through the graph: the normalised mask, the
        # hidden-state slots, the targets (set by the input rule)
        self.extra: dict[str, fx.Node | None] = {"mask": None, "hidden": None, "targets": None}
        self.reads: dict[str, list[tuple[int, str]]] = {}  # layer node -> (position, value)
        for k, v, src in io.layer_inputs(ir):
            self.reads.setdefault(v, []).append((k, src))
        self._training: fx.Node | None = None
        # stacks of more than two parts that only mixes read: their parts, so each mix reads
        # them directly (mix_parts) and the concatenation is dropped when nothing else uses it
        self.stacks: dict[str, list[fx.Node]] = {}
        # fused boundaries (hcdsl/nn/boundary.py): by write, and by the mix they replace
        fuse = FUSE_BOUNDARY if fuse_boundary is None else fuse_boundary
        self.fused: dict[str, Boundary] = find(ir) if fuse else {}
        self.fused_both = {f.both: f for f in self.fused.values()}

    def training(self) -> fx.Node:
        """`self.training`, read once (dropout is active only while training)."""
        if self._training is None:
            self._training = self.g.get_attr("training")
        return self._training

    def drop_unused_stacks(self, env: dict[str, fx.Node]) -> None:
        """Erase the concatenations every reader now takes in parts (mix_parts), with the
        unsqueezes that only they read. Call once the graph (and its output) is complete."""

        def erase(node: fx.Node) -> None:
            if node.users:
                return
            inputs = [a for a in node.all_input_nodes if a.op == "call_method"]
            self.g.erase_node(node)
            for a in inputs:
                erase(a)

        for v in self.stacks:
            erase(env[v])
        def erase_view(node: fx.Node) -> None:  # and the slices and views only it read
            if node.users or node.op not in ("call_function", "call_method"):
                return
            inputs = node.all_input_nodes
            self.g.erase_node(node)
            for a in inputs:
                if a.op == "call_method" or a.target is operator.getitem:
                    erase_view(a)

        for f in self.fused.values():  # what the fused boundaries no longer read
            for v in (f.post, f.res, f.both):
                if v in env and env[v].graph is self.g:
                    erase_view(env[v])

    def block(self, coef: str, rows: tuple[int, int] | int, cols: tuple[int, int],
              v: str) -> fx.Node:
        """M[..., rows, cols] of the coefficient node coef; M[..., row, cols] for an int row."""
        r = rows if isinstance(rows, int) else slice(*rows)
        return self.emit("call_function", operator.getitem,
                         (self.env[coef], (Ellipsis, r, slice(*cols))), f"{v}.m")

    def has(self, *values: str) -> bool:
        """Every value is emitted in this builder's graph (a segment sees only its own)."""
        return all(u in self.env for u in values)

    def emit(self, op: str, target: Any, args: tuple, node_id: str,
             kwargs: dict | None = None) -> fx.Node:
        return self.g.create_node(op, target, args, kwargs or {}, name=attr_name(node_id).lower())

    def call_module(self, v: str, p: n.Node, x: dict[str, fx.Node]) -> fx.Node:
        return self.emit("call_module", attr_name(v), tuple(x[q] for q in p.ports()), v)


Rule = Callable[[Builder, str, Any, dict[str, fx.Node]], fx.Node]
FX: dict[type[n.Node], Rule] = {}


rule = registrar(FX, "FX")


rule(*n.having("calls_module"))(Builder.call_module)  # a call of the node's module


@rule(n.Input)
def _input(b: Builder, v: str, p: n.Input, x: dict[str, fx.Node]) -> fx.Node:
    layers = io.layer_count(b.ir)
    if p.width:  # a body: hidden states in, hidden states out
        h = b.g.placeholder("x")
        ret = b.g.placeholder("return_hidden", default_value=False)
        b.extra["hidden"] = b.g.create_node("call_function", io.hidden_list, (ret, layers),
                                            name="hidden")
        return b.emit("call_function", io.check_hidden_input, (h, p.width), v)
    tokens = b.g.placeholder("tokens")
    vocab = next((b.ir.payload(u).vocab for u, _ in b.ir.users(v)
                  if isinstance(b.ir.payload(u), n.Embed)), None)
    if vocab is not None:  # token ids of the embedding's vocabulary (io.check_tokens)
        tokens = b.g.create_node("call_function", io.check_tokens, (tokens, vocab), name="ids")
    mask = b.g.placeholder("mask", default_value=None)
    ret = b.g.placeholder("return_hidden", default_value=False)
    b.extra["targets"] = b.g.placeholder("targets", default_value=None)
    b.extra["mask"] = b.g.create_node("call_function", io.attention_mask, (mask, tokens),
                                      name="attn_mask")
    b.extra["hidden"] = b.g.create_node("call_function", io.hidden_list, (ret, layers),
                                        name="hidden")
    return tokens


@rule(n.Layer, n.ParallelLayers)
def _layer(b: Builder, v: str, p: n.Layer | n.ParallelLayers,
           x: dict[str, fx.Node]) -> fx.Node:
    for k, src in b.reads[v]:  # keep the layer's input when hidden states are asked for
        b.extra["hidden"] = b.g.create_node("call_function", io.keep,
                                            (b.extra["hidden"], k, b.env[src]), name="hidden")
    kwargs = {}
    if b.extra["mask"] is not None and io.takes_mask(b.parts.get_submodule(attr_name(v))):
        kwargs["mask"] = b.extra["mask"]
    return b.emit("call_module", attr_name(v), tuple(x[q] for q in p.ports()), v, kwargs)


@rule(n.Dropout)
def _dropout(b: Builder, v: str, p: n.Dropout, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("call_function", torch.nn.functional.dropout, (x["x"],), v,
                  {"p": p.p, "training": b.training()})


@rule(n.Output)
def _output(b: Builder, v: str, p: n.Output, x: dict[str, fx.Node]) -> fx.Node:
    result = b.g.create_node("call_function", io.finish,
                             (x["x"], b.extra["targets"], b.extra["hidden"]), name="result")
    return b.g.output(result)


@rule(n.ConstCoef)
def _const(b: Builder, v: str, p: n.ConstCoef, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("get_attr", f"{attr_name(v)}.value", (), v)


@rule(n.Tap)
def _tap(b: Builder, v: str, p: n.Tap, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("call_function", operator.getitem, (x["x"], p.index), v)


@rule(n.Split)
def _split(b: Builder, v: str, p: n.Split, x: dict[str, fx.Node]) -> fx.Node:
    # (B, T, d) -> (B, T, parts, d/parts)
    return b.emit("call_method", "unflatten", (x["x"], -1, (p.parts, -1)), v)


@rule(n.Merge)
def _merge(b: Builder, v: str, p: n.Merge, x: dict[str, fx.Node]) -> fx.Node:
    if isinstance(b.ir.payload(b.ir.inputs(v)["x"]), n.Take):
        # a few streams of a larger mix (merge-sibling-mixes): copy them out, or the layer's
        # norm saves this view for backward and keeps the whole mix output alive
        flat = b.g.call_method("flatten", (x["x"], -2))
        return b.emit("call_method", "contiguous", (flat,), v)
    return b.emit("call_method", "flatten", (x["x"], -2), v)  # (B, T, S, w) -> (B, T, S*w)


@rule(n.Stack)
def _stack(b: Builder, v: str, p: n.Stack, x: dict[str, fx.Node]) -> fx.Node:
    src = b.ir.inputs(v)  # concatenate on the stream axis; a hidden vector is one stream
    items = [b.g.call_method("unsqueeze", (x[q], -2))
             if isinstance(b.ir.type_of(src[q]), Hidden) else x[q] for q in p.ports()]
    if p.arity > 2 and all(isinstance(b.ir.payload(u), n.Mix) and port == "x"
                           for u, port in b.ir.users(v)):
        b.stacks[v] = items  # a history read by mixes: see _mix
    return b.emit("call_function", torch.cat, (items,), v, {"dim": -2})


@rule(n.Take)
def _take(b: Builder, v: str, p: n.Take, x: dict[str, fx.Node]) -> fx.Node:
    both = b.ir.inputs(v)["x"]
    f = b.fused_both.get(both)
    if f is not None and v != f.res:  # a fused boundary's read: mix only these columns
        state, coef = b.ir.inputs(both)["x"], b.ir.inputs(both)["coef"]
        mp: n.Mix = b.ir.payload(both)
        if b.has(state, coef):
            m = b.block(coef, mp.rows, (mp.cols[0] + p.start, mp.cols[0] + p.stop), v)
            return b.emit("call_function", mix_streams, (b.env[state], m), v)
    index = (Ellipsis, slice(p.start, p.stop), slice(None))  # a view of some streams
    return b.emit("call_function", operator.getitem, (x["x"], index), v)


@rule(n.Copy)
def _copy(b: Builder, v: str, p: n.Copy, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("call_method", "expand", (x["x"], -1, -1, p.n, -1), v)


@rule(n.SumStreams)
def _sum(b: Builder, v: str, p: n.SumStreams, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("call_method", "sum", (x["x"], -2), v, {"keepdim": True})


@rule(n.InvStd)
def _invstd(b: Builder, v: str, p: n.InvStd, x: dict[str, fx.Node]) -> fx.Node:
    # x / std(x), centred std, no eps (HC Eq. 16)
    std = b.g.call_method("std", (x["x"],), {"dim": -1, "correction": 0, "keepdim": True})
    return b.emit("call_function", operator.truediv, (x["x"], std), v)


@rule(n.ChannelWrite)
def _channel_write(b: Builder, v: str, p: n.ChannelWrite, x: dict[str, fx.Node]) -> fx.Node:
    return b.emit("call_function", channel_write, (x["o"], x["w"]), v)


@rule(n.Add)
def _add(b: Builder, v: str, p: n.Add, x: dict[str, fx.Node]) -> fx.Node:
    f = b.fused.get(v)
    if f is not None:  # H' = RESᵀH + post·o in one pass (hcdsl/nn/boundary.py)
        state, coef = b.ir.inputs(f.both)["x"], b.ir.inputs(f.both)["coef"]
        out = b.ir.inputs(f.post)["x"]
        if b.has(state, coef, out):
            mp: n.Mix = b.ir.payload(f.both)
            pp: n.Mix = b.ir.payload(f.post)
            res = b.block(coef, mp.rows, pp.cols, f"{v}.res")
            post = b.block(coef, pp.rows[0], pp.cols, f"{v}.post")
            return b.emit("call_function", boundary_write,
                          (b.env[state], b.env[out], res, post), v)
    if p.arity == 1:  # a sum of one term is that term
        return x["s0"]
    out = x["s0"]
    for q in p.ports()[1:-1]:
        out = b.g.call_function(operator.add, (out, x[q]))
    return b.emit("call_function", operator.add, (out, x[p.ports()[-1]]), v)


@rule(n.Mix)
def _mix(b: Builder, v: str, p: n.Mix, x: dict[str, fx.Node]) -> fx.Node:
    """y = M[rows, cols]ᵀ h over the stream axis: one mix_streams (hcdsl/nn/ops.py); for one
    input stream (a layer's output written into the state) an outer product by broadcasting
    (a contraction over one stream is a product)."""
    m = x["coef"]
    coef: Coef = b.ir.type_of(b.ir.inputs(v)["coef"])
    (r0, r1), (c0, c1) = p.rows, p.cols
    h = x["x"]
    if r1 - r0 == 1:  # y_c = M[r0, c] h: (..., 1, w) * (..., C, 1)
        row = b.emit("call_function", operator.getitem,
                     (m, (Ellipsis, r0, slice(c0, c1), None)), f"{v}.m")
        if isinstance(b.ir.type_of(b.ir.inputs(v)["x"]), Hidden):
            h = b.g.call_method("unsqueeze", (h, -2))
        return b.emit("call_function", operator.mul, (h, row), v)
    if (r0, r1, c0, c1) != (0, coef.rows, 0, coef.cols):
        index = (Ellipsis, slice(r0, r1), slice(c0, c1))
        m = b.emit("call_function", operator.getitem, (m, index), f"{v}.m")
    parts = b.stacks.get(b.ir.inputs(v)["x"])
    if parts is not None:  # the parts of a history stack: it need not be kept for backward
        return b.emit("call_function", mix_parts, (m, *parts), v)
    return b.emit("call_function", mix_streams, (h, m), v)


def lower_fx(ir: IR, parts: nn.Module, recompute: bool | str = False,
             recompute_every: int = 0, fuse_boundary: bool | None = None) -> fx.GraphModule:
    """The GraphModule of ir over the modules in parts. recompute True: every run of
    connection operations between two layers becomes a Region recomputed in backward
    (recompute.py); "layers" (or "auto", resolved by hcdsl.memory to recompute_every >= 2
    or 0): every run of `recompute_every` layers becomes a Segment whose connection state
    is rebuilt in backward from its boundary (segments.py). fuse_boundary (default
    FUSE_BOUNDARY): the layer boundaries of dynamic connections in one pass each
    (hcdsl/nn/boundary.py)."""
    b = Builder(ir, parts, fuse_boundary)
    make = functools.partial(Builder, fuse_boundary=fuse_boundary)  # segments', regions'
    env = b.env
    order = ir.order()
    regions = {run[0]: run for run in runs(ir, order)} if recompute is True else {}
    spans = plan(ir, order, recompute_every) if recompute in ("layers", "auto") else {}
    done: set[str] = set()
    for v in order:
        if v in done:
            continue
        if v in spans:  # recomputation across layers (segments.py)
            env.update(lower_segment(b, spans[v], FX, make, f"seg_{len(done)}"))
            done.update(spans[v])
            continue
        if v in regions:
            env.update(lower_region(ir, regions[v], env, FX, make, parts,
                                    f"conn_{len(done)}_{attr_name(v)}", b.g))
            done.update(regions[v])
            continue
        p = ir.payload(v)
        env[v] = FX[type(p)](b, v, p, {q: env[u] for q, u in ir.inputs(v).items()})
    b.drop_unused_stacks(env)
    b.g.lint()
    gm = fx.GraphModule(parts, b.g, class_name=f"HC_{attr_name(ir.name)}")
    for name, module in parts.named_children():  # every module, used by the graph or not:
        if not hasattr(gm, name):  # recomputed regions and dead layers keep their weights
            gm.add_module(name, module)
    for node in b.g.nodes:  # GraphModule copies get_attr buffers as persistent: undo that
        if node.op == "get_attr" and "." in node.target:
            owner, _, field = node.target.rpartition(".")
            gm.get_submodule(owner)._non_persistent_buffers_set.add(field)
    return gm
