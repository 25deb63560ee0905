"""The reference backend: a plain eager interpreter of the IR, written to be obviously right.

It walks the IR in order and evaluates each node by its rule in one table (EVAL: node kind
-> rule), with explicit loops over streams. It holds the same modules, under the same names,
as the fx backend (hcdsl.nn.modules), so the two can be compared on one state_dict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.tables import registrar
from hcdsl.nn import io
from hcdsl.nn.generator import channel_write
from hcdsl.nn.modules import attr_name

Values = dict[str, torch.Tensor]
Rule = Callable[["ReferenceModel", str, Any, Values, torch.Tensor], torch.Tensor]
EVAL: dict[type[n.Node], Rule] = {}


rule = registrar(EVAL, "EVAL")


class ReferenceModel(nn.Module):
    def __init__(self, ir: IR, parts: nn.Module) -> None:
        super().__init__()
        self.ir = ir
        self._order = ir.order()
        self._reads = io.layer_inputs(ir)
        self._layers = io.layer_count(ir)
        self._mask: torch.Tensor | None = None  # the current run's normalised mask
        self._width = next(ir.payload(v).width for v in ir.g.nodes
                           if isinstance(ir.payload(v), n.Input))  # > 0: a body
        self._vocab = next((ir.payload(v).vocab for v in ir.g.nodes
                            if isinstance(ir.payload(v), n.Embed)), 0)
        for name, module in parts.named_children():
            self.add_module(name, module)
        self._takes_mask = {v for _, v, _ in self._reads if io.takes_mask(self.mod(v))}

    def mod(self, node_id: str) -> nn.Module:
        return getattr(self, attr_name(node_id))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                return_hidden: bool = False, targets: torch.Tensor | None = None):  # noqa: ANN201
        """As the fx module (hcdsl.nn.io): logits, or a ModelOutput with the loss and the
        hidden states when asked for."""
        env = self.run(tokens, mask)
        hidden = io.hidden_list(return_hidden, self._layers)
        for k, _, src in self._reads:
            hidden = io.keep(hidden, k, env[src])
        return io.finish(env[self.ir.output()], targets, hidden)

    def run(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> Values:
        """Every node's value, by IR node id (tests and `hcdsl unfold` read the states)."""
        if self._width:
            io.check_hidden_input(tokens, self._width)
        else:
            io.check_tokens(tokens, self._vocab)
        self._mask = None if self._width else io.attention_mask(mask, tokens)
        env: Values = {}
        for v in self._order:
            env[v] = self.eval_node(v, {port: env[src] for port, src in
                                        self.ir.inputs(v).items()}, tokens)
        return env

    def eval_node(self, v: str, x: Values, tokens: torch.Tensor) -> torch.Tensor:
        p = self.ir.payload(v)
        return EVAL[type(p)](self, v, p, x, tokens)


@rule(*n.having("calls_module"))  # a call of the node's module
def _module(m: ReferenceModel, v: str, p: n.Node, x: Values, tokens: torch.Tensor):
    return m.mod(v)(*[x[port] for port in p.ports()])


@rule(n.ConstCoef)
def _const(m: ReferenceModel, v: str, p: n.ConstCoef, x: Values, tokens: torch.Tensor):
    return m.mod(v)()  # the module returns its buffer


@rule(n.Layer, n.ParallelLayers)
def _layer(m: ReferenceModel, v: str, p: n.Layer | n.ParallelLayers, x: Values, tokens: torch.Tensor):
    kwargs = {"mask": m._mask} if m._mask is not None and v in m._takes_mask else {}
    return m.mod(v)(*[x[port] for port in p.ports()], **kwargs)


@rule(n.Dropout)
def _dropout(m: ReferenceModel, v: str, p: n.Dropout, x: Values, tokens: torch.Tensor):
    return F.dropout(x["x"], p.p, m.training)


@rule(n.Input)
def _input(m: ReferenceModel, v: str, p: n.Input, x: Values, tokens: torch.Tensor):
    return tokens


@rule(n.Output)
def _output(m: ReferenceModel, v: str, p: n.Output, x: Values, tokens: torch.Tensor):
    return x["x"]


@rule(n.Tap)
def _tap(m: ReferenceModel, v: str, p: n.Tap, x: Values, tokens: torch.Tensor):
    return x["x"][p.index]


@rule(n.Split)
def _split(m: ReferenceModel, v: str, p: n.Split, x: Values, tokens: torch.Tensor):
    B, T, d = x["x"].shape
    return x["x"].reshape(B, T, p.parts, d // p.parts)  # (B, T, parts, d/parts)


@rule(n.Merge)
def _merge(m: ReferenceModel, v: str, p: n.Merge, x: Values, tokens: torch.Tensor):
    h = x["x"]  # (B, T, S, w)
    return torch.cat([h[:, :, s, :] for s in range(h.shape[2])], dim=-1)


@rule(n.Stack)
def _stack(m: ReferenceModel, v: str, p: n.Stack, x: Values, tokens: torch.Tensor):
    parts = [x[port] for port in p.ports()]
    parts = [t.unsqueeze(2) if t.dim() == 3 else t for t in parts]
    return torch.cat(parts, dim=2)


@rule(n.Take)
def _take(m: ReferenceModel, v: str, p: n.Take, x: Values, tokens: torch.Tensor):
    return x["x"][:, :, p.start:p.stop, :]  # (B, T, S, w) -> (B, T, stop - start, w)


@rule(n.Copy)
def _copy(m: ReferenceModel, v: str, p: n.Copy, x: Values, tokens: torch.Tensor):
    return x["x"].expand(-1, -1, p.n, -1)  # (B, T, 1, w) -> (B, T, n, w)


@rule(n.SumStreams)
def _sum(m: ReferenceModel, v: str, p: n.SumStreams, x: Values, tokens: torch.Tensor):
    return x["x"].sum(dim=2, keepdim=True)  # (B, T, S, w) -> (B, T, 1, w)


@rule(n.InvStd)
def _invstd(m: ReferenceModel, v: str, p: n.InvStd, x: Values, tokens: torch.Tensor):
    h = x["x"]
    return h / h.std(dim=-1, unbiased=False, keepdim=True)


@rule(n.ChannelWrite)
def _channel_write(m: ReferenceModel, v: str, p: n.ChannelWrite, x: Values,
                   tokens: torch.Tensor):
    return channel_write(x["o"], x["w"])


@rule(n.Add)
def _add(m: ReferenceModel, v: str, p: n.Add, x: Values, tokens: torch.Tensor):
    total = x["s0"]
    for port in p.ports()[1:]:
        total = total + x[port]
    return total


@rule(n.Mix)
def _mix(m: ReferenceModel, v: str, p: n.Mix, x: Values, tokens: torch.Tensor):
    """y_c = sum_s M[r0 + s, c0 + c] * h_s, one output stream at a time."""
    h, coef = x["x"], x["coef"]
    if h.dim() == 3:
        h = h.unsqueeze(2)
    (r0, r1), (c0, c1) = p.rows, p.cols
    assert r1 - r0 == h.shape[2], f"mix: {r1 - r0} rows for {h.shape[2]} streams"
    out = []
    for c in range(c0, c1):
        acc = torch.zeros_like(h[:, :, 0, :])
        for s in range(r1 - r0):
            w = coef[..., r0 + s, c]  # scalar, or (B, T) when dynamic
            acc = acc + (w.unsqueeze(-1) if coef.dim() == 4 else w) * h[:, :, s, :]
        out.append(acc)
    return torch.stack(out, dim=2)  # (B, T, c1 - c0, w)
