"""Under the assumption "every state has mean 0" (T's output and the embedding re-centred, HC
App. E.2): x / std(x) = layernorm(x) without affine and eps. Proofs only."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register


@register("invstd-to-norm", "assumption 'states have mean 0': invstd(x) -> layernorm(x, "
          "affine=false, eps=0) (proofs only)")
def invstd_to_norm(ir: IR) -> bool:
    changed = False
    for v in ir.of_type(n.InvStd):
        p = ir.payload(v)
        ir.set_payload(v, n.Norm("layernorm", False, 0.0, p.width))
        changed = True
    return changed
