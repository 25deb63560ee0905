from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Streams, as_streams
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import const_mix, full_slice
from hcdsl.passes.registry import pattern


@pattern("drop-zero-rows", "a constant mix of a stack ignores the parts it weights by 0; a "
         "mix that reads one part is a mix of that part (static parallel patterns: a layer "
         "no longer waits for the output it does not read)", n.Mix)
def drop_zero_rows(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, x, _coef, m = found
    stack = ir.payload(x)
    if not (isinstance(stack, n.Stack) and full_slice(p, m)):
        return False
    parts = [ir.inputs(x)[q] for q in stack.ports()]
    starts = [0]
    for u in parts:
        starts.append(starts[-1] + as_streams(ir.type_of(u)).count)
    keep = [i for i in range(len(parts))
            if any(x != 0 for row in m[starts[i]:starts[i + 1]] for x in row)]
    if len(keep) == len(parts) or not keep:
        return False
    rows = tuple(row for i in keep for row in m[starts[i]:starts[i + 1]])
    if len(keep) == 1 and isinstance(ir.type_of(parts[keep[0]]), Streams):
        # mix(stack(a, b), [[0], [M_b]]) -> mix(b, M_b)
        src = parts[keep[0]]
    else:
        # mix(stack(a, b, c), M with a's rows 0) -> mix(stack(b, c), M without them)
        src = rw.add(f"{v}.stack", n.Stack(len(keep)),
                     **{f"s{j}": parts[i] for j, i in enumerate(keep)})
    coef = rw.add(f"{v}.coef", n.ConstCoef(rows))
    rw.replace_inputs(v, n.Mix((0, len(rows)), (0, len(rows[0]))), x=src, coef=coef)
    return True
