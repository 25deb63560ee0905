"""Memory traffic of a connection, per token and layer, counted from the IR (no torch): what
the connection's operations read and write, in elements (x 4 for fp32 bytes, x 2 for bf16),
as the mHC paper accounts it (arXiv 2512.24880 §4.3: unfused HC reads (5n+1)C + n^2 + 2n
and writes (3n+1)C + n^2 + 2n per token and layer; a residual reads 2C and writes C).

Two counts on the optimised IR:
- unfused: every operation is its own kernel: it reads its inputs and writes its output
  (a view, such as a slice or a reshape, moves nothing); a coefficient generator also
  reads the state once more for its norm and writes the normed state;
- fused: every run of connection operations between two layers is one kernel (what
  torch.compile makes of it): it reads what the run takes from outside and writes what
  leaves it.
The layers' own traffic (and their pre-norms) is not the connection's and is not counted.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from hcdsl.compiler import Compilation
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.regions import connection_runs, is_compute
from hcdsl.ir.types import Coef, Hidden, Multi, Streams, Type
from hcdsl.passes.pipeline import DEFAULT
from hcdsl.schemes.program import Program, SpecLike

FREE = n.having("free")  # views (the kinds' `free` trait): nothing moves


def size(t: Type) -> int:
    """Elements per token of a value (a fixed matrix is per model: 0 per token)."""
    if isinstance(t, Hidden):
        return t.width
    if isinstance(t, Streams):
        return t.count * t.width
    if isinstance(t, Coef):
        return t.rows * t.cols if t.dynamic else 0
    if isinstance(t, Multi):
        return sum(size(x) for x in t.items)
    return 0


def node_traffic(ir: IR, v: str) -> tuple[int, int]:
    """(read, written) elements per token of one connection operation, unfused."""
    p = ir.payload(v)
    if isinstance(p, FREE):
        return 0, 0
    read = sum(size(ir.type_of(u)) for u in ir.inputs(v).values())
    written = size(ir.type_of(v))
    if isinstance(p, (n.LearnedCoef, n.GeneratorCoef)) and ir.inputs(v):
        state = size(ir.type_of(ir.inputs(v)["x"]))
        read, written = read + state, written + state  # its norm: read H, write norm(H)
    return read, written


class Traffic(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    family: str
    layers: int
    dim: int
    unfused_read: float  # elements per token and layer
    unfused_write: float
    fused_read: float
    fused_write: float
    kernels: int  # connection operations that move data, per layer, unfused
    runs: int  # fused kernels (runs of connection operations) per layer


def traffic(spec: SpecLike | Program) -> Traffic:
    """The connection's memory traffic of a spec (see the module doc)."""
    program = Compilation.load(spec, once=True)
    ir = program.ir(DEFAULT)
    L = max(1, len(program.spec.sequence))
    ur = uw = kernels = 0
    for v in ir.g.nodes:
        if is_compute(ir, v):
            continue
        r, w = node_traffic(ir, v)
        ur, uw = ur + r, uw + w
        kernels += int(r + w > 0)
    fr = fw = 0
    all_runs = connection_runs(ir, ir.order())
    for run in all_runs:
        inside = set(run)
        taken = {u for v in run for u in ir.inputs(v).values() if u not in inside}
        left = {v for v in run if any(w not in inside for w in ir.readers(v))}
        fr += sum(size(ir.type_of(u)) for u in taken)
        fw += sum(size(ir.type_of(v)) for v in left)
    return Traffic(name=program.spec.name, family=program.scheme.family, layers=L,
                   dim=program.spec.dim, unfused_read=ur / L, unfused_write=uw / L,
                   fused_read=fr / L, fused_write=fw / L, kernels=round(kernels / L),
                   runs=round(len(all_runs) / L))
