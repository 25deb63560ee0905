from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern

# nodes without parameters of their own: two equal ones on equal inputs are one value (the
# kinds' `pure` trait; a node may refuse: Node.is_pure)
PURE = n.having("pure")


@pattern("cse", "common subexpressions: equal pure nodes on equal inputs are merged", *PURE)
def cse(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    if not p.is_pure():  # e.g. a norm with its own gain and bias: a function of its own
        return False
    table: dict = rw.memo.setdefault("cse", {})
    key = (p, tuple(sorted(ir.inputs(v).items())))
    seen = table.get(key)
    if seen is None or seen == v or seen not in ir or ir.payload(seen) != p or tuple(
            sorted(ir.inputs(seen).items())) != key[1]:
        table[key] = v  # first of its kind (or the one remembered has changed since)
        return False
    # v == seen -> every user of v reads seen
    rw.replace_uses(v, seen)
    return True
