"""Residual connections as primitives: Pre-Norm, Post-Norm, and parallel transformer blocks."""

from __future__ import annotations

from hcdsl.lang.connections import ParallelOptions, ResidualOptions
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import SchemeError, register
from hcdsl.spec import ModelSpec

PRE_NORM = ((0.0, 1.0), (1.0, 1.0))  # HC Eq. 15: h <- h + T(h)


@register("residual")
def _residual(spec: ModelSpec, opts: ResidualOptions) -> Scheme:
    # pre:  h <- h + T(Norm(h))      post: h <- Norm(h + T(h))
    pre = opts.norm == "pre"
    steps = tuple(
        Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=Coef(init=PRE_NORM),
             prenorm="separate" if pre else "none", post="none" if pre else "norm")
        for k in range(len(spec.sequence))
    )
    return Scheme(streams=1, width=spec.dim, init="copy", steps=steps, readout="sum",
                  family="pre-norm" if pre else "post-norm")


def parallel_matrix(layers: int) -> tuple[tuple[float, ...], ...]:
    """M of a parallel block: every layer reads h, h' = h + sum_i T_i(h)."""
    return tuple((0.0, 1.0) for _ in range(layers)) + ((1.0, 1.0),)


def each_residual_matrix(n: int) -> tuple[tuple[float, ...], ...]:
    """M of the paper's parallel arrangement on n streams summing to h: every layer reads
    h = sum_s H_s, new stream i = T_i(h) + h.  M = [[0, I_n], [1_n, 1_(n x n)]]."""
    outs = tuple((0.0,) + tuple(1.0 if j == i else 0.0 for j in range(n)) for i in range(n))
    return outs + tuple((1.0,) * (n + 1) for _ in range(n))


def _parallel_each(spec: ModelSpec, opts: ParallelOptions) -> Scheme:
    # groups of n layers in parallel, each layer with its own residual:
    # h' = sum_i (T_i(h) + h). State: n streams whose sum is h (H^0 = n copies, as in HC, so
    # the sum starts as n h0 and the readout is the sum)
    sizes = {len(b) for b in spec.blocks}
    if len(sizes) != 1:
        raise SchemeError(
            f"parallel(residual=each) needs blocks of one size, got sizes {sorted(sizes)}",
            "write the body as repeat N [a, b] so every block has the same layers")
    n = sizes.pop()
    steps = tuple(
        Step(layers=tuple(b), inputs=tuple((0,) for _ in b),
             outputs=tuple((i,) for i in range(n)),
             prenorm=opts.norms if n > 1 else "separate", coef=Coef(init=each_residual_matrix(n)))
        for b in spec.blocks
    )
    return Scheme(streams=n, width=spec.dim, init="copy", steps=steps, readout="sum",
                  family=f"parallel, residual per layer (x{n})")


@register("parallel")
def _parallel(spec: ModelSpec, opts: ParallelOptions) -> Scheme:
    if opts.residual == "each":
        return _parallel_each(spec, opts)
    # GPT-J / PaLM (shared norm): h <- h + Attn(N(h)) + FFN(N(h))
    # GPT-NeoX / Pythia (separate): h <- h + Attn(N1(h)) + FFN(N2(h))
    steps = []
    for block in spec.blocks:
        steps.append(Step(
            layers=tuple(block), inputs=tuple((0,) for _ in block),
            outputs=tuple((i,) for i in range(len(block))),
            prenorm=opts.norms if len(block) > 1 else "separate",
            coef=Coef(init=parallel_matrix(len(block))),
        ))
    return Scheme(streams=1, width=spec.dim, init="copy", steps=tuple(steps), readout="sum",
                  family=f"parallel ({opts.norms} norm)")
