"""Side conditions, checked where the assumptions were used: a norm's ε is negligible only
where the norm's input is large against it. Measured on the built models (at init, or with
the checkpoints' weights) in float64 on random tokens: for every norm where
`scale-invariant` dropped a scale c or `no-eps` dropped ε, the smallest statistic the norm
divides by (the variance for layernorm, the mean square for rmsnorm), at both scales, must
be at least `margin` times ε."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hcdsl.ir import nodes as n
from hcdsl.proofs.norms import Use
from hcdsl.proofs.numeric import Pair, model_input


@dataclass(frozen=True)
class Measured:
    assumption: str
    ratio: float  # the smallest statistic / ε over the uses of the assumption
    where: str  # "A L1.norm"
    holds: bool


def _statistic(model, node: str, values: dict[str, torch.Tensor]) -> float:  # noqa: ANN001
    ir = model.ir
    p = ir.payload(node)
    h = values[ir.inputs(node)["x"]]
    kind = getattr(p, "kind", "layernorm")
    stat = h.var(dim=-1, unbiased=False) if kind == "layernorm" else h.pow(2).mean(dim=-1)
    return float(stat.min())


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
                if use.assumption != name or use.node not in model.ir:
                    continue
                if not isinstance(model.ir.payload(use.node), (n.Norm, n.NormStreams,
                                                                n.InvStd)):
                    continue
                stat = _statistic(model, use.node, runs[label])
                scaled = stat / float(use.scale2)  # the input at the other spec's scale
                ratio = min(stat, scaled) / use.eps if use.eps > 0 else float("inf")
                if worst is None or ratio < worst[0]:
                    worst = (ratio, f"{label} {use.node}")
        if worst is not None:
            out.append(Measured(name, worst[0], worst[1], worst[0] >= margin))
    return out
