"""Under the assumption "the embedding is normalised" (mean 0, std 1 per token, HC App. E.2's
Post-Norm reading): a non-affine, eps-free norm of the embedding is the embedding. Proofs only."""

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import skip_reshapes



@register("embed-normalised", "assumption 'embedding normalised': norm(h0) -> h0 for a norm "
          "without affine and eps (proofs only)")
def embed_normalised(ir: IR) -> bool:
    for v in ir.of_type(n.Norm):
        p = ir.payload(v)
        if p.affine or p.eps != 0.0:
            continue
        src = skip_reshapes(ir, ir.inputs(v)["x"])
        if isinstance(ir.payload(src), n.Embed):
            ir.replace_uses(v, ir.inputs(v)["x"])
            ir.remove(v)
            return True
    return False
