from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import block, const_mix, full_slice
from hcdsl.passes.registry import pattern


@pattern("fold-const-slice", "a mix reading a slice of a constant M gets its own constant",
         n.Mix)
def fold_const_slice(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None or full_slice(found[0], found[3]):
        return False
    p, _x, _coef, m = found
    # mix(x, const M)[rows, cols] -> mix(x, const M[rows, cols])
    sliced = rw.add(f"{v}.coef", n.ConstCoef(block(m, p.rows, p.cols)))
    rw.rewire(v, "coef", sliced)
    rw.set_payload(v, n.Mix((0, p.rows[1] - p.rows[0]), (0, p.cols[1] - p.cols[0])))
    return True
