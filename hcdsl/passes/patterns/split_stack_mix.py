from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import as_streams
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("split-stack-mix", "a mix of a stack of a layer's output and a state is the sum of "
         "a mix of each: the depth connection H' = B^T T(h) + A_r^T H without materialising "
         "the stack [T(h); H]", n.Mix)
def split_stack_mix(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    ins = ir.inputs(v)
    stack = ir.payload(ins["x"])
    # two parts only (HC's and FC's write): a dense family's history stack of many entries
    # stays one contraction (one kernel eager, instead of one per entry)
    if not isinstance(stack, n.Stack) or stack.arity != 2:
        return False
    parts = [ir.inputs(ins["x"])[q] for q in stack.ports()]
    # mix(stack(a, b), M) -> add(mix(a, M[rows of a]), mix(b, M[rows of b]))
    terms, row = [], p.rows[0]
    for i, u in enumerate(parts):
        count = as_streams(ir.type_of(u)).count
        terms.append(rw.add(f"{v}.part{i}", n.Mix((row, row + count), p.cols), x=u,
                            coef=ins["coef"]))
        row += count
    rw.replace_inputs(v, n.Add(len(terms)), **{f"s{i}": t for i, t in enumerate(terms)})
    return True
