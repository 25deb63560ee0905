"""The assumptions a proof may use. Each is a license for some of the rules in norms.py and
carries a side condition checked where it is used (side.py); the verdict prints every
assumption used and what its side condition measured."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Assumption:
    name: str  # short id: prove(a, b, assume=[...]), --assume NAME
    text: str  # printed with the verdict
    condition: str  # its side condition, as printed


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("scale-invariant",
               "norm is scale-invariant: norm(c·x; ε) = norm(x; ε/c²) exactly for c > 0, and "
               "the change of ε a connection's scale brings is ignored (the ε a spec states "
               "is kept)",
               "both specs state the same ε values; c > 0; var(x) ≥ margin·ε at both "
               "scales, at every norm where it is used"),
    Assumption("no-affine",
               "norm without affine: each norm's gain and bias are folded into the next "
               "layer (HC App. E.2), so separate norm instances are one function",
               "none checkable: it changes which weights the layers have"),
    Assumption("no-eps",
               "eps ignored: norm(x) = (x - mean x) / std x exactly (HC App. E.2)",
               "both specs state the same ε values, and var(x) ≥ margin·ε at every norm "
               "where it is used"),
    Assumption("mean-zero",
               "T's output and the embedding have mean 0 (re-centred), so every state has "
               "mean 0: layernorm = rmsnorm and x / std(x) = rmsnorm(x) (HC App. E.2)",
               "none checkable: it is about the trained layers"),
    Assumption("embed-normalised",
               "the embedding is normalised (mean 0, std 1 per token): norm(h0) = h0",
               "none checkable: it is about the trained embedding"),
)
BY_NAME = {a.name: a for a in ASSUMPTIONS}
