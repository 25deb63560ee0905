from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Hidden, Streams
from hcdsl.passes.registry import register
from hcdsl.passes.util import prune


def _one_stream_of(ir: IR, node_id: str) -> str | None:
    """x when node_id is split(x, parts=1) of a hidden vector, else None."""
    p = ir.payload(node_id)
    if not isinstance(p, n.Split) or p.parts != 1:
        return None
    return ir.inputs(node_id)["x"]


@register("squeeze-single-stream",
          "a 1-stream state is a hidden vector: adds and norms move in front of split(1)")
def squeeze_single_stream(ir: IR) -> bool:
    changed = False
    types = ir.types()
    for v in ir.order():
        p = ir.payload(v)
        if not isinstance(p, (n.Add, n.Norm)) or not isinstance(types[v], Streams):
            continue
        ins = ir.inputs(v)
        inner = {port: _one_stream_of(ir, u) for port, u in ins.items()}
        if any(x is None or not isinstance(types[x], Hidden) for x in inner.values()):
            continue
        # add(split1(a), split1(b), ...) -> split1(add(a, b, ...))
        # norm(split1(x))                -> split1(norm(x))   (one stream: the same axis)
        # v keeps its id (and so its parameters); a new split node carries the old type
        out = ir.add(ir.fresh_id(f"{v}.split"), n.Split(1))
        ir.replace_uses(v, out)
        ir.connect(v, out, "x")
        for port, x in inner.items():
            ir.rewire(v, port, x)
        prune(ir, *ins.values())  # the split(1) nodes, once nothing else reads them
        changed = True
    return changed
