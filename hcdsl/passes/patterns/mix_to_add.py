from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import const_mix, full_slice, is_ones
from hcdsl.passes.registry import pattern


@pattern("mix-to-add", "a constant all-ones mix of single streams is a plain add", n.Mix)
def mix_to_add(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, x, _coef, m = found
    stack = ir.payload(x)
    if not (isinstance(stack, n.Stack) and full_slice(p, m) and len(m[0]) == 1 and is_ones(m)):
        return False
    srcs = [ir.inputs(x)[q] for q in stack.ports()]
    if len({ir.type_of(s) for s in srcs} | {ir.type_of(v)}) != 1:
        return False
    # mix(stack(a, b, ...), ones) -> add(a, b, ...)   (the static residual h + T(h))
    rw.replace_inputs(v, n.Add(len(srcs)), **{f"s{i}": s for i, s in enumerate(srcs)})
    return True
