import numpy as np

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import const_mixes, full_slice, prune


@register("mix-to-add", "a constant all-ones mix of single streams is a plain add")
def mix_to_add(ir: IR) -> bool:
    changed = False
    types = ir.types()
    for v, p, x, coef, m in list(const_mixes(ir)):
        stack = ir.payload(x)
        if not (isinstance(stack, n.Stack) and full_slice(p, m) and m.shape[1] == 1):
            continue
        if not np.array_equal(m, np.ones_like(m)):
            continue
        srcs = [ir.inputs(x)[q] for q in stack.ports()]
        if len({types[s] for s in srcs} | {types[v]}) != 1:
            continue
        # mix(stack(a, b, ...), ones) -> add(a, b, ...)   (the static residual h + T(h))
        ir.g.remove_edges_from([(u, v, k) for u, _, k in ir.g.in_edges(v, keys=True)])
        ir.set_payload(v, n.Add(len(srcs)))
        for i, s in enumerate(srcs):
            ir.connect(s, v, f"s{i}")
        prune(ir, x, coef)  # the stack and M
        changed = True
    return changed
