import numpy as np

from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register
from hcdsl.passes.util import const_mixes, full_slice, prune


@register("drop-identity-mix", "a mix with the identity matrix is its input")
def drop_identity_mix(ir: IR) -> bool:
    changed = False
    for v, p, x, coef, m in list(const_mixes(ir)):
        square = m.shape[0] == m.shape[1]
        if full_slice(p, m) and square and np.array_equal(m, np.eye(m.shape[0])):
            # mix(x, I) -> x
            ir.replace_uses(v, x)
            ir.remove(v)
            prune(ir, coef)
            changed = True
    return changed
