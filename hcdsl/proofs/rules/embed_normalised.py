"""Under the assumption "the embedding is normalised" (mean 0, std 1 per token, HC App. E.2's
Post-Norm reading): a non-affine, eps-free norm of the embedding is the embedding. Proofs only."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import skip_reshapes
from hcdsl.passes.registry import pattern


@pattern("embed-normalised", "assumption 'embedding normalised': norm(h0) -> h0 for a norm "
         "without affine and eps (proofs only)", n.Norm)
def embed_normalised(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    if p.affine or p.eps != 0.0:
        return False
    x = ir.inputs(v)["x"]
    if not isinstance(ir.payload(skip_reshapes(ir, x)), n.Embed):
        return False
    rw.replace_uses(v, x)
    return True
