import numpy as np

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import const_mixes, full_slice, prune


@register("ones-mix", "an all-ones constant mix is a copy (1 x n) or a sum of streams (n x 1)")
def ones_mix(ir: IR) -> bool:
    changed = False
    for v, p, x, coef, m in list(const_mixes(ir)):
        if not (full_slice(p, m) and np.array_equal(m, np.ones_like(m))):
            continue
        if m.shape[0] == 1 and m.shape[1] > 1:
            payload: n.Node = n.Copy(m.shape[1])  # mix(h, [[1, ..., 1]]) -> copy(h, n)
        elif m.shape[1] == 1 and m.shape[0] > 1:
            payload = n.SumStreams()  # mix(H, [[1], ..., [1]]) -> sum of the streams
        else:
            continue
        ir.g.remove_edge(coef, v, key="coef")
        ir.set_payload(v, payload)
        prune(ir, coef)
        changed = True
    return changed
