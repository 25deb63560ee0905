"""hcdsl.prove(a, b): do two specs compute the same function of the tokens?

Method (docs/proving.md):
1. both specs are lowered to their IR as built (no pass: the symbolic evaluation folds
   mixes exactly, in rationals, where the optimiser's passes fold constants in floats);
2. both are evaluated symbolically (symbolic.py) to one output term each, in one table of
   hash-consed terms, at two independent random points (coefs.py): equal output terms at
   both = EQUIVALENT;
3. assumptions: first none; if the terms differ, every allowed one; if they then agree, each
   assumption not needed is dropped, and the side conditions of those kept are measured
   (side.py): an assumption whose condition fails is not used;
4. otherwise NOT EQUIVALENT, with the first difference (compare.py) and a numeric witness
   (witness.py) that really differs; a witness that finds no difference makes the verdict
   UNKNOWN, as does anything else the prover cannot decide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.proofs.assumptions import ASSUMPTIONS, BY_NAME, Assumption
from hcdsl.proofs.checkpoint import identity_of, loaded
from hcdsl.proofs.coefs import P, Point
from hcdsl.proofs.compare import first_difference
from hcdsl.proofs.identity import (
    AT_INIT_TEXT, TIE_INITS_TEXT, TIE_TEXT, Identity, Question,
)
from hcdsl.proofs.numeric import Pair, one_thread, tied_pair
from hcdsl.proofs.side import Measured, measure
from hcdsl.proofs.source import Source, name_of, raw_ir
from hcdsl.proofs.symbolic import Evaluation, evaluate
from hcdsl.proofs.terms import Terms
from hcdsl.proofs.witness import Witness, numeric_witness

EQUIVALENT, NOT_EQUIVALENT, UNKNOWN = "EQUIVALENT", "NOT EQUIVALENT", "UNKNOWN"
POINTS = 2  # independent random points of the identity test
# the order the prover tries to do without assumptions: the strongest first, so a proof
# keeps the weakest set that works (scale invariance before ignoring every ε)
STRENGTH = ["no-eps", "embed-normalised", "mean-zero", "no-affine", "scale-invariant"]
QUESTIONS = {
    "learned": "the same function for every value of the learned parameters (each spec's "
               "tied to the other's), for every choice of the layers T_k",
    "init": "the same model as built, at init, for every choice of the layers T_k",
    "checkpoint": "the same model with the checkpoints' weights",
}


@dataclass
class ProofResult:
    a: str
    b: str
    verdict: str
    question: Question
    method: str = ""
    premises: list[str] = field(default_factory=list)  # what the question takes as given
    assumptions: list[Assumption] = field(default_factory=list)
    measured: list[Measured] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # assumptions not usable, and why
    tried: list[Assumption] = field(default_factory=list)  # not equivalent even under these
    difference: str = ""
    witness: Witness | None = None
    reason: str = ""  # why UNKNOWN
    margin: float = 10.0
    seconds: float = 0.0

    @property
    def equivalent(self) -> bool:
        return self.verdict == EQUIVALENT

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def at_init(self) -> bool:
        return self.question == "init"

    @property
    def exit_code(self) -> int:
        return {EQUIVALENT: 0, NOT_EQUIVALENT: 1}.get(self.verdict, 2)

    def render(self) -> str:
        lines = [f"{self.verdict}: {self.a} vs {self.b}",
                 f"question: {QUESTIONS[self.question]}"]
        if self.method:
            lines.append(f"method: {self.method}")
        used = self.premises + [a.text for a in self.assumptions]
        if self.equivalent:
            lines.append("assumptions:" if used else "assumptions: none")
            lines += [f"  - {t}" for t in used]
            if self.measured:
                lines.append(f"side conditions (measured on the built models in float64, "
                             f"margin {self.margin:g}):")
                if self.margin < 1:
                    lines.append(f"  (a margin below 1: ε may be up to {1 / self.margin:.3g} "
                                 "times the statistic, so ε is not negligible: an "
                                 "approximation you chose)")
                lines += [f"  - {m.assumption}: smallest var/ε = {m.ratio:.3g} at {m.where}"
                          for m in self.measured]
        else:
            if self.premises:
                lines.append("premises:")
                lines += [f"  - {t}" for t in self.premises]
            if self.tried:
                lines.append("not equivalent even under every assumption allowed: "
                             + ", ".join(a.name for a in self.tried))
            for why in self.refused:
                lines.append(f"not usable: {why}")
        if self.reason:
            lines.append(f"reason: {self.reason}")
        if self.difference:
            lines.append("first difference:")
            lines += ["  " + ln for ln in self.difference.splitlines()]
        if self.witness is not None and self.verdict != EQUIVALENT:
            lines.append("numeric witness (reference backend, float64):" if self.witness.differs
                         else "numeric check (no difference found):")
            lines.append(self.witness.render())
        lines.append(f"time: {self.seconds:.2f}s")
        return "\n".join(lines)


@dataclass
class _Side:
    ir: IR
    ident: Identity
    name: str
    model: object = None  # the loaded reference model (checkpoint question)


@dataclass
class _Attempt:
    equal: bool
    evals: list[tuple[Evaluation, Evaluation]]
    atoms: int
    degree: int
    symbolic: bool


def _stated_eps(ir: IR) -> set[float]:
    return {ir.payload(v).eps for v in ir.g.nodes
            if isinstance(ir.payload(v), (n.Norm, n.NormStreams)) and ir.payload(v).eps > 0}


class _Prover:
    def __init__(self, sa: _Side, sb: _Side, points: list[Point]) -> None:
        self.sa, self.sb, self.points = sa, sb, points
        self.cache: dict[frozenset[str], _Attempt] = {}

    def attempt(self, assume: frozenset[str]) -> _Attempt:
        if assume not in self.cache:
            evals, atoms, degree, symbolic, equal = [], 0, 0, False, True
            for point in self.points:
                terms = Terms()
                ea = evaluate(self.sa.ir, terms, point, self.sa.ident, assume, "A")
                eb = evaluate(self.sb.ir, terms, point, self.sb.ident, assume, "B")
                evals.append((ea, eb))
                equal &= ea.output is not None and ea.output is eb.output
                atoms, degree = max(atoms, len(terms.table)), max(degree, terms.max_degree)
                symbolic |= ea.symbolic or eb.symbolic
            self.cache[assume] = _Attempt(equal, evals, atoms, degree, symbolic)
        return self.cache[assume]


def _method(att: _Attempt) -> str:
    base = ("symbolic evaluation to canonical terms: every layer input and the output a "
            "linear form over h0, T_1..T_L and norm terms")
    if not att.symbolic:
        return base + "; exact rational arithmetic"
    per_point = min(1.0, att.atoms ** 2 * max(att.degree, 1) / P)
    return (base + f"; learned coefficients as polynomials compared at {POINTS} independent "
            f"random points modulo 2^61 - 1 (Schwartz-Zippel: error probability < "
            f"{max(per_point ** POINTS, 1e-300):.0e})")


def prove(a: Source, b: Source, *, at_init: bool = False,
          checkpoints: tuple[str | Path, str | Path] | None = None, tie_inits: bool = False,
          assume: list[str] | tuple[str, ...] | None = None, witness: bool = True,
          seed: int = 0, margin: float = 10.0) -> ProofResult:
    """Prove or refute that specs a and b compute the same function.

    Questions: the default, every value of the learned parameters (tied by node and init;
    tie_inits=True ties them even where the inits differ); at_init, the models as built;
    checkpoints=(A.pt, B.pt), the models with those weights. assume: the assumptions the
    prover may use (names of hcdsl.proofs.assumptions.ASSUMPTIONS; default all); only those
    needed are reported, each with its side condition measured (margin: how many times ε
    the norm's input statistic must be). witness: compute a numeric counterexample.
    """
    start = time.perf_counter()
    unknown = [x for x in assume or () if x not in BY_NAME]
    if unknown:
        raise CompileError(f"unknown assumption '{unknown[0]}'; the assumptions are: "
                           + ", ".join(BY_NAME))
    if checkpoints is not None and at_init:
        raise CompileError("choose one question: --at-init or --checkpoint, not both")
    question: Question = "checkpoint" if checkpoints else "init" if at_init else "learned"
    if tie_inits and question != "learned":
        raise CompileError("--tie-inits ties learned parameters whose inits differ, for the "
                           "question over every value of the learned parameters; with "
                           f"{'--at-init' if at_init else '--checkpoint'} every parameter "
                           "has its own value and nothing is tied: drop --tie-inits")
    allowed = tuple(ASSUMPTIONS if assume is None else [BY_NAME[x] for x in assume])
    ia, ib = raw_ir(a), raw_ir(b)
    sa, sb = _Side(ia, Identity(question, tie_inits), name_of(a)), \
        _Side(ib, Identity(question, tie_inits), name_of(b))
    if checkpoints is not None:
        for side, path in ((sa, checkpoints[0]), (sb, checkpoints[1])):
            side.model = loaded(side.ir, side.ir, path, side.name)
            side.ident = identity_of(side.model)
    result = ProofResult(sa.name, sb.name, NOT_EQUIVALENT, question, margin=margin)
    if question == "learned":
        result.premises.append(TIE_INITS_TEXT if tie_inits else TIE_TEXT)
    elif question == "init":
        result.premises.append(AT_INIT_TEXT)
    prover = _Prover(sa, sb, [Point() for _ in range(POINTS)])
    with one_thread():
        _decide(prover, allowed, result, seed)
        if result.verdict != EQUIVALENT and witness:
            pair = Pair(sa.model, sb.model) if checkpoints is not None else None
            result.witness = numeric_witness(ia, ib, sa.ident, sb.ident, seed, pair)
            if not result.witness.differs:  # no witness: the prover cannot decide
                result.verdict = UNKNOWN
                result.reason = ("the terms differ, but no numeric difference shows on the "
                                 "tries made: the prover cannot decide (an identity its rules "
                                 "do not know, or a difference too small to see)")
    result.seconds = time.perf_counter() - start
    return result


def _decide(prover: _Prover, allowed: tuple[Assumption, ...], result: ProofResult,
            seed: int) -> None:
    none = prover.attempt(frozenset())
    result.method = _method(none)
    if none.equal:
        result.verdict = EQUIVALENT
        return
    result.difference = first_difference(*none.evals[0]) or "(no structural difference found)"
    usable = list(allowed)
    ea, eb = _stated_eps(prover.sa.ir), _stated_eps(prover.sb.ir)
    for name in ("scale-invariant", "no-eps"):  # they would blur the ε the specs state
        if ea != eb and BY_NAME[name] in usable:
            usable.remove(BY_NAME[name])
            result.refused.append(f"{name}: the specs state different ε (A {sorted(ea)}, B "
                                  f"{sorted(eb)}); an ε a spec states is never ignored")
    while usable:
        names = frozenset(x.name for x in usable)
        att = prover.attempt(names)
        if not att.equal:
            result.tried = list(usable)
            return
        used = list(usable)
        for cand in sorted(usable, key=lambda a: STRENGTH.index(a.name)):  # drop the unneeded
            trial = frozenset(x.name for x in used if x is not cand)
            if prover.attempt(trial).equal:
                used = [x for x in used if x is not cand]
        final = prover.attempt(frozenset(x.name for x in used))
        measured = _side_conditions(prover, final, used, result.margin, seed)
        failed = [m for m in measured if not m.holds]
        if not failed:
            result.verdict, result.method = EQUIVALENT, _method(final)
            result.assumptions, result.measured = used, measured
            result.difference, result.refused = "", []
            return
        for m in failed:
            usable.remove(BY_NAME[m.assumption])
            result.refused.append(
                f"{m.assumption}: its side condition fails: var/ε = {m.ratio:.3g} at {m.where}"
                f" (needs at least {result.margin:g}: ε is not negligible there)")


def _side_conditions(prover: _Prover, att: _Attempt, used: list[Assumption], margin: float,
                     seed: int) -> list[Measured]:
    checked = [a.name for a in used if a.name in ("scale-invariant", "no-eps")]
    if not checked:
        return []
    ea, eb = att.evals[0]
    sa, sb = prover.sa, prover.sb
    if sa.model is not None:
        pair = Pair(sa.model, sb.model)
    else:
        pair = tied_pair(sa.ir, sb.ir, sa.ident, sb.ident, seed, perturb=False, layer_gain=1.0)
    return measure(pair, {"A": ea.uses, "B": eb.uses}, checked, margin, seed)
