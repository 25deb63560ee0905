"""Manifold-constrained Hyper-Connections (mHC, arXiv 2512.24880) as primitives.

x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l): HC's step matrix with F = R = 1 and
M = [[0, H_post], [H_preᵀ, H_resᵀ]], every entry dynamic from the flattened, RMS-normalised
state (hcdsl/nn/manifold.py). H_res is doubly stochastic (Sinkhorn-Knopp).

Inits: "paper" (φ random, std 1/sqrt(nC); α = 0.01; the bias inits are not published: we take
b = 0, so H_pre = 1/2, H_post = 1, H_res = uniform) and "identity" (φ = 0; b_pre = -log(n-1),
so H_pre = 1/n and the read of n equal streams is h; b_post = 0 so H_post = 1; b_res = 0, any
doubly stochastic H_res keeps equal streams equal): then every stream is the Pre-Norm state.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hcdsl.schemes.hyper import hc_init
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import Preset, register
from hcdsl.spec import ModelSpec


class MhcOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n: int = Field(ge=1, le=64, description="number of streams")
    iters: int = Field(default=20, ge=1, description="Sinkhorn-Knopp iterations")
    init: Literal["paper", "identity"] = "paper"
    alpha: float = Field(default=0.01, description="init of the gates α_pre, α_post, α_res")
    readout: Literal["sum", "mean"] = "sum"

    @model_validator(mode="after")
    def _identity_needs_two(self) -> "MhcOptions":
        if self.init == "identity" and self.n < 2:
            raise ValueError("init=identity needs n >= 2: sigmoid(b) < 1 cannot read one "
                             "stream with weight 1")
        return self


def _mhc(spec: ModelSpec, opts: MhcOptions) -> Scheme:
    steps = []
    for k in range(len(spec.sequence)):
        coef = Coef(init=hc_init(k, opts.n), learn=True, dynamic=True,
                    generator="manifold", iters=opts.iters, manifold_init=opts.init,
                    scale_init=opts.alpha)
        steps.append(Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef))
    return Scheme(streams=opts.n, width=spec.dim, init="copy", steps=tuple(steps),
                  readout=opts.readout, family=f"mHC x{opts.n}")


register(Preset(
    name="mhc", options=MhcOptions, desugar=_mhc,
    flags={"identity": ("init", "identity"), "paper": ("init", "paper")},
))
