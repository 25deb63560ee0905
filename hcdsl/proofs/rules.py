"""Every rewrite the prover applies, as data: one table (RULES), one entry per rule with its
pattern, its premise (an assumption of assumptions.py, or None: exact), its side condition
(checked on every side of the rewrite, at the scales that occur), and a one-line argument
why it is sound. norms.py applies them (each use recorded under its rule's name), docs/
proving.md prints the table, and tests/proofs/test_prove_rules.py checks each one numerically in
isolation: with `lhs` and `rhs` on random inputs that satisfy its premise (`sample(g, True)`)
they agree; on inputs that violate it (`sample(g, False)`) they do not.

The numeric forms are plain torch in float64 on (tokens, width) inputs: layernorm and
rmsnorm without affine unless a rule is about the affine part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

Inputs = dict[str, Any]
Form = Callable[[Inputs], torch.Tensor]
Sampler = Callable[[torch.Generator, bool], Inputs]
WIDTH, TOKENS = 16, 64


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str  # before -> after
    premise: str | None  # the assumption that licenses it; None: exact, always
    side: str  # the side condition, as checked
    argument: str  # why it is sound, in one line
    lhs: Form
    rhs: Form
    sample: Sampler  # inputs satisfying (True) or violating (False) its premise and guard
    approximate: bool = False  # ε rules: equal up to the margin's bound, not exactly


# -- numeric forms ---------------------------------------------------------------------------
def layernorm(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def rmsnorm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def invstd(x: torch.Tensor) -> torch.Tensor:
    return x / x.std(-1, unbiased=False, keepdim=True)


def _x(g: torch.Generator, scale: float = 1.0, centred: bool = False) -> torch.Tensor:
    x = torch.randn(TOKENS, WIDTH, generator=g, dtype=torch.float64) * scale
    x = x + torch.randn(TOKENS, 1, generator=g, dtype=torch.float64)  # a per-token mean
    return x - x.mean(-1, keepdim=True) if centred else x


def _c(g: torch.Generator, positive: bool) -> float:
    c = 0.1 + 3 * float(torch.rand((), generator=g, dtype=torch.float64))
    return c if positive else -c


def _affine(g: torch.Generator, bias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    gain = 1 + torch.randn(WIDTH, generator=g, dtype=torch.float64)
    b = torch.randn(WIDTH, generator=g, dtype=torch.float64) if bias else torch.zeros(WIDTH)
    return gain, b.double()


MARGIN = 10.0  # the default --eps-margin: ε at most a tenth of the statistic


def _eps_sample(g: torch.Generator, holds: bool) -> Inputs:
    """x with var >= MARGIN·ε at both scales c and 1 (holds), or far below it (violated)."""
    c = _c(g, True) if holds else 4.0  # (violated: a scale far from 1, so the ε sides differ)
    x = _x(g, 1.0)
    stat = float(torch.minimum(x.var(-1, unbiased=False),
                               (c * x).var(-1, unbiased=False)).min())
    eps = stat / MARGIN if holds else stat * 100
    return {"x": x, "c": c, "eps": eps}


def _mean_zero_sample(g: torch.Generator, holds: bool) -> Inputs:
    """x built from centred parts (h0, T outputs, centred norms) or with a learned linear map
    B·A·h of one of them added (not centred: LAuReL-LR's low rank)."""
    h = _x(g, 1.0, centred=True)
    t = _x(g, 2.0, centred=True)
    x = h + t
    if not holds:
        low = torch.randn(2, WIDTH, generator=g, dtype=torch.float64) + 1
        up = torch.randn(WIDTH, 2, generator=g, dtype=torch.float64) + 1
        x = x + h @ low.T @ up.T  # B A h
    return {"x": x, "eps": 1e-5}


RULES: tuple[Rule, ...] = (
    Rule("norm-zero", "norm(0) -> 0", None, "none: exact (no learned bias)",
         "a norm of the zero vector is 0 when it has no bias",
         lambda i: layernorm(i["x"], i["eps"]) * i["gain"] + i["bias"],
         lambda i: torch.zeros_like(i["x"]),
         lambda g, ok: {"x": torch.zeros(TOKENS, WIDTH, dtype=torch.float64), "eps": 1e-5,
                        "gain": _affine(g, not ok)[0], "bias": _affine(g, not ok)[1]}),
    Rule("norm-scale", "norm(c·x; ε) -> norm(x; ε/c²), c > 0 constant", None,
         "none: exact (ε/c² kept in the term)",
         "(c x - mean) / sqrt(c² var + ε) = (x - mean) / sqrt(var + ε/c²)",
         lambda i: layernorm(i["c"] * i["x"], i["eps"]),
         lambda i: layernorm(i["x"], i["eps"] / i["c"] ** 2),
         lambda g, ok: {"x": _x(g), "c": _c(g, ok), "eps": 0.3}),
    Rule("norm-odd", "norm(-x) -> -norm(x), no learned affine part", None,
         "none: exact (refused with a learned bias)",
         "centring and dividing by a statistic of x² commute with x -> -x",
         lambda i: layernorm(-i["x"], i["eps"]) * i["gain"] + i["bias"],
         lambda i: -(layernorm(i["x"], i["eps"]) * i["gain"] + i["bias"]),
         lambda g, ok: {"x": _x(g), "eps": 1e-5, "gain": _affine(g, not ok)[0],
                        "bias": _affine(g, not ok)[1]}),
    Rule("norm-gain", "norm with known gain g and bias 0 -> g·norm(x)", None,
         "none: exact (the gain a constant, the bias 0: at init or a checkpoint's)",
         "an elementwise gain g·1 is a scalar and commutes with the linear forms",
         lambda i: layernorm(i["x"], i["eps"]) * i["gain"] + i["bias"],
         lambda i: i["g"] * layernorm(i["x"], i["eps"]),
         lambda g, ok: {"x": _x(g), "eps": 1e-5, "g": 1.7,
                        "gain": torch.full((WIDTH,), 1.7, dtype=torch.float64),
                        "bias": _affine(g, not ok)[1]}),
    Rule("norm-sign", "norm(c·x; 0) -> sign(c)·norm(x; 0), c a learned coefficient", None,
         "none: exact where ε = 0 (stated, or under no-eps); no learned affine part",
         "with ε = 0 a norm is invariant to positive scales and odd",
         lambda i: layernorm(i["c"] * i["x"], i["eps"]),
         lambda i: (1 if i["c"] > 0 else -1) * layernorm(i["x"], i["eps"]),
         lambda g, ok: {"x": _x(g, 0.01), "c": _c(g, True) * 0.01,
                        "eps": 0.0 if ok else 0.1}),
    Rule("invstd-scale", "invstd(c·x) -> sign(c)·invstd(x), c constant", None,
         "none: exact (x / std(x) has no ε)",
         "std(c x) = |c| std(x)",
         lambda i: invstd(i["c"] * i["x"]) if i["exact"] else i["c"] * i["x"] / (
             (i["c"] * i["x"]).std(-1, unbiased=False, keepdim=True) + 0.1),
         lambda i: (1 if i["c"] > 0 else -1) * invstd(i["x"]),
         lambda g, ok: {"x": _x(g, 0.05), "c": _c(g, bool(torch.rand((), generator=g) > .5)),
                        "exact": ok}),
    Rule("norm-idempotent", "norm(norm(y; 0); 0) -> norm(y; 0), inner without affine", None,
         "none: exact where both ε are 0",
         "a layernorm's output has mean 0 and variance 1 (an rmsnorm's rms 1): a fixed point",
         lambda i: layernorm(layernorm(i["x"], i["eps"]) * i["gain"], i["eps"]),
         lambda i: layernorm(i["x"], i["eps"]) * i["gain"],
         lambda g, ok: {"x": _x(g), "eps": 0.0, "gain": torch.ones(WIDTH, dtype=torch.float64)
                        if ok else _affine(g, False)[0]}),
    Rule("scale-invariant", "norm(c·x; ε) -> norm(x; ε) (the change ε -> ε/c² dropped)",
         "scale-invariant",
         "var (rms² for rmsnorm) of the norm's input >= margin·ε at both scales, c and 1",
         "with ε <= var/margin on both sides, each side is within ε/(2 var) of norm(x; 0)",
         lambda i: layernorm(i["c"] * i["x"], i["eps"]),
         lambda i: layernorm(i["x"], i["eps"]), _eps_sample, approximate=True),
    Rule("scale-invariant-invstd", "norm(invstd(y); ε) -> norm(y; ε)", "scale-invariant",
         "the statistic >= margin·ε both of invstd(y) (1) and of y itself, per token",
         "y / std(y) is y at a positive per-token scale: scale-invariant at that scale",
         lambda i: layernorm(invstd(i["x"]), i["eps"]),
         lambda i: layernorm(i["x"], i["eps"]),
         lambda g, ok: {"x": _x(g, 1.0 if ok else 0.003), "eps": 1e-3}, approximate=True),
    Rule("no-eps", "norm(x; ε) -> norm(x; 0)", "no-eps",
         "the norm's input statistic >= margin·ε, at the norm where it is used",
         "norm(x; ε) = norm(x; 0)·sqrt(var/(var + ε)): within ε/(2 var) of it",
         lambda i: layernorm(i["x"], i["eps"]), lambda i: layernorm(i["x"], 0.0),
         _eps_sample, approximate=True),
    Rule("mean-zero", "layernorm(x) -> rmsnorm(x), x centred; invstd(x) -> rmsnorm(x; 0)",
         "mean-zero",
         "x is built only from centred parts (h0, layer outputs, centred norms): a low-rank "
         "map, a slice, a bias or a value projection blocks it (structural)",
         "the premise makes h0 and every T_k centred; sums and norms of centred vectors are "
         "centred, and for mean 0 layernorm and rmsnorm coincide",
         lambda i: layernorm(i["x"], i["eps"]), lambda i: rmsnorm(i["x"], i["eps"]),
         _mean_zero_sample),
    Rule("no-affine", "norm instances with learned gain and bias -> one norm without affine",
         "no-affine", "none checkable: about the trained weights (printed)",
         "W (g ⊙ n + b) = (W diag g) n + W b: the gain and bias fold into the next layer",
         lambda i: i["act"](layernorm(i["x"], 1e-5) * i["gain"] + i["bias"]) @ i["w"].T,
         lambda i: layernorm(i["x"], 1e-5) @ (i["w"] * i["gain"]).T + i["w"] @ i["bias"],
         lambda g, ok: {"x": _x(g), "gain": _affine(g, True)[0], "bias": _affine(g, True)[1],
                        "w": torch.randn(WIDTH, WIDTH, generator=g, dtype=torch.float64),
                        # violated: the next layer does not start with a linear map
                        "act": (lambda y: y) if ok else torch.tanh}),
    Rule("embed-normalised", "norm(h0; 0) -> h0", "embed-normalised",
         "none checkable: about the trained embedding (printed)",
         "a normalised vector (mean 0, variance 1) is a fixed point of the norm",
         lambda i: layernorm(i["x"], 0.0), lambda i: i["x"],
         lambda g, ok: {"x": layernorm(_x(g), 0.0) if ok else _x(g)}),
    Rule("linear", "mix(x + y, M) -> mix(x, M) + mix(y, M) (mixes, B·A of LAuReL-LR, slices)",
         None, "none: exact (the maps are linear)",
         "a constant or learned matrix applied per token is linear",
         lambda i: (i["x"] + i["y"]) @ i["m"].T + (i["bias"] if not i["ok"] else 0),
         lambda i: i["x"] @ i["m"].T + i["y"] @ i["m"].T,
         lambda g, ok: {"x": _x(g), "y": _x(g), "ok": ok, "bias": 10.0,
                        "m": torch.randn(WIDTH, WIDTH, generator=g, dtype=torch.float64)}),
)
BY_NAME = {r.name: r for r in RULES}
