from hcdsl.ir import nodes as n
from hcdsl.lang.catalog import LAYERS
from hcdsl.ir.graph import IR
from hcdsl.passes.driver import Rewriter
from hcdsl.passes.registry import pattern

FUSABLE = tuple(name for name, k in LAYERS.items() if k.fusable)  # LayerKind.fusable


def _fusable(ir: IR, layer: str, x: str) -> bool:
    """A built-in layer that reads x on every port and returns only its output."""
    p = ir.payload(layer)
    return (isinstance(p, n.Layer) and p.kind in FUSABLE and not p.extern and not p.taps
            and all(u == x for u in ir.inputs(layer).values()))


@pattern("fuse-parallel-inputs", "layers that read one value run with one input matmul "
         "(attention's q, k, v and the MLP's up-projection: a parallel block, GPT-J, PaLM)",
         n.Norm, n.Merge, n.Add, n.Embed, n.Split, n.Mix, n.Take)
def fuse_parallel_inputs(ir: IR, v: str, rw: Rewriter) -> bool:
    layers = sorted({u for u in ir.readers(v) if _fusable(ir, u, v)})
    if len(layers) < 2:
        return False
    # layer_1(x), layer_2(x), ... -> tap_i(parallel_layers(x))
    fused = rw.add(f"{layers[0]}.fused", n.ParallelLayers(
        tuple(layers), tuple(ir.payload(u) for u in layers)), x=v)
    for i, u in enumerate(layers):
        rw.replace_uses(u, rw.add(f"{u}.out{i}", n.Tap(i), x=fused))
    return True
