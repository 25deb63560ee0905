from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Streams
from hcdsl.passes.registry import register
from hcdsl.passes.util import prune


@register("drop-split-merge", "split and merge undo each other")
def drop_split_merge(ir: IR) -> bool:
    changed = False
    types = ir.types()
    for v in ir.order():
        if v not in ir:
            continue
        p = ir.payload(v)
        src = ir.inputs(v).get("x")
        if src is None:
            continue
        q = ir.payload(src)
        inner = ir.inputs(src).get("x")
        # merge(split(x)) -> x
        undo = isinstance(p, n.Merge) and isinstance(q, n.Split)
        # split(merge(x)) -> x, when x has as many streams as the split makes
        undo |= (isinstance(p, n.Split) and isinstance(q, n.Merge)
                 and inner is not None and isinstance(types[inner], Streams)
                 and types[inner].count == p.parts)
        if undo and inner is not None:
            ir.replace_uses(v, inner)
            ir.remove(v)
            prune(ir, src)
            changed = True
    return changed
