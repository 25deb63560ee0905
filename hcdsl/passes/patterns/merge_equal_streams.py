"""Streams that carry the same value become one stream (HC's n equal copies of Pre-Norm).

A constant mix with two equal columns makes two equal streams. Keep one; every constant mix
that reads them (directly or through a stack) adds the merged rows: sum_s N[s] x_s with
x_a = x_b is (N[a] + N[b]) x_a. Repeated to a fixed point this folds HC's sequential
arrangement (Eq. 17/36) to one stream and its readout sum to n * h.
"""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import as_streams
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import block, column, columns, const_mix, const_of
from hcdsl.passes.registry import pattern
from hcdsl.spec import Matrix


def _groups(m: Matrix) -> list[list[int]]:
    """Columns of m grouped by equality, in order of first appearance (one pass, keyed by
    the column: linear in the matrix, not cubic in its width)."""
    groups: dict[tuple[float, ...], list[int]] = {}
    for c in range(len(m[0])):
        groups.setdefault(column(m, c), []).append(c)
    return list(groups.values())


def _merged_rows(m: Matrix, offset: int, groups: list[list[int]]) -> Matrix:
    """Rows offset + g of m summed per group g (rows outside the block kept)."""
    summed = tuple(tuple(float(sum(m[offset + i][j] for i in g)) for j in range(len(m[0])))
                   for g in groups)
    width = sum(len(g) for g in groups)
    return tuple(m[:offset]) + summed + tuple(m[offset + width:])


def _readers(ir: IR, v: str) -> list[tuple[str, int]] | None:
    """(constant mix, row offset of v's streams in its x) for every reader, or None."""
    out = []
    for user, port in ir.users(v):
        p = ir.payload(user)
        if isinstance(p, n.Mix) and port == "x":
            if const_of(ir, ir.inputs(user)["coef"]) is None:
                return None
            out.append((user, 0))
        elif isinstance(p, n.Stack):
            ports = p.ports()
            offset = sum(as_streams(ir.type_of(ir.inputs(user)[q])).count
                         for q in ports[:ports.index(port)])
            inner = _readers(ir, user)
            if inner is None:
                return None
            out.extend((mix, off + offset) for mix, off in inner)
        else:
            return None
    return out


@pattern("merge-equal-streams", "a constant mix writing equal streams writes one; its "
         "readers add the merged rows", n.Mix)
def merge_equal_streams(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, _x, _coef, m = found
    sub = block(m, p.rows, p.cols)
    groups = _groups(sub)
    if len(groups) == len(sub[0]):
        return False
    readers = _readers(ir, v)
    if not readers:
        return False
    # every reader: N -> N with the rows of each equal group summed
    for mix, offset in readers:
        q = ir.payload(mix)
        nm = block(const_of(ir, ir.inputs(mix)["coef"]), q.rows, q.cols)
        merged = _merged_rows(nm, offset, groups)
        coef = rw.add(f"{mix}.coef", n.ConstCoef(merged))
        rw.rewire(mix, "coef", coef)
        rw.set_payload(mix, n.Mix((0, len(merged)), (0, len(merged[0]))))
    # v: keep the first column of each group
    keep = columns(sub, [g[0] for g in groups])
    coef = rw.add(f"{v}.coef", n.ConstCoef(keep))
    rw.rewire(v, "coef", coef)
    rw.set_payload(v, n.Mix((0, len(keep)), (0, len(keep[0]))))
    return True
