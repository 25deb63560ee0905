"""Every rule of the prover's table (hcdsl/proofs/rules.py), checked numerically in isolation:
on random inputs that satisfy its premise (and guard) both sides agree; on inputs that
violate it they do not. The oracle is the rule's own two sides in float64, independent of
the prover's terms; docs/proving.md lists every rule of the table."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hcdsl.proofs.rules import MARGIN, RULES, Rule

EXACT = 1e-10  # float64 rounding on O(1) values
# an ε rule within the margin: each side within ε/(2 var) <= 1/(2 MARGIN) of norm(x; 0)
APPROX = 1.0 / MARGIN
FAR = 0.05  # a violated premise moves the outputs by more than this (relative)


def _rel(rule: Rule, inputs: dict) -> float:
    lhs, rhs = rule.lhs(inputs), rule.rhs(inputs)
    size = max(float(lhs.abs().max()), float(rhs.abs().max()), 1e-300)
    return float((lhs - rhs).abs().max()) / size


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_rule_holds_where_its_premise_holds(rule: Rule) -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        assert _rel(rule, rule.sample(g, True)) <= (APPROX if rule.approximate else EXACT)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_rule_fails_where_its_premise_fails(rule: Rule) -> None:
    g = torch.Generator().manual_seed(1)
    worst = min(_rel(rule, rule.sample(g, False)) for _ in range(20))
    assert worst > FAR


def test_docs_list_every_rule_with_its_premise_and_side_condition() -> None:
    doc = Path(__file__).resolve().parents[2].joinpath("docs", "proving.md").read_text()
    for rule in RULES:
        row = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{rule.name}` |")), "")
        assert row, rule.name
        assert rule.pattern in row and rule.side in row and rule.argument in row
        assert (f"`{rule.premise}`" if rule.premise else "exact") in row
