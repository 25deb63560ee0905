"""Under the assumption "eps ignored": every norm's eps becomes 0. Proofs only."""

import dataclasses

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register


@register("ignore-norm-eps", "assumption 'eps ignored': norm(eps) -> norm(eps=0) (proofs only)")
def ignore_norm_eps(ir: IR) -> bool:
    changed = False
    for v in ir.of_type(n.Norm):
        p = ir.payload(v)
        if p.eps != 0.0:
            ir.set_payload(v, dataclasses.replace(p, eps=0.0))
            changed = True
    return changed
