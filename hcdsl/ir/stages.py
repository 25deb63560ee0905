"""Where pipeline parallelism cuts a model into stages (backends/stages.py lowers them,
backends/pipeline.py runs them on torch.distributed.pipelining). Torch-free: the IR alone
says which values cross each cut and how wide they are.

A stage holds consecutive layers. Its boundaries are the cuts of recomputation across
layers (hcdsl/ir/segments.py: in the gap between two layers, at the point in topological
order where the fewest elements per token cross), so what a stage sends is what a segment
keeps: HC's and mHC's n-stream state (n·C), FC's fractions, the dense families' history of
earlier outputs (DenseFormer's block outputs, MUDD's, the embedding), a value residual's
first values; whatever an earlier stage made and a later one reads is passed along through
the stages in between. The embedding (and the connection's expansion) is in the first
stage, the readout, final norm and head in the last.

A value that does not depend on the tokens (a static coefficient, a constant) is not sent:
it lives in the stage that reads it (its parameters with it). Stages are balanced by the
forward FLOPs per token counted from the IR (matrix products 2 x parameters, stream mixes,
attention over `seq` keys), the parameters breaking ties; or split as the user says (layer
counts per stage). A cut is only ever between two layers where the second reads the first
(never inside a parallel block, whose layers read one value).
"""

from __future__ import annotations

from dataclasses import dataclass

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.segments import anchors, crossing, width
from hcdsl.lang.catalog import attends

LAYERS = (n.Layer, n.ParallelLayers)


