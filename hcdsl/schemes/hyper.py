"""Hyper-Connections (arXiv 2409.19606) as primitives.

Per layer k the HC matrix (Eq. 1) *is* the step matrix M: F = R = 1, S = S' = n,
M = [[0, B], [A_m, A_r]]. Static HC learns M's entries; dynamic HC adds Eqs. 10-13.
Init (Eq. 14): B = 1, A_m = e_(k mod n) with k the 0-based layer index (the paper's
Algorithm 2 uses `layer_id % rate`), A_r = I. Literal matrices replace the init per layer.
"""

from __future__ import annotations

from hcdsl.lang.connections import HyperOptions
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import register
from hcdsl.spec import Matrix, ModelSpec


def hc_init(k: int, n: int) -> Matrix:
    """Eq. 14: [[0, 1_{1xn}], [e_(k mod n), I_n]] for 0-based layer index k."""
    top = (0.0,) + (1.0,) * n
    rows = tuple(
        (1.0 if i == k % n else 0.0,) + tuple(1.0 if j == i else 0.0 for j in range(n))
        for i in range(n)
    )
    return (top,) + rows


@register("hyper")
def _hyper(spec: ModelSpec, opts: HyperOptions) -> Scheme:
    literal = dict(spec.connection.matrices)
    steps = []
    for k in range(len(spec.sequence)):
        coef = Coef(
            init=literal.get(k + 1, hc_init(k, opts.n)), learn=opts.learn,
            dynamic=opts.dynamic, tanh=opts.tanh, scale_init=opts.scale, gain="row",
            norm=spec.norm,
        )
        steps.append(Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef,
                          post=opts.postscale,
                          prenorm="separate" if opts.prenorm else "none"))
    kind = "DHC" if opts.dynamic else "SHC"
    return Scheme(
        streams=opts.n, width=spec.dim, init="copy", steps=tuple(steps), readout="sum",
        out_scale=opts.out_factor,
        family=f"{kind} x{opts.n}",
    )
