"""Under the assumption "norm without affine" (HC App. E.2: the affine part of a norm is folded
into the next layer): every norm loses its gain and bias. Proofs only."""

import dataclasses

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register


@register("drop-norm-affine", "assumption 'norm without affine': norm(affine) -> norm (proofs only)")
def drop_norm_affine(ir: IR) -> bool:
    changed = False
    for v in ir.of_type(n.Norm):
        p = ir.payload(v)
        if p.affine:
            ir.set_payload(v, dataclasses.replace(p, affine=False))
            changed = True
    return changed
