"""Recomputation: the connection's cheap operations are recomputed in backward instead of
stored (`hcdsl.compile(..., recompute=True)`), as the mHC paper does (arXiv 2512.24880 §4).

The IR's nodes in topological order alternate between the layers' own work (a layer, its
pre-norm, the embedding, the head) and the connection's (coefficient generators, reads,
writes, readouts). Each maximal run of connection nodes becomes one Region: a small fx graph
called through `torch.utils.checkpoint` (non-reentrant, so torch.compile traces it), which
keeps only the run's inputs for backward and recomputes the rest; only runs that would
otherwise keep more than their inputs become Regions (worth_it). A Region holds no
parameters of its own (its graph refers to the model's modules without registering them),
so the state_dict is the same with and without recomputation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

from torch import fx, nn
from torch.utils.checkpoint import checkpoint

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.regions import connection_runs


class Region(nn.Module):
    """A run of connection operations, recomputed in backward."""

    def __init__(self, graph_module: fx.GraphModule) -> None:
        super().__init__()
        object.__setattr__(self, "fn", graph_module)  # not a submodule: no duplicate params

    def forward(self, *inputs: object) -> object:
        return checkpoint(self.fn, *inputs, use_reentrant=False)


def worth_it(ir: IR, run: list[str]) -> bool:
    """A run saves more than its inputs only when it holds a norm or a coefficient generator
    that keeps activations of its own for backward (MUDD's GELU generator, a low-rank
    projection, a norm over the streams). Adds, reshapes and mixes save at most their
    inputs, and so do HC's, FC's and mHC's generators, which apply their norm after the
    projection (hcdsl.nn.ops.normed_linear, hcdsl.nn.manifold): recomputing such a run only
    keeps its inputs alive longer. Measured (benchmarks/optimiser.py, saved for backward /
    Pre-Norm): recomputing DHC x4's runs raised 1.61x to 1.69x; MUDD's fall 1.45x -> 1.26x."""
    for v in run:
        p = ir.payload(v)
        if isinstance(p, (n.Norm, n.NormStreams, n.LowRank, n.InvStd)):
            return True
        if isinstance(p, n.DenseCoef) and p.spec.dynamic:
            return True
    return False


def runs(ir: IR, order: list[str]) -> list[list[str]]:
    """The runs of connection nodes worth recomputing, in order."""
    return [run for run in connection_runs(ir, order) if worth_it(ir, run)]


def lower_region(ir: IR, nodes: list[str], env: dict[str, fx.Node], rules: dict,
                 builder: Callable[[IR, nn.Module], object], parts: nn.Module, name: str,
                 main: fx.Graph) -> dict[str, fx.Node]:
    """Emit one run as a Region call in `main`; returns the main-graph node of every run
    node that is read outside the run."""
    inside = set(nodes)
    sub = builder(ir, parts)
    local: dict[str, fx.Node] = {}
    inputs: list[str] = []
    for v in nodes:
        for u in ir.inputs(v).values():
            if u not in inside and u not in local:
                local[u] = sub.g.placeholder(f"in_{len(inputs)}")
                inputs.append(u)
    for v in nodes:
        p = ir.payload(v)
        local[v] = rules[type(p)](sub, v, p, {q: local[u] for q, u in ir.inputs(v).items()})
    outputs = [v for v in nodes if any(w not in inside for w in ir.readers(v))]
    sub.g.output(tuple(local[v] for v in outputs))
    sub.drop_unused_stacks(local)  # type: ignore[attr-defined] - a backends.fx.Builder
    region = Region(fx.GraphModule(parts, sub.g, class_name=name))
    parts.add_module(name, region)
    call = main.call_module(name, tuple(env[u] for u in inputs))
    return {v: main.call_function(operator.getitem, (call, i)) for i, v in enumerate(outputs)}
