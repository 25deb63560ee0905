"""The prover against numbers it did not compute (tests/soundness.py): random spec pairs,
edits and semantics-preserving rewrites, every question (learned, --tie-inits, at init,
checkpoints) and restricted --assume sets; no EQUIVALENT the numbers contradict, no NOT
EQUIVALENT without a witness that differs. A fixed-seed sample here; 1,000 pairs under
`slow`; benchmarks/prover_soundness.py runs as many as you like."""

from __future__ import annotations

import collections

import pytest
import soundness

from hcdsl.proofs.prove import EQUIVALENT, NOT_EQUIVALENT, UNKNOWN

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(seeds: range) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for seed in seeds:
        out = soundness.run(seed)
        assert not out.unsound, (seed, out.note, out.why, out.result.render(), out.a, out.b)
        counts[out.result.verdict] += 1
    return counts


def test_a_fixed_sample_is_sound() -> None:
    counts = _run(range(80))
    # the sample exercises both verdicts (a harness that only ever agrees proves nothing)
    assert counts[EQUIVALENT] >= 20 and counts[NOT_EQUIVALENT] >= 10
    assert counts[UNKNOWN] <= 2


@pytest.mark.slow
def test_1000_pairs_are_sound() -> None:
    counts = _run(range(80, 1080))
    assert counts[UNKNOWN] <= 10


def test_the_harness_catches_an_unsound_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check of the harness: a prover that takes every norm as one function (no
    parameter identity, the bug of issue 7 item 1) is caught."""
    from hcdsl.proofs import symbolic
    from hcdsl.proofs.norms import NormSpec

    real = symbolic._norm_spec

    def careless(c, v, p):  # noqa: ANN001, ANN202
        spec = real(c, v, p)
        return NormSpec(spec.node, spec.kind, spec.eps, None, spec.gain)

    monkeypatch.setattr(symbolic, "_norm_spec", careless)
    caught = next((seed for seed in range(400) if soundness.run(seed).unsound), None)
    assert caught is not None


def _caught(relevant, question: str | None = None, limit: int = 60) -> int | None:  # noqa: ANN001
    """The first seed whose pair (a, b, note) is `relevant` and whose verdict the harness
    finds unsound (with `question` forced, if given), trying at most `limit` such pairs."""
    import random
    tried = 0
    for seed in range(5000):
        if not relevant(*soundness.pair(random.Random(seed))):
            continue
        if soundness.run(seed, question).unsound:
            return seed
        tried += 1
        if tried >= limit:
            return None
    return None


@pytest.mark.slow
def test_the_harness_catches_mean_zero_through_a_low_rank_map(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: a prover that takes every form as centred (issue 15, cause 2)."""
    from hcdsl.proofs import norms
    monkeypatch.setattr(norms, "centred", lambda terms, x: True)
    assert _caught(lambda a, b, note: note == "norm kind" and "lowrank" in a) is not None


@pytest.mark.slow
def test_the_harness_catches_a_checkpoint_identity_without_configuration(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutation check: a prover whose checkpoint identity is the tensors only (cause 3)."""
    from hcdsl.proofs import identity
    monkeypatch.setattr(identity, "_configuration", lambda p: None)
    assert _caught(lambda a, b, note: note == "connection option", "checkpoint") is not None
