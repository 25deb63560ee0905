"""Hyper-Connections (arXiv 2409.19606) as primitives.

Per layer k the HC matrix (Eq. 1) *is* the step matrix M: F = R = 1, S = S' = n,
M = [[0, B], [A_m, A_r]]. Static HC learns M's entries; dynamic HC (Eqs. 10-13) is sugar for
a generator (hcdsl/lang/generator.py), every stream's weights from that stream:

    generator {
      input = each
      norm = <the model's norm over C>
      read = linear(std=0, act=tanh, affine=after_act, scale=0.01, bias=[A_m])    A_m + s_α tanh(H̄ W_m)
      write = linear(std=0, act=tanh, affine=after_act, scale=0.01, bias=[B])     B + s_β tanh(H̄ W_β)
      res = linear(std=0, act=tanh, affine=after_act, scale=read, bias=[A_r])     A_r + s_α tanh(H̄ W_r)
    }

(`scale=read`: one s_α for A_m and A_r, as Eqs. 12-13 write it; tanh -> identity for "W/O
tanh"); its parameters keep the preset's names (hcdsl/nn/preset_params.py).
Init (Eq. 14): B = 1, A_m = e_(k mod n) with k the 0-based layer index (the paper's
Algorithm 2 uses `layer_id % rate`), A_r = I. Literal matrices replace the init per layer.
"""

from __future__ import annotations

from hcdsl.lang.connections import HyperOptions
from hcdsl.lang.generator import GenNorm, GenOut, GenProj, Generator
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import register
from hcdsl.spec import Matrix, ModelSpec, NormSpec


def hc_init(k: int, n: int) -> Matrix:
    """Eq. 14: [[0, 1_{1xn}], [e_(k mod n), I_n]] for 0-based layer index k."""
    top = (0.0,) + (1.0,) * n
    rows = tuple(
        (1.0 if i == k % n else 0.0,) + tuple(1.0 if j == i else 0.0 for j in range(n))
        for i in range(n)
    )
    return (top,) + rows


def gen_norm(norm: NormSpec) -> GenNorm:
    """The model's norm as a generator's: LayerNorm's affine has a gain and a bias."""
    weight = "none" if not norm.affine else "affine" if norm.kind == "layernorm" else "scale"
    return GenNorm(kind=norm.kind, weight=weight, eps=norm.eps)


def _bias(values: list[float]) -> float | tuple[float, ...]:
    return values[0] if len(set(values)) == 1 else tuple(values)


def hc_generator(init: Matrix, tanh: bool, scale: float, norm: NormSpec,
                 split: bool = False) -> Generator:
    """Dynamic HC's generator for the step matrix `init` = [[0, B], [A_m, A_r]] at init
    (Eqs. 10-13): the static parts are the per-stream biases, every W starts at 0.

    split: dynamic FC with m > 1 fractions (arXiv 2503.14125 §3), `init` = [[0, diag(B)],
    [Y, A]] (2m x 2m): the read makes m values per fraction (Y + s_α tanh(H̄ W_γ)), the
    write sits on OUT's diagonal (B + s_β tanh(H̄ W_β)), res is A + s_α tanh(H̄ W_α), with
    H̄ each fraction normalised over its d/m entries."""
    n = len(init) // 2 if split else len(init) - 1
    r = n if split else 1  # read columns (FC's Y is m x m)
    act = "tanh" if tanh else "identity"
    zero = GenProj(init_std=0.0)

    def out(role: str, bias: list[float], **kw: object) -> GenOut:
        return GenOut(role=role, proj=zero, act=act, affine="after_act", bias=_bias(bias),
                      **kw)

    gains = [init[s if split else 0][r + s] for s in range(n)]  # diag(B) or the row B
    return Generator(input="each", norm=gen_norm(norm), fractions=r, outputs=(
        out("read", [init[r + s][j] for s in range(n) for j in range(r)], scale=scale),
        out("write", gains, scale=scale),
        out("res", [init[r + s][r + t] for s in range(n) for t in range(n)],
            scale_of="read"),
    ))


@register("hyper")
def _hyper(spec: ModelSpec, opts: HyperOptions) -> Scheme:
    literal = dict(spec.connection.matrices)
    steps = []
    for k in range(len(spec.sequence)):
        init = literal.get(k + 1, hc_init(k, opts.n))
        if opts.dynamic:  # sugar for a generator (the module doc)
            coef = Coef(init=init, learn=True, generator="program", names="hc",
                        program=hc_generator(init, opts.tanh, opts.scale, spec.norm))
        else:
            coef = Coef(init=init, learn=opts.learn, tanh=opts.tanh, scale_init=opts.scale,
                        gain="row", norm=spec.norm)
        steps.append(Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef,
                          post=opts.postscale,
                          prenorm="separate" if opts.prenorm else "none"))
    kind = "DHC" if opts.dynamic else "SHC"
    return Scheme(
        streams=opts.n, width=spec.dim, init="copy", steps=tuple(steps), readout="sum",
        out_scale=opts.out_factor,
        family=f"{kind} x{opts.n}",
    )
