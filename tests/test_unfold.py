"""hcdsl unfold: C^(0) and C^(i) of HC Eqs. 20-23."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import hcdsl
from hcdsl.api import parse
from hcdsl.proofs.reference_forms import hc_literal_spec
from hcdsl.proofs.unfold import unfold, unfold_exact, unfold_numeric

P, D = Path("specs/proofs"), Path("specs/duality")


def test_prenorm_is_lower_triangular_ones() -> None:
    u = unfold(P / "prenorm.hc")
    assert u.exact and u.L == 6
    C = u.as_float(u.C0)
    np.testing.assert_array_equal(C, np.tril(np.ones((8, 8)), k=-1))
    assert len(u.Ci) == 1
    np.testing.assert_array_equal(u.as_float(u.Ci[0]), C)


def test_parallel_pattern_is_jagged() -> None:
    for spec in (D / "gptj_parallel.hc", D / "hc_parallel_n2.hc"):
        C = unfold(spec).as_float(unfold(spec).C0)
        nz = C != 0
        # layers 2k-1 and 2k read the same sources: no layer reads its partner
        for k in (1, 3, 5):
            assert not nz[k + 1, k]
            np.testing.assert_array_equal(nz[k], nz[k + 1])
        assert nz[3, 1] and nz[3, 2] and nz[7, 6]
    gptj = unfold(D / "gptj_parallel.hc")
    expect = np.zeros((8, 8))
    for k in range(1, 8):
        expect[k, :2 * ((k - 1) // 2) + 1] = 1
    np.testing.assert_array_equal(gptj.as_float(gptj.C0), expect)


def test_random_static_hc_matches_eq21() -> None:
    rng = np.random.default_rng(0)
    n, L = 3, 6
    mats = {}
    for k in range(1, L + 1):
        m = np.round(rng.normal(size=(n + 1, n + 1)), 2)
        m[0, 0] = 0.0
        mats[k] = tuple(tuple(float(x) for x in row) for row in m)
    spec = hc_literal_spec(parse(P / "prenorm.hc"), n, mats, name="random_shc")
    u = unfold_exact(spec)
    B = {k: np.array(mats[k])[0, 1:][None, :] for k in mats}  # 1 x n
    Am = {k: np.array(mats[k])[1:, :1] for k in mats}  # n x 1
    Ar = {k: np.array(mats[k])[1:, 1:] for k in mats}  # n x n
    B[0] = np.ones((1, n))  # H^0 = n copies of h0
    Am[L + 1] = np.ones((n, 1))  # the readout sums the streams
    for k in range(1, L + 2):
        for j in range(k):
            prod = np.eye(n)
            for t in range(j + 1, k):
                prod = prod @ Ar[t]
            c = (B[j] @ prod @ Am[k]).item()  # Eq. 21
            assert np.isclose(float(u.C0[k, j]), c, atol=1e-9), (k, j)
            for i in range(n):  # Eq. 22: stream i of the state layer k reads
                assert np.isclose(float(u.Ci[i][k, j]), (B[j] @ prod)[0, i], atol=1e-9)


def test_dynamic_from_checkpoint_is_averaged(tmp_path) -> None:  # noqa: ANN001
    m = hcdsl.compile(P / "dhc_n2_notanh.hc", backend="reference", seed=1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "w_" in name:
                p.normal_(0, 1.0)
    ckpt = tmp_path / "dhc.pt"
    torch.save(m.state_dict(), ckpt)
    u = unfold(P / "dhc_n2_notanh.hc", checkpoint=ckpt, tokens="1,2,3,4")
    assert not u.exact and "averaged over the tokens" in u.note
    C = u.C0.astype(float)
    assert np.allclose(np.triu(C), 0)
    # at init (W = 0) the numeric unfolding is the exact one
    init = unfold_numeric(P / "dhc_n2_notanh.hc", tokens="5,6,7")
    exact = unfold_exact(P / "dhc_n2_notanh.hc")
    np.testing.assert_allclose(init.C0, exact.as_float(exact.C0), atol=1e-12)
    # trained dynamic weights move it away from init
    assert np.abs(C - exact.as_float(exact.C0)).max() > 1e-3


def test_postnorm_is_numeric_with_a_note() -> None:
    u = unfold(P / "postnorm.hc")
    assert not u.exact and "1/std" in u.note


def test_render_mentions_rows_and_columns() -> None:
    text = unfold(P / "prenorm.hc").render()
    assert "C^(0)" in text and "C^(1)" in text and "h0" in text
