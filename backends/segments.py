"""Recomputation across layers (`hcdsl.compile(..., recompute="layers", recompute_every=k)`):
the connection's state is kept for backward only at the boundary of every k-th layer and
rebuilt inside a segment of k layers in backward, from that boundary and from what the
segment's layers computed, which is kept. The mHC paper's scheme (arXiv 2512.24880 §4.3:
keep the n-stream state every L_r layers, the per-layer coefficients and the layers'
C-wide outputs; recompute the rest); DeepSeek's TileKernels and Megatron-Core do the same.

How: each segment is a small fx graph called through `torch.utils.checkpoint` with a
*selective* checkpoint policy (`create_selective_checkpoint_contexts`, non-reentrant, so
`torch.compile` traces it). Checkpointing keeps only the segment's inputs (the state at its
boundary, the mask, a dense family's earlier outputs) and recomputes the rest in backward,
except what the policy marks MUST_SAVE, whose results are cached in forward and replayed,
not recomputed:

- kept (MUST_SAVE): the matrix products and attention ops of the layers (q, k, v, the
  attention output and its logsumexp, the MLP's hidden, each layer's C-wide output) and of
  the coefficient generators (the coefficients' projections), and the Sinkhorn op: the
  per-layer coefficients and layer outputs the paper keeps. The layers' products are not
  recomputed: backward runs as many of them as without the option;
- recomputed in backward: everything else in the segment, from the boundary state and the
  kept products: the connection's reads, writes, stream mixes and norms over the state
  (HC's H_(l+1) = A_r^T H_l + B^T T_l), and the layers' own pointwise work (pre-norm,
  RoPE, activation), cheap next to their products.

Eager, the stream mixes are products too (einsum -> bmm / mm): a mark set around every
layer call and coefficient generator in the segment's graph (enter_layer / exit_layer)
tells them apart. Compiled, the policy is asked while AOT autograd traces, where the marks
do not run; it goes by op alone (products and attention kept), which is right there because
compiled stream mixes are a broadcast product and a sum (hcdsl/nn/ops.py: mix_streams).

Dense families (MUDD, DenseFormer, attention residuals) keep a history of every layer's
output: those outputs are what is kept (each is a segment output, alive anyway); the mixed
inputs of each layer (every way of MUDD, DenseFormer's weighted averages) are rebuilt from
them in backward.

Where a segment starts: in the gap between two layers, at the point in topological order
where the fewest elements per token cross (the n-stream state after the write, not the
layer output together with the read mix). The segment holds no parameters (it refers to the
model's modules without registering them): the state_dict is the same with and without.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable

import torch
from torch import fx, nn
from torch.utils.checkpoint import (CheckpointPolicy, checkpoint,
                                    create_selective_checkpoint_contexts)

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.regions import is_compute
from hcdsl.ir.segments import segments
from hcdsl.ir.types import Coef

_STATE = threading.local()  # .inside: a layer or a coefficient generator runs (eager)

_aten = torch.ops.aten
PRODUCTS = frozenset({  # kept, not recomputed: matrix products and attention
    _aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default,
    _aten.convolution.default,
    _aten._scaled_dot_product_flash_attention_for_cpu.default,
    _aten._scaled_dot_product_efficient_attention.default,
    _aten._scaled_dot_product_flash_attention.default,
    _aten._scaled_dot_product_cudnn_attention.default,
    _aten._scaled_dot_product_attention_math.default,
})

def _custom(op: object) -> bool:
    """A torch.library op of this package (the Sinkhorn op): kept, not re-run."""
    return getattr(op, "namespace", None) == "hcdsl"


def in_layer() -> bool:
    return getattr(_STATE, "inside", False)


def enter_layer() -> None:
    """Marks the ops that follow as a layer's own work or a coefficient generator's, whose
    products are kept (eager; a no-op compiled)."""
    if not torch.compiler.is_compiling():
        _STATE.inside = True


def exit_layer() -> None:
    if not torch.compiler.is_compiling():
        _STATE.inside = False


def policy(ctx: object, op: object, *args: object, **kwargs: object) -> CheckpointPolicy:
    """Keep the layers' and the coefficient generators' products and the Sinkhorn op
    (module doc); recompute the rest, the stream mixes (einsums: products too) included."""
    if _custom(op) or (op in PRODUCTS and (in_layer() or torch.compiler.is_compiling())):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def _contexts() -> tuple[object, object]:
    # a layer may update its own intermediates in place (RMSNorm adds eps to its mean):
    # cached results are replayed, never re-run, so the replay sees the updated value
    return create_selective_checkpoint_contexts(policy, allow_cache_entry_mutation=True)


class Segment(nn.Module):
    """A run of k layers with their connection, the connection recomputed in backward."""

    def __init__(self, graph_module: fx.GraphModule) -> None:
        super().__init__()
        object.__setattr__(self, "fn", graph_module)  # not a submodule: no duplicate params

    def forward(self, *inputs: object) -> object:
        if not torch.is_grad_enabled():  # inference: nothing is kept, nothing to recompute
            return self.fn(*inputs)
        return checkpoint(self.run, *inputs, use_reentrant=False, context_fn=_contexts)

    def run(self, *inputs: object) -> object:
        """The segment, forward or recomputed. Recomputation stops as soon as it has what
        backward needs (torch's early stop), possibly inside a layer: the mark is reset."""
        try:
            return self.fn(*inputs)
        finally:
            exit_layer()


# ---------------------------------------------------------------- lowering

def lower_segment(b: object, nodes: list[str], rules: dict,
                  builder: Callable[..., object], name: str) -> dict[str, fx.Node]:
    """Emit one segment as a Segment call in the main builder `b` (a backends.fx.Builder);
    returns the main-graph node of every segment node read after it. The mask, the hidden
    state slots and `training` enter as inputs; the hidden slots leave as the last output."""
    ir: IR = b.ir  # type: ignore[attr-defined]
    env: dict[str, fx.Node] = b.env  # type: ignore[attr-defined]
    parts: nn.Module = b.parts  # type: ignore[attr-defined]
    inside = set(nodes)
    sub = builder(ir, parts)
    local: dict[str, fx.Node] = sub.env  # the layer rule reads values from its env
    inputs: list[fx.Node] = []
    for v in nodes:
        for u in ir.inputs(v).values():
            if u not in inside and u not in local:
                local[u] = sub.g.placeholder(f"in_{len(inputs)}")
                inputs.append(env[u])
    for key in ("mask", "hidden"):  # threaded through like values
        node = b.extra[key]  # type: ignore[attr-defined]
        if node is not None:
            sub.extra[key] = sub.g.placeholder(key)
            inputs.append(node)
    needs_training = any(isinstance(ir.payload(v), n.Dropout) for v in nodes)
    if needs_training:
        sub._training = sub.g.placeholder("training")
        inputs.append(b.training())  # type: ignore[attr-defined]
    for v in nodes:
        p = ir.payload(v)
        mark = is_compute(ir, v) or isinstance(ir.type_of(v), Coef)  # products kept
        if mark:
            sub.g.call_function(enter_layer)
        local[v] = rules[type(p)](sub, v, p, {q: local[u] for q, u in ir.inputs(v).items()})
        if mark:
            sub.g.call_function(exit_layer)
    outputs = [v for v in nodes if any(w not in inside for w in ir.readers(v))]
    extra_out = sub.extra["hidden"] if b.extra["hidden"] is not None else None  # type: ignore
    sub.g.output(tuple(local[v] for v in outputs)
                 + ((extra_out,) if extra_out is not None else ()))
    sub.drop_unused_stacks(local)
    gm = fx.GraphModule(parts, sub.g, class_name=name)
    for node in sub.g.nodes:  # constants: read from the model's own modules, so that
        if node.op == "get_attr" and "." in node.target:  # .to(dtype) reaches them
            owner = node.target.rpartition(".")[0]
            setattr(gm, owner, parts.get_submodule(owner))
    segment = Segment(gm)
    parts.add_module(name, segment)
    call = b.g.call_module(name, tuple(inputs))  # type: ignore[attr-defined]
    if extra_out is not None:
        b.extra["hidden"] = b.g.call_function(  # type: ignore[attr-defined]
            operator.getitem, (call, len(outputs)), name="hidden")
    return {v: b.g.call_function(operator.getitem, (call, i))  # type: ignore[attr-defined]
            for i, v in enumerate(outputs)}


def plan(ir: IR, order: list[str], every: int) -> dict[str, list[str]]:
    """First node -> the segment's nodes, for lower_fx."""
    return {run[0]: run for run in segments(ir, order, every)}


