"""Pipeline stages: one fx GraphModule per stage of a compiled model, cut where
hcdsl/ir/stages.py says (at layer boundaries; what crosses is computed from the IR).

    stage 0:       tokens (B, T)            -> what crosses the first cut
    stage k:       what crosses cut k       -> what crosses cut k + 1
    the last:      what crosses its cut     -> logits (B, T, vocab)

A stage takes and gives plain tensors: one, or a tuple when several values cross (a dense
family's history, a value residual's first values next to the state); a layer value that
also carries taps (attention's (output, v)) crosses as its items, rebuilt on the other side.
Run in sequence on one process, the stages compute what the whole model computes, op for
op (the same lowering rules, backends/fx.py, on the same IR).

A stage holds the model's own modules (the same objects, so the same parameters): its
state_dict is the whole model's restricted to what it runs, under the same names, which
is what lets a checkpoint of the stages load into the whole model and into any other cut.
The mask, the per-layer hidden states and the loss are the whole model's options; a stage
takes the tokens alone (the pipeline computes the loss after the last stage).
"""

from __future__ import annotations

import torch
from torch import fx, nn

from hcdsl.backends.fx import FX, Builder
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.stages import Plan, Stage
from hcdsl.ir.types import Multi
from hcdsl.nn import io


class _ContiguousGrad(torch.autograd.Function):
    """The identity, whose gradient is made contiguous: the engine receives a stage's
    input gradients into buffers laid out like them, and gloo receives only contiguous."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return x.view_as(x)

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return grad.contiguous()


def received(x: torch.Tensor) -> torch.Tensor:
    """A value that crossed a cut (its gradient goes back contiguous)."""
    return _ContiguousGrad.apply(x) if x.requires_grad else x


def pack(*items: object) -> tuple:
    """A layer's value with its taps, rebuilt from the items that crossed a cut."""
    return items


def lower_stage(ir: IR, model: nn.Module, stage: Stage, last: bool) -> fx.GraphModule:
    """The GraphModule of one stage over the compiled model's modules."""
    b = Builder(ir, model)
    b.reads = {v: [] for v in b.reads}  # no per-layer hidden states through a pipeline
    env = b.env
    for i, v in enumerate(stage.inputs):
        t = ir.type_of(v)
        if isinstance(t, Multi):  # (output, *taps): one tensor per item
            items = [b.g.call_function(received, (b.g.placeholder(f"in_{i}_{k}"),))
                     for k in range(len(t.items))]
            env[v] = b.g.call_function(pack, tuple(items))
        else:
            env[v] = b.g.call_function(received, (b.g.placeholder(f"in_{i}"),))
    for v in stage.nodes:
        p = ir.payload(v)
        if isinstance(p, n.Input):
            env[v] = _input(b, p)
            continue
        if isinstance(p, n.Output) or v in env:
            if isinstance(p, n.Output):
                b.g.output(env[ir.inputs(v)["x"]])
            continue
        env[v] = FX[type(p)](b, v, p, {q: env[u] for q, u in ir.inputs(v).items()})
    if not last:
        out: list[fx.Node] = []
        for v in stage.outputs:
            t = ir.type_of(v)
            if isinstance(t, Multi):
                out += [b.g.call_function(_item, (env[v], k)) for k in range(len(t.items))]
            else:
                out.append(env[v])
        # sent as they are: a view (a slice of the streams) becomes its own tensor
        out = [b.g.call_method("contiguous", (x,)) for x in out]
        b.g.output(out[0] if len(out) == 1 else tuple(out))
    b.drop_unused_stacks(env)
    b.g.lint()
    gm = fx.GraphModule(model, b.g, class_name=f"Stage{stage.index}")
    for node in b.g.nodes:  # constants: the model's own modules (dtype casts reach them)
        if node.op == "get_attr" and "." in node.target:
            owner, _, field = node.target.rpartition(".")
            setattr(gm, owner, model.get_submodule(owner))
            gm.get_submodule(owner)._non_persistent_buffers_set.add(field)
    return gm


def _item(value: tuple, k: int) -> object:
    return value[k]


def _input(b: Builder, p: n.Input) -> fx.Node:
    """The first stage's input: token ids (checked as the model checks them), or a body's
    hidden states; no mask, no targets."""
    if p.width:
        x = b.g.placeholder("x")
        return b.g.call_function(io.check_hidden_input, (x, p.width))
    tokens = b.g.placeholder("tokens")
    vocab = next((b.ir.payload(u).vocab for u, _ in b.ir.users(b.ir.of_type(n.Input)[0])
                  if isinstance(b.ir.payload(u), n.Embed)), None)
    if vocab is None:
        return tokens
    return b.g.call_function(io.check_tokens, (tokens, vocab))


def lower_stages(model: nn.Module, plan: Plan) -> list[fx.GraphModule]:
    """Every stage of a compiled model (its `hc_ir`), in order."""
    ir: IR = model.hc_ir  # type: ignore[assignment]
    last = len(plan.stages) - 1
    return [lower_stage(ir, model, s, s.index == last) for s in plan.stages]
