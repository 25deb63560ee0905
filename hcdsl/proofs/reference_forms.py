"""Reference arrangements written directly in the primitive form (hcdsl.schemes.primitive),
for the ones no preset spells yet. Each returns an IR to pass to hcdsl.prove.

paper_parallel(spec, n): HC App. F.2, Eq. 47, "n adjacent layers form a group, layers within
a group run in parallel, each with its own residual": with the state kept as n streams whose
sum is h (H^0 = n copies of h0, so h^0 = n h0 as in HC), one step per group of n layers:

    every layer reads h = sum_s H_s;   new stream i = T_i(h) + h       (so sum = sum_i (T_i(h) + h))

    M = [[0,      I_n      ],        rows: the n outputs, then the n streams
         [1_n,    1_(n x n)]]        cols: the read, then the n new streams
"""

from __future__ import annotations

from pathlib import Path

from hcdsl.compiler import Compilation
from hcdsl.ir.graph import IR
from hcdsl.lang.connections import HyperOptions
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.residual import each_residual_matrix
from hcdsl.spec import ConnectionSpec, ModelSpec


def _spec(spec: str | Path | ModelSpec) -> ModelSpec:
    return Compilation.load(spec).spec


def paper_parallel(spec: str | Path | ModelSpec, n: int = 2) -> IR:
    """The layers of spec (in sequence order) in groups of n, Eq. 47 (see the module doc)."""
    model = _spec(spec)
    L = len(model.sequence)
    if L % n:
        raise ValueError(f"{L} layers do not split into groups of {n}")
    steps = tuple(
        Step(layers=tuple(range(g, g + n)), inputs=tuple((0,) for _ in range(n)),
             outputs=tuple((i,) for i in range(n)), prenorm="separate",
             coef=Coef(init=each_residual_matrix(n)))
        for g in range(0, L, n)
    )
    scheme = Scheme(streams=n, width=model.dim, init="copy", steps=steps, readout="sum",
                    family=f"paper parallel x{n}")
    named = model.model_copy(update={"name": f"{model.name}_paper_parallel{n}"})
    return Compilation(named, scheme, None).raw_ir()  # a scheme no preset desugars to


def hc_parallel_matrices(n: int, L: int, paper_indexing: bool = True) -> dict[int, tuple]:
    """HC matrices of Eqs. 48-49 per 1-based layer k. paper_indexing: stream e_i for
    (k-1) = i (mod n), as printed; False: e_(i+1), the indexing that makes Eq. 47 hold."""
    def e(i: int) -> list[float]:
        return [1.0 if j == i else 0.0 for j in range(n)]

    out = {}
    for k in range(1, L + 1):
        i = (k - 1) % n
        if i == 0:  # Eq. 48
            m = [[0.0] + e(0)] + [[1.0] + [1.0] * n for _ in range(n)]
        else:  # Eq. 49
            s = i - 1 if paper_indexing else i  # 0-based stream
            m = [[0.0] + e(s)] + [[1.0 if r == s else 0.0] + e(r) for r in range(n)]
        out[k] = tuple(tuple(row) for row in m)
    return out


def hc_literal_spec(spec: str | Path | ModelSpec, n: int, matrices: dict[int, tuple],
                    name: str | None = None) -> ModelSpec:
    """spec with connect hyper(n, fixed) and the given literal matrices per layer."""
    model = _spec(spec)
    conn = ConnectionSpec(kind="hyper", options=HyperOptions(n=n, learn=False),
                          matrices=tuple(sorted(matrices.items())))
    return model.model_copy(update={"connection": conn, "name": name or f"{model.name}_hc{n}"})
