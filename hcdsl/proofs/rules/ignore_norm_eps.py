"""Under the assumption "eps ignored": every norm's eps becomes 0. Proofs only."""

import dataclasses

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("ignore-norm-eps", "assumption 'eps ignored': norm(eps) -> norm(eps=0) (proofs only)",
         n.Norm)
def ignore_norm_eps(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    if p.eps == 0.0:
        return False
    rw.set_payload(v, dataclasses.replace(p, eps=0.0))
    return True