class StageError(CompileError):
    """A pipeline split that cannot be made: the message says why, the hint what to ask."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message} ({hint})")
        self.message, self.hint = message, hint


@dataclass(frozen=True)
class Stage:
    index: int
    layers: tuple[int, int]  # [first, stop) 0-based positions of the layers it runs
    nodes: tuple[str, ...]  # its IR nodes, in topological order
    inputs: tuple[str, ...]  # values it receives (none for the first: it reads the input)
    outputs: tuple[str, ...]  # values it sends (none for the last: it gives the output)
    params: int
    flops: int  # forward FLOPs per token
    widths: tuple[int, ...]  # elements per token of each input
    types: tuple[str, ...]  # the inputs' IR types, as the dump prints them


@dataclass(frozen=True)
class Cut:
    after: int  # layers before the cut
    values: tuple[str, ...]  # IR nodes whose values cross it
    widths: tuple[int, ...]  # elements per token of each
    types: tuple[str, ...]  # their IR types, as the dump prints them

    @property
    def elements(self) -> int:
        """Elements per token crossing (x bytes per element: what is sent per token)."""
        return sum(self.widths)


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...]
    layers: int

    @property
    def cuts(self) -> tuple[Cut, ...]:
        return tuple(Cut(s.layers[0], s.inputs, s.widths, s.types) for s in self.stages[1:])

    @property
    def split(self) -> tuple[int, ...]:
        return tuple(s.layers[1] - s.layers[0] for s in self.stages)


# ---------------------------------------------------------------- costs

def node_flops(ir: IR, v: str, seq: int) -> int:
    """Forward FLOPs per token of one node: a module's matrix products 2 x its parameters
    (the embedding is a lookup: none), attention's scores and weighted sum 4 x dim x seq
    (causal: half of it on average, so 2 x dim x seq), a stream mix 2 x rows x cols x width,
    anything else one operation per element it writes."""
    p = ir.payload(v)
    if isinstance(p, (n.Embed, n.Input, n.Output)):
        return 0
    count = p.param_count() or 0
    flops = 2 * count
    for layer in p.layers if isinstance(p, n.ParallelLayers) else (p,):
        if isinstance(layer, n.Layer) and attends(layer.kind, layer.extern):
            flops += 2 * layer.dim * seq
    if isinstance(p, n.Mix):
        (r0, r1), (c0, c1) = p.rows, p.cols
        stream = width(ir.type_of(v)) // max(1, c1 - c0)
        flops += 2 * (r1 - r0) * (c1 - c0) * stream
    elif not count:
        flops += width(ir.type_of(v))
    return flops


def layer_ids(p: n.Node, v: str) -> tuple[str, ...]:
    return p.ids if isinstance(p, n.ParallelLayers) else (v,)


# ---------------------------------------------------------------- the plan

def data_nodes(ir: IR) -> set[str]:
    """The nodes whose values depend on the model's input (the rest: parameters and
    constants, which live where they are read)."""
    seen: set[str] = set()
    stack = [v for v in ir.g.nodes if isinstance(ir.payload(v), n.Input)]
    while stack:
        v = stack.pop()
        if v not in seen:
            seen.add(v)
            stack.extend(ir.readers(v))
    return seen


def plan(ir: IR, stages: int | None = None, split: tuple[int, ...] | None = None,
         seq: int = 0) -> Plan:
    """The stages of `ir`: `stages` balanced ones, or the layer counts of `split`."""
    order = ir.order()
    data = data_nodes(ir)
    flow = [v for v in order if v in data]
    units = [v for v in flow if isinstance(ir.payload(v), LAYERS)]  # one per cut gap
    sizes = [len(layer_ids(ir.payload(v), v)) for v in units]
    total = sum(sizes)
    if not units or anchors(ir, flow) == []:
        raise StageError("the model has no layers to put in pipeline stages",
                         "pipeline parallelism cuts between layers")
    c = stage_cuts(ir, flow, data)  # c[j]: the cut after j units (None: no cut there)
    boundaries = _boundaries(ir, units, sizes, total, stages, split, flow, c, seq)
    where: dict[str, int] = {}
    starts = [0, *(c[b] for b in boundaries[1:-1]), len(flow)]
    for k in range(len(starts) - 1):
        for v in flow[starts[k]:starts[k + 1]]:
            where[v] = k
    for v in reversed(order):  # a parameter or constant: with its first reader
        if v not in data:
            readers = [where[w] for w in ir.readers(v) if w in where]
            where[v] = min(readers, default=0)
    count = len(starts) - 1
    _check_tied(ir, where)
    nodes: list[list[str]] = [[] for _ in range(count)]
    for v in order:
        nodes[where[v]].append(v)
    sent: list[list[str]] = [[] for _ in range(count)]  # sent[k]: into stage k
    for v in order:
        last = max((where[w] for w in ir.readers(v)), default=where[v])
        for k in range(where[v] + 1, last + 1):
            sent[k].append(v)
    for k in range(1, count):  # stage_cuts keeps every parameter's readers on one side
        assert all(v in data for v in sent[k]), f"hcdsl bug: a parameter crosses cut {k}"
    made = tuple(
        Stage(k, (sum(sizes[:boundaries[k]]), sum(sizes[:boundaries[k + 1]])),
              tuple(nodes[k]), tuple(sent[k]),
              tuple(sent[k + 1]) if k + 1 < count else (),
              sum(ir.payload(v).param_count() or 0 for v in nodes[k]),
              sum(node_flops(ir, v, seq) for v in nodes[k]),
              tuple(width(ir.type_of(v)) for v in sent[k]),
              tuple(str(ir.type_of(v)) for v in sent[k]))
        for k in range(count))
    return Plan(made, total)


def stage_cuts(ir: IR, flow: list[str], data: set[str]) -> list[int | None]:
    """One cut per gap between anchors (hcdsl/ir/segments.py's rule: the position with the
    fewest elements crossing, the earliest of equals), among the positions that leave every
    parameter's readers on one side (a static coefficient read before and after a layer's
    own work stays with it); None where the gap has no such position."""
    where = {v: i for i, v in enumerate(flow)}
    spans = []  # (first, last) positions of the data nodes that read a parameter's value
    for v in ir.g.nodes:
        if v in data:
            continue
        seen, stack, pos = set(), [v], []
        while stack:
            u = stack.pop()
            for w in ir.readers(u):
                if w in where:
                    pos.append(where[w])
                elif w not in seen:
                    seen.add(w)
                    stack.append(w)
        if pos:
            spans.append((min(pos), max(pos)))
    a = anchors(ir, flow)
    out: list[int | None] = []
    for lo, hi in zip(a, a[1:]):
        ok = [c for c in range(lo + 1, hi + 1) if not any(f < c <= l for f, l in spans)]
        out.append(min(ok, key=lambda c: (crossing(ir, flow, c), c)) if ok else None)
    return out


def _check_tied(ir: IR, where: dict[str, int]) -> None:
    """A tied head reads the embedding's weight: both must be in one stage."""
    for v in ir.of_type(n.Unembed):
        embed = next(iter(ir.of_type(n.Embed)), None)
        if ir.payload(v).tied and embed is not None and where[v] != where[embed]:
            raise StageError(
                "the head is tied to the embedding (one weight), which is in the first "
                "stage and the head in the last; a pipeline cannot share a weight between "
                "stages", "untie it for a pipeline: head = unembed(tied=false)")


def _cuttable(ir: IR, units: list[str], j: int) -> bool:
    """A cut after unit j (0-based: between units[j] and units[j+1]) is between two layers
    where the second reads the first; else they run in parallel (a parallel block)."""
    target, stack, seen = units[j + 1], [units[j]], set()
    while stack:
        v = stack.pop()
        if v == target:
            return True
        if v in seen:
            continue
        seen.add(v)
        stack.extend(w for w in ir.readers(v)
                     if not isinstance(ir.payload(w), LAYERS) or w == target)
    return False


