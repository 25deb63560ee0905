"""Proof-only: every learned coefficient takes its init value (the dynamic part is zero at init)."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register


@register("freeze-at-init", "proofs at init: a learned M becomes the constant of its init "
          "(dynamic parts are s * act(norm(H) W) with W = 0, so zero); changes meaning after "
          "training: never in the default pipeline")
def freeze_at_init(ir: IR) -> bool:
    changed = False
    for v in ir.order():
        p = ir.payload(v)
        if not isinstance(p, n.LearnedCoef):
            continue
        # learned(init, W = 0) -> const(init)
        ir.g.remove_edges_from([(u, v, k) for u, _, k in ir.g.in_edges(v, keys=True)])
        ir.set_payload(v, n.ConstCoef(p.init))
        changed = True
    return changed
