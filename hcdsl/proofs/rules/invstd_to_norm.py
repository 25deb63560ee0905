"""Under the assumption "every state has mean 0" (T's output and the embedding re-centred, HC
App. E.2): x / std(x) = layernorm(x) without affine and eps. Proofs only."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("invstd-to-norm", "assumption 'states have mean 0': invstd(x) -> layernorm(x, "
         "affine=false, eps=0) (proofs only)", n.InvStd)
def invstd_to_norm(ir: IR, v: str, rw: Rewriter) -> bool:
    rw.set_payload(v, n.Norm("layernorm", False, 0.0, ir.payload(v).width))
    return True
