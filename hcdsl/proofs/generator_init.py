"""The value at init of a generator's step matrix M = [[0, OUT], [READ, RES]], when it has one.

With every projection's weights 0 at init (std=0), every logit is 0 whatever the state, so
each weight is a number: before_act: act(bias) + add; after_act: bias + scale * act(0) + add
(dynamic HC, arXiv 2409.19606 Eq. 14: B, A_m, A_r exactly); a Sinkhorn constraint of a
constant matrix is the uniform 1/n (mHC's identity init, arXiv 2512.24880). Anything else (a
random projection, a softmax, a per-channel or inline read, a non-uniform constraint input) has
no value at init here: None, and the prover keeps the entry an uninterpreted function.

Values are snapped to the nearest fraction of denominator <= 64 when within 1e-12 of it:
sigmoid(-log(n - 1)) is 1/n in exact arithmetic, which is what mHC's identity init means; the
float log rounds it to 1/n - 3e-17.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hcdsl.lang.generator import GenOut, Generator
from hcdsl.spec import Matrix

_AT_ZERO = {"sigmoid": 0.5, "double_sigmoid": 1.0, "tanh": 0.0, "silu": 0.0, "identity": 0.0}


def _act(name: str, x: float) -> float | None:
    if name == "sigmoid":
        return 1.0 / (1.0 + math.exp(-x))
    if name == "double_sigmoid":
        return 2.0 / (1.0 + math.exp(-x))
    if name == "tanh":
        return math.tanh(x)
    if name == "silu":
        return x / (1.0 + math.exp(-x))
    if name == "identity":
        return x
    return None  # softmax: over an axis, not entry by entry


def _snap(x: float) -> float:
    q = Fraction(x).limit_denominator(64)
    return float(q) if abs(float(q) - x) < 1e-12 else x


def _biases(o: GenOut, count: int) -> list[float]:
    if o.bias is None:
        return [0.0] * count
    return list(o.bias) if isinstance(o.bias, tuple) else [float(o.bias)] * count


def _weights(o: GenOut, scale: float, count: int) -> list[float] | None:
    """The `count` weights of one output at zero logits, or None."""
    if o.proj.init_std != 0.0 or o.per != "stream" or o.act == "softmax":
        return None
    if o.constraint is not None:
        bias = _biases(o, count)
        if o.constraint.kind != "sinkhorn" or len(set(bias)) != 1:
            return None
        n = math.isqrt(count)
        return [1.0 / n] * count  # Sinkhorn of a constant matrix: uniform (any order, eps)
    if o.affine == "after_act":
        return [_snap(b + scale * _AT_ZERO[o.act] + o.add) for b in _biases(o, count)]
    out = []
    for b in _biases(o, count):
        w = _act(o.act, b)
        if w is None:
            return None
        out.append(_snap(w + o.add))
    return out


def generator_at_init(gen: Generator, n: int) -> Matrix | None:
    if gen.inline_read():
        return None
    parts: dict[str, list[float]] = {}
    for o in gen.outputs:
        owner = gen.output(o.scale_of) if o.scale_of is not None else o
        scale = owner.scale if owner is not None and owner.scale is not None else 1.0
        w = _weights(o, scale, n * n if o.role == "res" else
                     n * gen.fractions if o.role == "read" else n)
        if w is None:
            return None
        parts[o.role] = w
    r = gen.fractions  # a split state (FC): r read columns, OUT = diag(write) over r rows
    read = parts.get("read", [1.0] * n * r)
    if "read" in parts and gen.output("read").combine == "mean":
        read = [_snap(x / n) for x in read]
    write = parts.get("write", [1.0] * n)
    res = parts.get("res", [1.0 if s == t else 0.0 for s in range(n) for t in range(n)])
    if r == 1:
        return ((0.0, *write),) + tuple((read[s], *res[s * n:(s + 1) * n]) for s in range(n))
    out = tuple(tuple(0.0 if c < r else write[i] if c - r == i else 0.0
                      for c in range(r + n)) for i in range(r))
    return out + tuple((*read[s * r:(s + 1) * r], *res[s * n:(s + 1) * n]) for s in range(n))


def without_inits(gen: Generator) -> Generator:
    """The record with its init values blanked (the projections' std, the scales' and biases'
    inits), what `--tie-inits` and a checkpoint's configuration compare: whether a scale or a
    bias exists is configuration, its starting value is not."""
    outs = tuple(o.model_copy(update={
        "proj": o.proj.model_copy(update={"init_std": 0.0}),
        "scale": None if o.scale is None else 0.0,
        "bias": None if o.bias is None else 0.0}) for o in gen.outputs)
    return gen.model_copy(update={"outputs": outs})
