from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import Hidden, Streams
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern


def _one_stream_of(ir: IR, node_id: str) -> str | None:
    """x when node_id is split(x, parts=1) of a hidden vector, else None."""
    p = ir.payload(node_id)
    if not isinstance(p, n.Split) or p.parts != 1:
        return None
    x = ir.inputs(node_id)["x"]
    return x if isinstance(ir.type_of(x), Hidden) else None


@pattern("squeeze-single-stream",
         "a 1-stream state is a hidden vector: adds and norms move in front of split(1)",
         n.Add, n.Norm)
def squeeze_single_stream(ir: IR, v: str, rw: Rewriter) -> bool:
    if not isinstance(ir.type_of(v), Streams):
        return False
    ins = ir.inputs(v)
    inner = {port: _one_stream_of(ir, u) for port, u in ins.items()}
    if any(x is None for x in inner.values()):
        return False
    # add(split1(a), split1(b), ...) -> split1(add(a, b, ...))
    # norm(split1(x))                -> split1(norm(x))   (one stream: the same axis)
    # v keeps its id (and so its parameters); a new split node carries the old type
    out = rw.add(f"{v}.split", n.Split(1), x=v)  # reads v, so add it before redirecting
    for user, port in ir.users(v):
        if user != out:
            rw.rewire(user, port, out)
    for port, x in inner.items():
        rw.rewire(v, port, x)
    return True
