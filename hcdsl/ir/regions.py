"""The connection's share of an IR: which nodes are the layers' own work and which are the
connection's, and the runs of connection operations between two layers (what recomputation
recomputes, and what a fusing compiler makes one kernel of)."""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR

COMPUTE = n.having("compute")  # the kinds' `compute` trait


def is_compute(ir: IR, v: str) -> bool:
    """The layers' own work: a layer, the embedding and head, a pre-norm or the final norm
    (a norm whose output only layers or the head read)."""
    p = ir.payload(v)
    if isinstance(p, COMPUTE):
        return True
    if isinstance(p, n.Norm):
        users = [ir.payload(u) for u in ir.readers(v)]
        return bool(users) and all(isinstance(q, (n.Layer, n.ParallelLayers, n.Unembed))
                                   for q in users)
    return False


def connection_runs(ir: IR, order: list[str]) -> list[list[str]]:
    """Maximal runs of consecutive connection nodes, in the given topological order."""
    out: list[list[str]] = []
    current: list[str] = []
    for v in [*order, None]:
        if v is None or is_compute(ir, v):
            if current:
                out.append(current)
            current = []
        else:
            current.append(v)
    return out
