"""Hyper-Connections (arXiv 2409.19606) as primitives.

Per layer k the HC matrix (Eq. 1) *is* the step matrix M: F = R = 1, S = S' = n,
M = [[0, B], [A_m, A_r]]. Static HC learns M's entries; dynamic HC adds Eqs. 10-13.
Init (Eq. 14): B = 1, A_m = e_(k mod n) with k the 0-based layer index (the paper's
Algorithm 2 uses `layer_id % rate`), A_r = I. Literal matrices replace the init per layer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import Preset, register
from hcdsl.spec import Matrix, ModelSpec


class LearnedMixOptions(BaseModel):
    """Options shared by HC and FC: static or dynamic (Eqs. 10-13), tanh, learned or fixed."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dynamic: bool = False
    tanh: bool = True
    learn: bool = True
    scale: float = Field(default=0.01, description="init of s_alpha and s_beta")

    @model_validator(mode="after")
    def _dynamic_needs_learn(self) -> "LearnedMixOptions":
        if self.dynamic and not self.learn:
            raise ValueError("a dynamic connection must be learned: drop learn=false")
        return self


class HyperOptions(LearnedMixOptions):
    n: int = Field(ge=1, le=64, description="expansion rate: the number of hidden streams")
    out_scale: bool = True  # divide the init std of output projections by sqrt(n) (§4)
    # invstd: scale every new stream by 1/std(stream), i.e. B = A_r = 1/sqrt(σ_h² + σ_T² +
    # 2σ_hT) of Eq. 16 (with the literal [[0, 1], [1, 1]]): Post-Norm written as HC, n = 1
    postscale: Literal["none", "invstd"] = "none"
    # the layer's own pre-norm, T := T∘Norm (false for Post-Norm written as HC)
    prenorm: bool = True


def hc_init(k: int, n: int) -> Matrix:
    """Eq. 14: [[0, 1_{1xn}], [e_(k mod n), I_n]] for 0-based layer index k."""
    top = (0.0,) + (1.0,) * n
    rows = tuple(
        (1.0 if i == k % n else 0.0,) + tuple(1.0 if j == i else 0.0 for j in range(n))
        for i in range(n)
    )
    return (top,) + rows


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
        out_scale=1.0 / math.sqrt(opts.n) if opts.out_scale else 1.0,
        family=f"{kind} x{opts.n}",
    )


def _shape(opts: HyperOptions) -> tuple[int, int]:
    return (opts.n + 1, opts.n + 1)


register(Preset(
    name="hyper", options=HyperOptions, desugar=_hyper, matrix_shape=_shape,
    matrix_help="HC = [[0, B], [A_m, A_r]] is (n+1) x (n+1)",
    flags={"static": ("dynamic", False), "dynamic": ("dynamic", True),
           "fixed": ("learn", False)},
))
