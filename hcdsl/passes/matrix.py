"""Small helpers shared by the patterns: constant matrices as tuples (they are a few entries:
plain Python is faster here than numpy, and the passes need nothing heavier)."""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.spec import Matrix


def const_of(ir: IR, node_id: str) -> Matrix | None:
    """The matrix of a ConstCoef node, else None."""
    p = ir.payload(node_id)
    return p.value if isinstance(p, n.ConstCoef) else None


def const_mix(ir: IR, v: str) -> tuple[n.Mix, str, str, Matrix] | None:
    """(payload, x producer, coef producer, coef matrix) of a mix with a constant M."""
    p = ir.payload(v)
    if not isinstance(p, n.Mix):
        return None
    ins = ir.inputs(v)
    m = const_of(ir, ins["coef"])
    return None if m is None else (p, ins["x"], ins["coef"], m)


def shape(m: Matrix) -> tuple[int, int]:
    return len(m), len(m[0])


def full_slice(p: n.Mix, m: Matrix) -> bool:
    return p.rows == (0, len(m)) and p.cols == (0, len(m[0]))


def block(m: Matrix, rows: tuple[int, int], cols: tuple[int, int]) -> Matrix:
    return tuple(tuple(float(x) for x in row[cols[0]:cols[1]]) for row in m[rows[0]:rows[1]])


def matmul(a: Matrix, b: Matrix) -> Matrix:
    cols = list(zip(*b))
    return tuple(tuple(float(sum(x * y for x, y in zip(row, col))) for col in cols)
                 for row in a)


def is_identity(m: Matrix) -> bool:
    return len(m) == len(m[0]) and all(
        x == (1.0 if i == j else 0.0) for i, row in enumerate(m) for j, x in enumerate(row))


def is_ones(m: Matrix) -> bool:
    return all(x == 1.0 for row in m for x in row)


def column(m: Matrix, j: int) -> tuple[float, ...]:
    return tuple(row[j] for row in m)


def columns(m: Matrix, keep: list[int]) -> Matrix:
    return tuple(tuple(row[j] for j in keep) for row in m)


def scale(m: Matrix, c: float) -> Matrix:
    return tuple(tuple(x * c for x in row) for row in m)


def skip_reshapes(ir: IR, node_id: str) -> str:
    """Follow merge and split(1) back to the value they reshape (one stream: same values)."""
    while True:
        p = ir.payload(node_id)
        if not (isinstance(p, n.Merge) or isinstance(p, n.Split) and p.parts == 1):
            return node_id
        node_id = ir.inputs(node_id)["x"]
