from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.matrix import const_mix, full_slice, is_identity
from hcdsl.passes.registry import pattern


@pattern("drop-identity-mix", "a mix with the identity matrix is its input", n.Mix)
def drop_identity_mix(ir: IR, v: str, rw: Rewriter) -> bool:
    found = const_mix(ir, v)
    if found is None:
        return False
    p, x, _coef, m = found
    if not (full_slice(p, m) and is_identity(m)) or ir.type_of(x) != ir.type_of(v):
        return False
    # mix(x, I) -> x
    rw.replace_uses(v, x)
    return True