def _boundaries(ir: IR, units: list[str], sizes: list[int], total: int, stages: int | None,
                split: tuple[int, ...] | None, flow: list[str], c: list[int],
                seq: int) -> list[int]:
    """Unit indices where the stages start, with 0 first and len(units) last."""
    if split is not None:
        return _user_split(ir, units, sizes, total, split, c)
    if stages is None or isinstance(stages, bool) or not isinstance(stages, int) \
            or stages < 1:
        raise StageError(f"stages={stages!r}: a whole number of pipeline stages >= 1",
                         "e.g. --pp 2")
    allowed = [j + 1 for j in range(len(units) - 1)
               if _cuttable(ir, units, j) and c[j + 1] is not None]
    if stages - 1 > len(allowed):
        blocks = len(allowed) + 1
        raise StageError(
            f"{stages} pipeline stages for a model of {total} layers that can be cut into "
            f"at most {blocks} stage{'s' if blocks != 1 else ''}",
            f"ask for at most --pp {blocks}" + (
                " (layers that run in parallel stay in one stage)" if blocks < total else ""))
    # forward FLOPs of the pieces between possible cuts (the first holds the embedding,
    # the last the head)
    cost = [node_flops(ir, v, seq) for v in flow]
    params = [ir.payload(v).param_count() or 0 for v in flow]
    edges = [0, *allowed, len(units)]
    pos = [0, *(c[b] for b in allowed), len(flow)]
    piece = [(sum(cost[pos[i]:pos[i + 1]]), sum(params[pos[i]:pos[i + 1]]))
             for i in range(len(pos) - 1)]
    choice = _balance(piece, stages)
    return [edges[i] for i in choice]


def _balance(piece: list[tuple[int, int]], stages: int) -> list[int]:
    """Piece indices (0 first, len last) of `stages` contiguous groups whose largest
    (FLOPs, parameters) is least: a small dynamic programme, exact."""
    m = len(piece)
    pre = [(0, 0)]
    for f, p in piece:
        pre.append((pre[-1][0] + f, pre[-1][1] + p))

    def load(i: int, j: int) -> tuple[int, int]:
        return pre[j][0] - pre[i][0], pre[j][1] - pre[i][1]

    INF = (float("inf"), float("inf"))
    best = [[INF] * (m + 1) for _ in range(stages + 1)]
    back = [[0] * (m + 1) for _ in range(stages + 1)]
    best[0][0] = (0, 0)
    for s in range(1, stages + 1):
        for j in range(s, m + 1):
            for i in range(s - 1, j):
                cand = max(best[s - 1][i], load(i, j))
                if cand < best[s][j]:
                    best[s][j], back[s][j] = cand, i
    out = [m]
    for s in range(stages, 0, -1):
        out.append(back[s][out[-1]])
    return out[::-1]


def _user_split(ir: IR, units: list[str], sizes: list[int], total: int,
                split: tuple[int, ...], c: list[int | None]) -> list[int]:
    text = ",".join(map(str, split))
    if not split or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                        for k in split):
        raise StageError(f"--pp-split {text}: every stage needs a whole number >= 1 of "
                         "layers", f"e.g. --pp-split {total // 2},{total - total // 2}")
    if sum(split) != total:
        raise StageError(f"--pp-split {text} puts {sum(split)} layers in stages; the model "
                         f"has {total} (attention and FFN count one each)",
                         f"give counts that add up to {total}")
    ends = [0]
    for s in sizes:
        ends.append(ends[-1] + s)
    out, acc = [0], 0
    for k in split[:-1]:
        acc += k
        if acc not in ends:
            j = next(i for i, e in enumerate(ends) if e > acc) - 1
            ids = layer_ids(ir.payload(units[j]), units[j])
            raise StageError(
                f"--pp-split {text} cuts after layer {acc}, inside the parallel block "
                f"{', '.join(ids)} (one fused unit)",
                f"cut after layer {ends[j]} or {ends[j + 1]}")
        j = ends.index(acc)
        if not _cuttable(ir, units, j - 1):
            raise StageError(
                f"--pp-split {text} cuts after layer {acc}, between '{units[j - 1]}' and "
                f"'{units[j]}', which read one value (a parallel block)",
                "cut between two layers where the second reads the first's output")
        if c[j] is None:
            raise StageError(
                f"--pp-split {text} cuts after layer {acc}, where the connection reads a "
                f"parameter on both sides ({units[j - 1]} -> {units[j]}): the family "
                "cannot be cut there", "cut after another layer")
        out.append(j)
    out.append(len(units))
    return out
