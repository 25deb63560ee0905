"""Small helpers shared by the passes."""

from __future__ import annotations

import numpy as np

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR


def const_of(ir: IR, node_id: str) -> np.ndarray | None:
    """The matrix of a ConstCoef node, else None."""
    p = ir.payload(node_id)
    return np.array(p.value, dtype=np.float64) if isinstance(p, n.ConstCoef) else None


def full_slice(p: n.Mix, m: np.ndarray) -> bool:
    return p.rows == (0, m.shape[0]) and p.cols == (0, m.shape[1])


def as_matrix(m: np.ndarray) -> n.Matrix:
    return tuple(tuple(float(x) for x in row) for row in m)


def const_mixes(ir: IR):
    """(mix id, its payload, x producer, coef producer, coef matrix) for every constant mix."""
    for v in ir.order():
        p = ir.payload(v)
        if not isinstance(p, n.Mix):
            continue
        ins = ir.inputs(v)
        m = const_of(ir, ins["coef"])
        if m is not None:
            yield v, p, ins["x"], ins["coef"], m


def prune(ir: IR, *candidates: str) -> None:
    """Remove each candidate that no node reads any more, then its producers likewise, so a
    pass leaves no dead nodes behind (the verifier rejects them between passes)."""
    work = list(candidates)
    while work:
        v = work.pop()
        if v not in ir or ir.users(v) or isinstance(ir.payload(v), n.Output):
            continue
        work.extend(ir.inputs(v).values())
        ir.remove(v)


def skip_reshapes(ir: IR, node_id: str) -> str:
    """Follow merge and split(1) back to the value they reshape (one stream: same values)."""
    while True:
        p = ir.payload(node_id)
        if not (isinstance(p, n.Merge) or isinstance(p, n.Split) and p.parts == 1):
            return node_id
        node_id = ir.inputs(node_id)["x"]
