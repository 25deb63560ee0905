import numpy as np

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import as_streams
from hcdsl.passes.registry import register
from hcdsl.passes.util import as_matrix, const_mixes, full_slice, prune


@register("drop-zero-rows", "a constant mix of a stack ignores the parts it weights by 0; a "
          "mix that reads one part is a mix of that part (static parallel patterns: a layer "
          "no longer waits for the output it does not read)")
def drop_zero_rows(ir: IR) -> bool:
    types = ir.types()
    for v, p, x, coef, m in list(const_mixes(ir)):
        stack = ir.payload(x)
        if not (isinstance(stack, n.Stack) and full_slice(p, m)):
            continue
        parts = [ir.inputs(x)[q] for q in stack.ports()]
        sizes = [as_streams(types[u]).count for u in parts]
        starts = np.cumsum([0] + sizes)
        keep = [i for i in range(len(parts)) if np.any(m[starts[i]:starts[i + 1]] != 0)]
        if len(keep) == len(parts) or not keep:
            continue
        rows = np.concatenate([m[starts[i]:starts[i + 1]] for i in keep])
        if len(keep) == 1 and isinstance(types[parts[keep[0]]], n.Streams):
            # mix(stack(a, b), [[0], [M_b]]) -> mix(b, M_b)
            src = parts[keep[0]]
        else:
            # mix(stack(a, b, c), M with a's rows 0) -> mix(stack(b, c), M without them)
            src = ir.add(ir.fresh_id(f"{v}.stack"), n.Stack(len(keep)),
                         **{f"s{j}": parts[i] for j, i in enumerate(keep)})
        new_coef = ir.add(ir.fresh_id(f"{v}.coef"), n.ConstCoef(as_matrix(rows)))
        ir.rewire(v, "x", src)
        ir.rewire(v, "coef", new_coef)
        ir.set_payload(v, n.Mix((0, rows.shape[0]), (0, rows.shape[1])))
        prune(ir, x, coef)
        return True  # the graph changed under the iterator: the pipeline calls again
    return False
