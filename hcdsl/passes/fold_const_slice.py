from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import as_matrix, const_mixes, full_slice, prune


@register("fold-const-slice", "a mix reading a slice of a constant M gets its own constant")
def fold_const_slice(ir: IR) -> bool:
    changed = False
    for v, p, _x, coef, m in list(const_mixes(ir)):
        if full_slice(p, m):
            continue
        # mix(x, const M)[rows, cols] -> mix(x, const M[rows, cols])
        (r0, r1), (c0, c1) = p.rows, p.cols
        sliced = ir.add(ir.fresh_id(f"{v}.coef"), n.ConstCoef(as_matrix(m[r0:r1, c0:c1])))
        ir.rewire(v, "coef", sliced)
        ir.set_payload(v, n.Mix((0, r1 - r0), (0, c1 - c0)))
        prune(ir, coef)  # M itself, once no mix reads it
        changed = True
    return changed
