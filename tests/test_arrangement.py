"""arrangement(spec): which layers may run in parallel, from the zeros of C^(0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hcdsl.proofs.arrangement import arrangement
from hcdsl.proofs.arrangement import arrangement_text, describe, groups_from_matrix

P, D = Path("specs/proofs"), Path("specs/duality")


def test_prenorm_is_sequential() -> None:
    assert arrangement(P / "prenorm.hc") == [[1], [2], [3], [4], [5], [6]]


def test_parallel_specs_pair_up() -> None:
    for spec in (D / "hc_parallel_n2.hc", D / "gptj_parallel.hc"):
        assert arrangement(spec) == [[1, 2], [3, 4], [5, 6]]


def test_describe() -> None:
    assert describe([[1, 2], [3, 4], [5]]) == "layers 1-2 parallel, 3-4 parallel, layer 5"
    assert describe([[1], [2], [3]]) == "layers 1-3 sequential"


def test_text() -> None:
    text = arrangement_text(D / "hc_parallel_n2.hc")
    assert "layers 1-2 parallel, 3-4 parallel, 5-6 parallel" in text


def test_groups_are_greedy_and_respect_every_member() -> None:
    C = np.zeros((6, 6))
    C[2, 0] = C[3, 0] = C[4, 0] = 1
    C[4, 2] = 1  # layer 4 reads layer 2: it cannot join group [1, 2, 3]
    assert groups_from_matrix(C) == [[1, 2, 3], [4]]
