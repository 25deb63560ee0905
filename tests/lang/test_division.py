"""Division in matrix entries: parsed with * 's precedence, left-associative, printed with
the brackets it needs, evaluated by every consumer (floats, tensors, the prover's exact
coefficients)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from hcdsl.lang.expr import evaluate, parse, render
from hcdsl.proofs.coefs import K


@pytest.mark.parametrize("text, value", [
    ("a / b / c", 1 / 2 / 4), ("a / (b / c)", 1 / (2 / 4)), ("a * b / c", 1 * 2 / 4),
    ("a / (b * c)", 1 / (2 * 4)), ("a + b / c", 1 + 2 / 4), ("(a + b) / c", (1 + 2) / 4),
    ("-a / b", -1 / 2), ("a / -b", 1 / -2),
])
def test_precedence_and_printing(text: str, value: float) -> None:
    env = {"a": 1.0, "b": 2.0, "c": 4.0}
    assert render(parse(text)) == text
    assert evaluate(text, env, float) == pytest.approx(value, rel=1e-15)
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in env.items()}
    assert evaluate(text, tensors, float).item() == pytest.approx(value, rel=1e-15)


def test_the_prover_divides_exactly() -> None:
    got = evaluate("a / (a + b)", {"a": K.const(1), "b": K.const(2)}, K.const)
    assert got.exact == Fraction(1, 3)
