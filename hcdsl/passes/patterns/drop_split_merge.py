from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Streams
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


@pattern("drop-split-merge", "split and merge undo each other", n.Merge, n.Split)
def drop_split_merge(ir: IR, v: str, rw: Rewriter) -> bool:
    p = ir.payload(v)
    src = ir.inputs(v)["x"]
    q = ir.payload(src)
    if isinstance(p, n.Merge) and isinstance(q, n.Split):
        # merge(split(x)) -> x
        rw.replace_uses(v, ir.inputs(src)["x"])
        return True
    if isinstance(p, n.Split) and isinstance(q, n.Merge):
        inner = ir.inputs(src)["x"]
        t = ir.type_of(inner)
        # split(merge(x)) -> x, when x has as many streams as the split makes
        if isinstance(t, Streams) and t.count == p.parts:
            rw.replace_uses(v, inner)
            return True
    return False
