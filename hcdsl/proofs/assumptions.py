"""The assumptions a proof may use, each enabling one canonicalisation pass, and the proof
pipeline built from them. A proof uses an assumption only when it cannot do without it."""

from __future__ import annotations

from dataclasses import dataclass

import hcdsl.proofs.rules  # noqa: F401 - registers the prover's patterns
from hcdsl.passes.pipeline import CANONICALIZE


@dataclass(frozen=True)
class Assumption:
    name: str  # short id, used in the API: prove(a, b, assume=[...])
    text: str  # printed with the verdict
    passes: tuple[str, ...]  # the canonicalisation passes it licenses


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("scale-invariant",
               "norm is scale-invariant: norm(c·x) = norm(x) for c > 0 (eps ignored)",
               ("scale-invariant-norm",)),
    Assumption("no-affine",
               "norm without affine: each norm's gain and bias are folded into the next layer "
               "(HC App. E.2)", ("drop-norm-affine",)),
    Assumption("no-eps", "eps ignored: norm(x) = (x - mean x) / std x exactly",
               ("ignore-norm-eps",)),
    Assumption("mean-zero",
               "T's output and the embedding have mean 0 (re-centred), so every state has "
               "mean 0 and x / std(x) = layernorm(x) (HC App. E.2)", ("invstd-to-norm",)),
    Assumption("embed-normalised",
               "the embedding is normalised (mean 0, std 1 per token): norm(h0) = h0",
               ("embed-normalised",)),
)
BY_NAME = {a.name: a for a in ASSUMPTIONS}

AT_INIT = "at init: every learned matrix has its init value and every dynamic part is 0 " \
          "(W = 0 in HC Eqs. 10-13)"

# the exact canonicalisation every proof runs: the optimiser's own; assumption passes are
# added in front of norm-idempotent
BASE = CANONICALIZE


def pipeline(at_init: bool, assumed: tuple[Assumption, ...]) -> list[str]:
    """The proof pipeline for one choice of assumptions (read top to bottom)."""
    passes = ["freeze-at-init"] if at_init else []
    passes += BASE
    for a in assumed:
        passes += list(a.passes)
    passes += ["norm-idempotent", "embed-normalised"] if any(
        a.name == "embed-normalised" for a in assumed) else ["norm-idempotent"]
    # embed-normalised appears once, even when listed by its assumption too
    out: list[str] = []
    for p in passes:
        if p not in out:
            out.append(p)
    return out
