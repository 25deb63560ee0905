"""The fused layer boundary of a dynamic connection ("deferred post"; mHC, arXiv 2512.24880,
§4.1 and §4.3; DeepSeek-V4's inference engines fuse the same two steps).

A dynamic stream connection (mHC's ManifoldCoef, a `generator`'s GeneratorCoef, dynamic HC)
computes, per token, a step matrix M = [[0, post], [pre, RES]] from the state H, and the IR
(after `merge-sibling-mixes`) writes a layer boundary as

    both  = mix(H, M[1:, 0:])              (B, T, 1 + n, C): the read and RESᵀH at once
    h_in  = take(both, 0, 1)               the layer's input
    H'    = mix(o, M[0, 1:]) + take(both, 1, 1 + n)   after the layer: post·o + RESᵀH

so RESᵀH is written to memory before the layer (n C per token) and read back after it, and the
layer's input is a copy out of `both`. The fused lowering computes

    h_in  = mix(H, M[1:, 0:1])             (read n C, write C)
    H'    = RESᵀH + post·o                 (read n C + C, write n C: one pass, `boundary_write`)

so H' is produced in one pass from the old state and the layer's output and consumed by the
next boundary's coefficient projection and read, and nothing of width (n + 1) C is kept for
backward. The function and the parameters are unchanged (the same M, the same sums): the
logits equal the unfused lowering's to rounding, the state_dict is the same.

`find(ir)` finds the boundaries (keyed on the state ops around a per-token coefficient, not on
the family); backends/fx.py emits them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Coef
from hcdsl.nn.ops import mix_streams


@dataclass(frozen=True)
class Boundary:
    """One fusable boundary: the write `write` = add(post, take(both, ...)) of a mix `both` of
    the state by a per-token coefficient, and the layer output's mix `post` by the same one."""

    write: str  # the add: H'
    both: str  # mix(H, M[r0:r1, c0:c1]), read only by takes
    res: str  # take(both, ...) that the write adds: RESᵀH
    post: str  # mix(o, M[row, cols]): post·o


def _only_reader(ir: IR, v: str, reader: str) -> bool:
    return ir.readers(v) == [reader]


def _match(ir: IR, write: str) -> Boundary | None:
    p = ir.payload(write)
    if not isinstance(p, n.Add) or p.arity != 2:
        return None
    ins = list(ir.inputs(write).values())
    for post, res in (ins, ins[::-1]):
        pp, rp = ir.payload(post), ir.payload(res)
        if not (isinstance(pp, n.Mix) and isinstance(rp, n.Take)):
            continue
        both = ir.inputs(res)["x"]
        bp = ir.payload(both)
        if not isinstance(bp, n.Mix) or pp.rows[1] - pp.rows[0] != 1:
            continue
        coef = ir.inputs(both)["coef"]
        ctype = ir.type_of(coef)
        if ir.inputs(post)["coef"] != coef or not (isinstance(ctype, Coef) and ctype.dynamic):
            continue
        c0 = bp.cols[0]
        if pp.cols != (c0 + rp.start, c0 + rp.stop):  # the same columns of M: RES's
            continue
        if not (_only_reader(ir, res, write) and _only_reader(ir, post, write)):
            continue
        if not all(isinstance(ir.payload(u), n.Take) for u in ir.readers(both)):
            continue
        return Boundary(write, both, res, post)
    return None


def find(ir: IR) -> dict[str, Boundary]:
    """The fusable boundaries of ir, by write node."""
    out = {}
    for v in ir.order():
        b = _match(ir, v)
        if b is not None:
            out[v] = b
    return out


def boundary_write(h: Tensor, o: Tensor, res: Tensor, post: Tensor) -> Tensor:
    """H' = RESᵀH + post·o in one pass over the state.

    h (B, T, S, C) the old state; o (B, T, C) or (B, T, 1, C) the layer's output; res
    (B, T, S, S') and post (B, T, S') blocks of the per-token step matrix (or (S, S'), (S')).
    Compiled: a broadcast multiply-sum that inductor emits as one kernel with the outer
    product; eager: one batched GEMM with the outer product as its addend (baddbmm)."""
    o = o if o.dim() == h.dim() else o.unsqueeze(-2)  # (B, T, 1, C)
    outer = o * post.unsqueeze(-1)  # (B, T, S', C)
    if torch.compiler.is_compiling() or res.dim() == 2:
        return mix_streams(h, res) + outer
    lead, s_out, width = h.shape[:-2], res.shape[-1], h.shape[-1]
    y = torch.baddbmm(outer.reshape(-1, s_out, width),
                      res.transpose(-1, -2).reshape(-1, s_out, h.shape[-2]),
                      h.reshape(-1, h.shape[-2], width))
    return y.view(*lead, s_out, width)
