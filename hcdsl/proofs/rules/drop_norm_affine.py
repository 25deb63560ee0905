"""Under the assumption "norm without affine" (HC App. E.2: the affine part of a norm is folded
into the next layer): every norm loses its gain and bias. Proofs only."""

import dataclasses

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("drop-norm-affine", "assumption 'norm without affine': norm(affine) -> norm "
         "(proofs only)", n.Norm)
def drop_norm_affine(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    if not p.affine:
        return False
    rw.set_payload(v, dataclasses.replace(p, affine=False))
    return True
