from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import as_matrix, const_mixes, const_of, full_slice, prune


@register("fold-const-chain", "two constant mixes in a row become one: mix(mix(x, A), B)")
def fold_const_chain(ir: IR) -> bool:
    for v, p, x, coef, b in list(const_mixes(ir)):
        inner = ir.payload(x)
        if not (isinstance(inner, n.Mix) and full_slice(p, b)):
            continue
        a = const_of(ir, ir.inputs(x)["coef"])
        if a is None or not full_slice(inner, a):
            continue
        # mix(mix(x, A), B) -> mix(x, A @ B)   (y = Bᵀ Aᵀ x = (A B)ᵀ x)
        folded = ir.add(ir.fresh_id(f"{v}.coef"), n.ConstCoef(as_matrix(a @ b)))
        ir.rewire(v, "coef", folded)
        ir.rewire(v, "x", ir.inputs(x)["x"])
        ir.set_payload(v, n.Mix((0, a.shape[0]), (0, b.shape[1])))
        prune(ir, coef, x)  # B, and the inner mix when v was its only reader
        return True  # the graph changed under the iterator: let the pipeline call again
    return False
