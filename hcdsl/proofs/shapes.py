"""Two specs whose shapes alone decide `hcdsl prove`: logits over different vocabularies,
or (for the questions over every choice of the layers) layers of different widths."""

from __future__ import annotations

from pathlib import Path

from hcdsl.compiler import Compilation
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.numeric import one_thread
from hcdsl.proofs.prove import NOT_EQUIVALENT, UNKNOWN, ProofResult
from hcdsl.proofs.source import raw_ir
from hcdsl.proofs.witness import numeric_witness


def different_shapes(a: Path, b: Path, at_init: bool,
                     checkpoints: bool) -> ProofResult | None:
    """NOT EQUIVALENT, with the reason and a numeric witness (both models on the same
    tokens, each with its own weights), for specs whose shapes decide it: logits over
    different vocabularies are different functions, and (for the questions over every
    choice of the layers) layers of different widths cannot be the same T_k. None when the
    prover has to decide (same shapes; or only the width differs and checkpoints are given:
    trained weights of different widths may still compute one function)."""
    ca, cb = Compilation.load(a, once=True), Compilation.load(b, once=True)
    sa, sb = ca.spec, cb.spec
    diffs = [f"{k} {getattr(sa, k)} vs {getattr(sb, k)}" for k in ("dim", "vocab")
             if getattr(sa, k) != getattr(sb, k)]
    if not diffs or (sa.vocab == sb.vocab and checkpoints):
        return None
    question = "checkpoint" if checkpoints else "init" if at_init else "learned"
    why = ("the logits have different sizes" if sa.vocab != sb.vocab else
           "layers of different widths are different functions T_k")
    result = ProofResult(str(a), str(b), NOT_EQUIVALENT, question,
                         reason=f"the models' shapes differ ({', '.join(diffs)}): {why}")
    with one_thread():
        result.witness = numeric_witness(raw_ir(ca), raw_ir(cb), Identity(question),
                                         Identity(question))
    if not result.witness.differs:  # (never seen: the shapes differ) no witness, no verdict
        result.verdict = UNKNOWN
    return result
