"""Where recomputation across layers cuts a model into segments (backends/segments.py
lowers them; hcdsl/memory.py chooses how many layers a segment holds). Torch-free: the IR
alone says which values cross a cut and how wide they are.

A segment holds k consecutive layers. Its boundary lies in the gap between two layers, at the
point in topological order where the fewest elements per token cross (HC's n-stream state
after the write, not the layer's output together with the read mix); what crosses is kept
for backward, everything the connection computes inside is rebuilt there.
"""

from __future__ import annotations

from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.regions import is_compute
from hcdsl.ir.types import Coef, Hidden, Multi, Streams, Type


def width(t: Type) -> int:
    """Elements per token of a value of type t (0 for tokens; hcdsl/memory.py counts the
    logits with the loss)."""
    if isinstance(t, Hidden):
        return t.width
    if isinstance(t, Streams):
        return t.count * t.width
    if isinstance(t, Coef):
        return t.rows * t.cols
    if isinstance(t, Multi):
        return sum(width(x) for x in t.items)
    return 0


def anchors(ir: IR, order: list[str]) -> list[int]:
    """Positions in `order` of the embedding (or input), every layer, and the head (or
    output): segments hold the layers between them."""
    pos = [i for i, v in enumerate(order)
           if isinstance(ir.payload(v), (n.Layer, n.ParallelLayers))]
    if not pos:
        return []
    first = max((i for i, v in enumerate(order[:pos[0]])
                 if isinstance(ir.payload(v), (n.Embed, n.Input))), default=0)
    last = min((i for i, v in enumerate(order) if i > pos[-1]
                and isinstance(ir.payload(v), (n.Unembed, n.Output))), default=len(order) - 1)
    return [first, *pos, last]


def crossing(ir: IR, order: list[str], cut: int) -> int:
    """Elements per token of the values made before position `cut` and read at or after."""
    where = {v: i for i, v in enumerate(order)}
    return sum(width(ir.type_of(v)) for v in order[:cut]
               if any(where[w] >= cut for w in ir.readers(v)))


def cuts(ir: IR, order: list[str]) -> list[int]:
    """One cut per gap between anchors: the position (order[:cut] before it) in the gap
    with the fewest elements crossing; the earliest of equals."""
    a = anchors(ir, order)
    out = []
    for lo, hi in zip(a, a[1:]):
        best = min(range(lo + 1, hi + 1), key=lambda c: (crossing(ir, order, c), c))
        out.append(best)
    return out


def layer_count(ir: IR) -> int:
    return sum(isinstance(ir.payload(v), (n.Layer, n.ParallelLayers)) for v in ir.g.nodes)


def segments(ir: IR, order: list[str], every: int) -> list[list[str]]:
    """The node runs of the segments of `every` layers, in order (the last may be shorter).
    A run of one layer keeps its state at both ends: no gain, so every < 2 gives none."""
    c = cuts(ir, order)
    if every < 2 or len(c) < 2:
        return []
    layers = len(c) - 1
    out = []
    for start in range(0, layers, every):
        stop = min(start + every, layers)
        if stop - start >= 2:
            out.append(order[c[start]:c[stop]])
    return out


def rebuilt(ir: IR, order: list[str]) -> int:
    """Elements per token the connection computes between the first and the last cut (what
    a segment rebuilds in backward), coefficients excluded (they are kept)."""
    c = cuts(ir, order)
    if len(c) < 2:
        return 0
    return sum(width(ir.type_of(v)) for v in order[c[0]:c[-1]]
               if not is_compute(ir, v) and not isinstance(ir.type_of(v), Coef))


def segment_model(ir: IR) -> tuple[int, float, float]:
    """(layers N, elements per token crossing a cut b (the mean over the cuts between
    layers), elements per token the connection computes per layer r): hcdsl.memory's
    inputs for the segment length."""
    order = ir.order()
    c = cuts(ir, order)
    layers = len(c) - 1
    if layers < 1:
        return 0, 0.0, 0.0
    inner = c[1:-1] or c
    boundary = sum(crossing(ir, order, x) for x in inner) / len(inner)
    return layers, boundary, rebuilt(ir, order) / layers
