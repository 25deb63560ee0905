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

from hcdsl.lang.connections import MhcOptions
from hcdsl.schemes.hyper import hc_init
from hcdsl.schemes.primitive import Coef, Scheme, Step
from hcdsl.schemes.registry import register
from hcdsl.spec import ModelSpec


@register("mhc")
def _mhc(spec: ModelSpec, opts: MhcOptions) -> Scheme:
    steps = []
    for k in range(len(spec.sequence)):
        coef = Coef(init=hc_init(k, opts.n), learn=True, dynamic=True,
                    generator="manifold", iters=opts.iters, manifold_init=opts.init,
                    scale_init=opts.alpha)
        steps.append(Step(layers=(k,), inputs=((0,),), outputs=((0,),), coef=coef))
    return Scheme(streams=opts.n, width=spec.dim, init="copy", steps=tuple(steps),
                  readout=opts.readout, family=f"mHC x{opts.n}")
