"""Residual connections as primitives: Pre-Norm, Post-Norm, and parallel transformer blocks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import Preset, register
from hcdsl.spec import ModelSpec

PRE_NORM = ((0.0, 1.0), (1.0, 1.0))  # HC Eq. 15: h <- h + T(h)


class ResidualOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    norm: Literal["pre", "post"] = "pre"


class ParallelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    norms: Literal["shared", "separate"] = "shared"


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


def _parallel(spec: ModelSpec, opts: ParallelOptions) -> Scheme:
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


register(Preset(
    name="residual", options=ResidualOptions, desugar=_residual,
    flags={"pre": ("norm", "pre"), "post": ("norm", "post")},
    summary="Pre-Norm h + T(N(h)) or Post-Norm N(h + T(h))",
))
register(Preset(
    name="parallel", options=ParallelOptions, desugar=_parallel,
    flags={"shared": ("norms", "shared"), "separate": ("norms", "separate")},
    summary="parallel transformer blocks: every block's layers read the same h",
))
