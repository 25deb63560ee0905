from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.passes.registry import register

# nodes without parameters of their own; two equal ones on equal inputs are one value
PURE = (n.Split, n.Merge, n.Stack, n.Mix, n.Add, n.ConstCoef, n.Copy, n.SumStreams, n.InvStd)


def _pure(p: n.Node) -> bool:
    return isinstance(p, PURE) or (isinstance(p, n.Norm) and not p.affine)


@register("cse", "common subexpressions: equal pure nodes on equal inputs are merged")
def cse(ir: IR) -> bool:
    changed = False
    seen: dict[tuple, str] = {}
    for v in ir.order():
        p = ir.payload(v)
        if not _pure(p):
            continue
        key = (p, tuple(sorted(ir.inputs(v).items())))
        if key in seen:
            # v == seen[key] -> every user of v reads seen[key]
            ir.replace_uses(v, seen[key])
            ir.remove(v)
            changed = True
        else:
            seen[key] = v
    return changed
