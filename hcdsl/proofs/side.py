"""Side conditions, checked where the assumptions were used, on every side of the rewrite:
a norm's ε is negligible only where the norm's input is large against it. Measured on the
built models (at init, or with the checkpoints' weights) in float64 on random tokens: for
every norm where `scale-invariant` dropped a scale c or `no-eps` dropped ε, the smallest
statistic the norm divides by (the variance for layernorm, the mean square for rmsnorm)
must be at least `margin` times ε at every scale that occurs: the norm's input, that input
at the other side's scale (statistic / c²), and, for norm(y/std(y)) = norm(y), y itself."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from hcdsl.proofs.norms import Use
from hcdsl.proofs.numeric import Pair, model_input


@dataclass(frozen=True)
class Measured:
    assumption: str
    ratio: float  # the smallest statistic / ε over the uses of the assumption
    where: str  # "A L1.norm"
    holds: bool


def _statistic(model, node: str, values: dict[str, torch.Tensor],  # noqa: ANN001
               source: str | None = None) -> float:
    """The smallest statistic of norm `node` over tokens, on its input, or on the input of
    node `source` (the other side of a rewrite)."""
    ir = model.ir
    p = ir.payload(node)
    h = values[ir.inputs(source or node)["x"]]
    kind = getattr(p, "kind", "layernorm")
    stat = h.var(dim=-1, unbiased=False) if kind == "layernorm" else h.pow(2).mean(dim=-1)
    return float(stat.min())


def _at_scale(stat: float, scale2: Fraction) -> float:
    """stat / c², without overflow or a division by a c² that underflows (tiny reads)."""
    if scale2 <= 1:
        return stat  # the smaller side is the measured one
    return stat * float(1 / scale2)


def _ratio(model, use: Use, values: dict[str, torch.Tensor]) -> float:  # noqa: ANN001
    """The smallest statistic / ε over every side of one use."""
    base = _statistic(model, use.node, values, use.via)  # y itself, or the norm's input
    sides = [base, _at_scale(base, use.scale2)]
    if use.via is not None:
        sides.append(_statistic(model, use.node, values))  # the norm's own input
    return min(sides) / use.eps if use.eps > 0 else float("inf")


def measure(pair: Pair, uses: dict[str, list[Use]], assumed: list[str], margin: float,
            seed: int) -> list[Measured]:
    """One line per assumption that has a side condition and was used."""
    out = []
    runs = {}
    for label, model in (("A", pair.a), ("B", pair.b)):
        x = model_input(model.ir, seed, batch=4, length=16)
        with torch.no_grad():
            runs[label] = model.run(x)
    for name in assumed:
        worst: tuple[float, str] | None = None
        for label, model in (("A", pair.a), ("B", pair.b)):
            for use in uses[label]:
                if use.assumption != name:
                    continue
                measurable = use.node in model.ir and (use.via is None or use.via in model.ir)
                # a use that cannot be measured fails its side condition (never skipped)
                ratio = _ratio(model, use, runs[label]) if measurable else 0.0
                if worst is None or ratio < worst[0]:
                    worst = (ratio, f"{label} {use.node}")
        if worst is not None:
            out.append(Measured(name, worst[0], worst[1], worst[0] >= margin))
    return out
