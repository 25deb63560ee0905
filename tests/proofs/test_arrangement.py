"""arrangement(spec): which layers may run in parallel, from the zeros of C^(0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_fc_arrangement_reads_the_blocks_not_their_average() -> None:
    """With fractions, layer k reads layer j iff its block of C^(0) by fraction is not zero:
    entries +1 and -1 average to 0 in C^(0) but still make layer 2 wait for layer 1."""
    from fractions import Fraction

    from hcdsl.proofs.unfold import Unfolded

    m, L = 2, 2
    frac = np.zeros(((L + 2) * m, (L + 2) * m))
    for k in range(1, L + 2):
        frac[k * m:(k + 1) * m, 0:m] = np.eye(m)  # every input reads h0
    frac[2 * m, 1 * m], frac[2 * m + 1, 1 * m + 1] = 1.0, -1.0  # layer 2 reads layer 1
    C0 = frac.reshape(L + 2, m, L + 2, m).sum(axis=3).mean(axis=1)
    assert C0[2, 1] == 0
    u = Unfolded("x", C0.astype(object) * Fraction(1), [], ["mlp", "mlp"], True,
                 fractions=m, by_fraction=frac.astype(object) * Fraction(1))
    assert groups_from_matrix(C0) == [[1, 2]]  # the average alone would run them together
    assert arrangement(u) == [[1], [2]]


def test_fc_specs_have_an_arrangement() -> None:
    """`hcdsl show --arrangement` was an internal error for every Frac-Connections spec."""
    text = arrangement_text(Path("specs/families/frac_tiny_sfc4.hc"))
    assert text.startswith("specs/families/frac_tiny_sfc4.hc: layers 1-4 sequential")


PAPERS = {"olmo_1b_dhc4.hc", "olmo_1b_shc4.hc", "olmo2_1b_dfc4.hc", "muddpythia_2_8b.hc"}
BUNDLED = [s for s in sorted(Path("specs").rglob("*.hc")) if s.name not in PAPERS]
WERE_INTERNAL_ERRORS = ["specs/custom/residual_dual.hc", "specs/families/mudd_prepost_tiny.hc",
                        "specs/families/frac_tiny_sfc4.hc", "specs/families/frac_tiny_dfc4.hc"]


def _arrangement_cli(spec: Path) -> str:
    from typer.testing import CliRunner

    from hcdsl.cli import app

    r = CliRunner().invoke(app, ["show", str(spec), "--arrangement"])
    assert r.exit_code == 0, (spec, r.output)
    return r.output


def test_history_generators_with_channel_groups_have_an_arrangement() -> None:
    """Multi-Head AttnRes and DCA weigh the sources per channel group (per channel): they
    were a located error ("not a linear combination"); every layer reads every earlier
    output, so nothing runs in parallel."""
    for spec, name in (("attnres_multihead", "attnres_multihead_tiny"), ("dca", "dca_tiny")):
        out = _arrangement_cli(Path(f"specs/families/{spec}.hc"))
        assert out.startswith(f"{name}: layers 1-8 sequential"), out
        assert "per-channel weights taken as their mean" in out, out


@pytest.mark.parametrize("spec", WERE_INTERNAL_ERRORS)
def test_arrangement_of_specs_that_were_internal_errors(spec: str) -> None:
    """ResiDual's normalised stream, MUDD's pre/post norms and every FC spec were exit 3."""
    _arrangement_cli(Path(spec))


@pytest.mark.slow
@pytest.mark.parametrize("spec", BUNDLED, ids=str)
def test_every_bundled_spec_has_an_arrangement(spec: Path) -> None:
    """Never an internal error (the papers' 1B+ configurations: slower, same code paths)."""
    _arrangement_cli(spec)
