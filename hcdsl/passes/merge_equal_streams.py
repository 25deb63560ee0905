"""Streams that carry the same value become one stream (HC's n equal copies of Pre-Norm).

A constant mix with two equal columns makes two equal streams. Keep one; every constant mix
that reads them (directly or through a stack) adds the merged rows: sum_s N[s] x_s with
x_a = x_b is (N[a] + N[b]) x_a. Repeated to a fixed point this folds HC's sequential
arrangement (Eq. 17/36) to one stream and its readout sum to n * h.
"""

from __future__ import annotations

import numpy as np

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import as_matrix, const_mixes, const_of


def _groups(m: np.ndarray) -> list[list[int]]:
    """Columns of m grouped by equality, in order of first appearance."""
    groups: list[list[int]] = []
    for c in range(m.shape[1]):
        for g in groups:
            if np.array_equal(m[:, g[0]], m[:, c]):
                g.append(c)
                break
        else:
            groups.append([c])
    return groups


def _merged_rows(m: np.ndarray, offset: int, groups: list[list[int]]) -> np.ndarray:
    """Rows offset + g of m summed per group g (rows outside the block kept)."""
    block = [m[[offset + i for i in g]].sum(axis=0) for g in groups]
    width = sum(len(g) for g in groups)
    return np.vstack([m[:offset], *[b[None, :] for b in block], m[offset + width:]])


def _readers(ir: IR, v: str, types: dict) -> list[tuple[str, int]] | None:
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
            offset = sum(_count(types[ir.inputs(user)[q]]) for q in ports[:ports.index(port)])
            inner = _readers(ir, user, types)
            if inner is None:
                return None
            out.extend((mix, off + offset) for mix, off in inner)
        else:
            return None
    return out


def _count(t) -> int:  # noqa: ANN001
    return getattr(t, "count", 1)


@register("merge-equal-streams", "a constant mix writing equal streams writes one; its readers "
          "add the merged rows")
def merge_equal_streams(ir: IR) -> bool:
    types = ir.types()
    for v, p, x, _coef, m in list(const_mixes(ir)):
        (r0, r1), (c0, c1) = p.rows, p.cols
        block = m[r0:r1, c0:c1]
        groups = _groups(block)
        if len(groups) == block.shape[1]:
            continue
        readers = _readers(ir, v, types)
        if readers is None:
            continue
        # every reader: N -> N with the rows of each equal group summed
        for mix, offset in readers:
            mp = ir.payload(mix)
            nm = const_of(ir, ir.inputs(mix)["coef"])
            (a0, a1), (b0, b1) = mp.rows, mp.cols
            sub = _merged_rows(nm[a0:a1, b0:b1], offset, groups)
            coef = ir.add(ir.fresh_id(f"{mix}.coef"), n.ConstCoef(as_matrix(sub)))
            ir.rewire(mix, "coef", coef)
            ir.set_payload(mix, n.Mix((0, sub.shape[0]), (0, sub.shape[1])))
        # v: keep the first column of each group
        keep = block[:, [g[0] for g in groups]]
        coef = ir.add(ir.fresh_id(f"{v}.coef"), n.ConstCoef(as_matrix(keep)))
        ir.rewire(v, "coef", coef)
        ir.set_payload(v, n.Mix((0, keep.shape[0]), (0, keep.shape[1])))
        for node in ir.of_type(n.ConstCoef):
            if not ir.users(node):
                ir.remove(node)  # the old coefficients, if no longer read
        return True
    return False
