from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import const_mix, full_slice, is_ones
from hcdsl.passes.registry import pattern


@pattern("ones-mix", "an all-ones constant mix is a copy (1 x n) or a sum of streams (n x 1)",
         n.Mix)
def ones_mix(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, x, _coef, m = found
    if not (full_slice(p, m) and is_ones(m)):
        return False
    rows, cols = len(m), len(m[0])
    if rows == 1 and cols > 1:
        payload: n.Node = n.Copy(cols)  # mix(h, [[1, ..., 1]]) -> copy(h, n)
    elif cols == 1 and rows > 1:
        payload = n.SumStreams()  # mix(H, [[1], ..., [1]]) -> sum of the streams
    else:
        return False
    rw.replace_inputs(v, payload, x=x)
    return True
