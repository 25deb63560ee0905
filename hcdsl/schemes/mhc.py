"""Manifold-constrained Hyper-Connections (mHC, arXiv 2512.24880) as primitives.

x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l): HC's step matrix with F = R = 1 and
M = [[0, H_post], [H_preᵀ, H_resᵀ]], every entry dynamic from the flattened, RMS-normalised
state. H_res is doubly stochastic (Sinkhorn-Knopp). The preset is sugar for a generator
(hcdsl/lang/generator.py; its parameters keep the names φ, α, b: hcdsl/nn/preset_params.py):

    generator {
      input = flat
      norm = rmsnorm(weight=none, eps=1e-06)
      read = linear(std=S, act=sigmoid, scale=α, bias=B)                    H_pre
      write = linear(std=S, act=double_sigmoid, scale=α, bias=0)            H_post
      res = linear(std=S, scale=α, bias=0, constraint=sinkhorn(order=paper, iters=I))  H_resᵀ
    }

with S = 1/sqrt(nC) (paper) or 0 (identity), B = 0 (paper) or -log(n-1) (identity).

Inits: "paper" (φ random, std 1/sqrt(nC); α = 0.01; the bias inits are not published: we take
b = 0, so H_pre = 1/2, H_post = 1, H_res = uniform) and "identity" (φ = 0; b_pre = -log(n-1),
so H_pre = 1/n and the read of n equal streams is h; b_post = 0 so H_post = 1; b_res = 0, any
doubly stochastic H_res keeps equal streams equal): then every stream is the Pre-Norm state.
"""

from __future__ import annotations

import math

from hcdsl.lang.connections import ManifoldInit, MhcOptions
from hcdsl.lang.generator import Constraint, GenNorm, GenOut, GenProj, Generator
from hcdsl.schemes.hyper import hc_init
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import register
from hcdsl.spec import ModelSpec


def mhc_generator(n: int, width: int, iters: int, init: ManifoldInit,
                  alpha: float) -> Generator:
    """mHC's generator (arXiv 2512.24880 Eqs. 5-9) with hcdsl's two inits (the module doc)."""
    proj = GenProj(init_std=0.0 if init == "identity" else 1.0 / math.sqrt(n * width))
    b_pre = -math.log(n - 1) if init == "identity" and n > 1 else 0.0
    return Generator(input="flat", norm=GenNorm(kind="rmsnorm", weight="none", eps=1e-6),
                     outputs=(
        GenOut(role="read", proj=proj, act="sigmoid", scale=alpha, bias=b_pre),
        GenOut(role="write", proj=proj, act="double_sigmoid", scale=alpha, bias=0.0),
        GenOut(role="res", proj=proj, scale=alpha, bias=0.0,
               constraint=Constraint(kind="sinkhorn", order="paper", iters=iters)),
    ))


@register("mhc")
def _mhc(spec: ModelSpec, opts: MhcOptions) -> Scheme:
    steps = []
    for k in range(len(spec.sequence)):
        coef = Coef(init=hc_init(k, opts.n), learn=True, generator="program", names="mhc",
                    program=mhc_generator(opts.n, spec.dim, opts.iters, opts.init, opts.alpha))
        steps.append(Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef))
    return Scheme(streams=opts.n, width=spec.dim, init="copy", steps=tuple(steps),
                  readout=opts.readout, family=f"mHC x{opts.n}")
