"""Frac-Connections (arXiv 2503.14125) as primitives.

Split instead of widen: the state is h split into m fractions of width d/m (H^0 = reshape(h)).
Per layer the step matrix is M = [[0, diag(B)], [Y, A]] (2m x 2m): the layer reads Yᵀ H
(m rows, concatenated back to width d), its output is split into m fractions, fraction f is
scaled by B_f and added to A-mixed stream f. Readout: concatenate (no sum). Init: B = 1,
Y = A = I, dynamic W = 0, so FC starts as Pre-Norm exactly. With m = 1 the IR is HC n = 1.

Literal matrices use the paper's (m+1) x 2m layout [[0_{1xm}, B], [Y, A]].

Dynamic FC (§3) desugars to dynamic HC's generator (hcdsl/schemes/hyper.py): with m = 1 it
is dynamic HC with n = 1; with m > 1 the generator runs over the split state (`fractions = m`,
hcdsl/lang/generator.py): per fraction f, from H̄_f = norm(H_f) over its d/m entries,

    B_f += s_β tanh(H̄_f W_β)       write, on OUT's diagonal
    Y_f += s_α tanh(H̄_f W_γ)       read, m values (fraction f into each of the m reads)
    A_f += s_α tanh(H̄_f W_α)       res

with the preset's parameter names (static_gain, static_mix, w_gain, w_mix, s_gain, s_mix).
"""

from __future__ import annotations

from hcdsl.lang.connections import FracOptions
from hcdsl.schemes.hyper import hc_generator
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import register
from hcdsl.spec import Matrix, ModelSpec, NormSpec


def fc_init(m: int) -> Matrix:
    """The paper's init in its (m+1) x 2m layout: [[0, 1_{1xm}], [I_m, I_m]]."""
    eye = [[1.0 if i == j else 0.0 for j in range(m)] for i in range(m)]
    return (tuple([0.0] * m + [1.0] * m),) + tuple(tuple(r + r) for r in eye)


def to_step_matrix(fc: Matrix, m: int) -> Matrix:
    """[[0, B], [Y, A]] ((m+1) x 2m) -> M = [[0, diag(B)], [Y, A]] (2m x 2m)."""
    top = tuple(
        tuple([0.0] * m + [fc[0][m + j] if j == f else 0.0 for j in range(m)])
        for f in range(m)
    )
    return top + tuple(tuple(r) for r in fc[1:])


@register("frac")
def _frac(spec: ModelSpec, opts: FracOptions) -> Scheme:
    m, w = opts.m, spec.dim // opts.m
    literal = dict(spec.connection.matrices)
    # the dynamic generator normalises each fraction over its d/m entries
    norm = NormSpec(kind=spec.norm.kind, affine=spec.norm.affine, eps=spec.norm.eps)
    steps = []
    for k in range(len(spec.sequence)):
        init = to_step_matrix(literal.get(k + 1, fc_init(m)), m)
        if opts.dynamic:  # the generator over the split state (m = 1: HC with n = 1)
            coef = Coef(init=init, learn=True, generator="program", names="hc",
                        program=hc_generator(init, opts.tanh, opts.scale, norm, split=m > 1))
        else:
            coef = Coef(init=init, learn=opts.learn, tanh=opts.tanh, scale_init=opts.scale,
                        gain="diag" if m > 1 else "row", norm=norm)
        steps.append(Step(layers=(k,), inputs=(tuple(range(m)),),
                          outputs=(tuple(range(m)),), coef=coef))
    kind = "DFC" if opts.dynamic else "SFC"
    return Scheme(streams=m, width=w, init="split" if m > 1 else "copy", steps=tuple(steps),
                  readout="concat" if m > 1 else "sum", family=f"{kind} x{m}")
