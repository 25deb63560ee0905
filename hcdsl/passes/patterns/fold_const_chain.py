from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import const_mix, full_slice, matmul
from hcdsl.passes.registry import pattern


@pattern("fold-const-chain", "two constant mixes in a row become one: mix(mix(x, A), B)",
         n.Mix)
def fold_const_chain(ir: IR, v: str, rw: Rewriter) -> bool:
    outer = const_mix(ir, v)
    if outer is None or not full_slice(outer[0], outer[3]):
        return False
    _p, x, _coef, b = outer
    inner = const_mix(ir, x)
    if inner is None or not full_slice(inner[0], inner[3]):
        return False
    _q, xx, _acoef, a = inner
    # mix(mix(x, A), B) -> mix(x, A @ B)   (y = Bᵀ Aᵀ x = (A B)ᵀ x)
    folded = rw.add(f"{v}.coef", n.ConstCoef(matmul(a, b)))
    rw.replace_inputs(v, n.Mix((0, len(a)), (0, len(b[0]))), x=xx, coef=folded)
    return True
