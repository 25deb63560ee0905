"""Fuzzing the front end and the engine: mutated bundled specs and hypothesis-generated text
go through hcdsl.parse, hcdsl.lower and hcdsl.stats, and may raise nothing but hcdsl's own
errors (HcError, or CompileError for build-time problems), each rendered with its summary
line, and no case may take over 2 s (a valid spec of more than 256 layers: 10 ms per layer
more, see tests/fuzz.py, which has the mutators and strategies; benchmarks/fuzz.py runs
10,000 and more)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz import Result, any_text, mutants, run_case, spliced, token_soup


def _check(name: str, text: str, result: Result) -> None:
    assert result.kind != "crash", f"{name}: {text[:500]!r}\n{result.detail}"
    assert not result.over, (f"{name}: {result.seconds:.2f} s ({result.front:.2f} s in the "
                             f"front end, {result.layers} layers) for {text[:500]!r}")


def test_mutants_of_the_bundled_specs() -> None:
    kinds = {"ok": 0, "error": 0}
    for name, text in mutants(300, seed=0):
        result = run_case(text)
        _check(name, text, result)
        kinds[result.kind] += 1
    assert kinds["ok"] > 30 and kinds["error"] > 100, kinds  # the mutants reach both


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 6))
def test_many_more_mutants(seed: int) -> None:
    for name, text in mutants(2000, seed=seed):
        _check(name, text, run_case(text))


FAST = settings(max_examples=120, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(any_text)
def test_any_text(text: str) -> None:
    _check("any text", text, run_case(text))


@FAST
@given(token_soup)
def test_token_soup(text: str) -> None:
    _check("token soup", text, run_case(text))


@FAST
@given(spliced())
def test_bundled_specs_with_a_slice_of_soup(text: str) -> None:
    _check("spliced", text, run_case(text))


@pytest.mark.slow
@LONG
@given(spliced())
def test_bundled_specs_with_a_slice_of_soup_long(text: str) -> None:
    _check("spliced", text, run_case(text))
