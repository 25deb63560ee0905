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


# --- Frac-Connections: the unfolding per fraction ----------------------------------------------
F = Path("specs/families")


def fc_oracle(mats: list[np.ndarray], m: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """C^(0) by fraction and the state fractions before each layer, from the FC equations
    (arXiv 2503.14125) with each layer's matrix M = [[0, diag(B)], [Y, A]] (2m x 2m):
    h_in fraction c = sum_s Y[s, c] H_s, H'_s = sum_f M[f, m + s] T_f + sum_r A[r, s] H_r,
    H^0 = the fractions of h0; readout = the fractions of H^L. Every value is a vector of
    coefficients over the sources (j, f) -> j*m + f."""
    L = len(mats)
    width = (L + 2) * m
    H = [np.eye(width)[s] for s in range(m)]  # H^0_s = fraction s of h0
    frac = np.zeros((width, width))
    states = []
    for k, M in enumerate(mats, start=1):
        Y, A, B = M[m:, :m], M[m:, m:], M[:m, m:]
        states.append([h.copy() for h in H])
        for c in range(m):
            frac[k * m + c] = sum(Y[s, c] * H[s] for s in range(m))
        out = [np.eye(width)[k * m + f] for f in range(m)]  # fraction f of T^k
        H = [sum(B[f, s] * out[f] for f in range(m)) + sum(A[r, s] * H[r] for r in range(m))
             for s in range(m)]
    for c in range(m):
        frac[(L + 1) * m + c] = H[c]
    states.append(H)
    return frac, states


def test_fc_at_init_is_identity_blocks_and_pre_norm() -> None:
    """Y = A = I, B = 1: fraction c reads fraction c of every earlier output (identity
    blocks), and the averaged C^(0) and every fraction's C^(i) are Pre-Norm's all-ones
    lower triangle, as HC with n = 1."""
    for spec in (F / "frac_tiny_sfc4.hc", F / "frac_tiny_dfc4.hc"):
        u = unfold(spec)
        assert u.exact and u.fractions == 4 and len(u.Ci) == 4
        ones = np.tril(np.ones((6, 6)), k=-1)
        np.testing.assert_array_equal(u.as_float(u.C0), ones)
        for c in u.Ci:
            np.testing.assert_array_equal(u.as_float(c), ones)
        np.testing.assert_array_equal(u.as_float(u.by_fraction), np.kron(ones, np.eye(4)))


def test_fc_with_trained_matrices_matches_the_fc_equations(tmp_path: Path) -> None:
    """Random static FC matrices (cross-fraction Y and A, B): numeric unfolding from the
    checkpoint equals the FC recurrence computed independently from the matrices the model
    produces."""
    spec = F / "frac_tiny_sfc4.hc"
    model = hcdsl.compile(spec, backend="reference", seed=0)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "_coef." in name:
                p.copy_(torch.randn(p.shape, generator=gen))
        mats = [model.get_submodule(f"L{k}_coef")().double().numpy() for k in range(1, 5)]
    ckpt = tmp_path / "sfc.pt"
    torch.save(model.state_dict(), ckpt)
    u = unfold(spec, checkpoint=ckpt, tokens="1,2,3")
    frac, states = fc_oracle(mats, 4)
    assert abs(frac[2 * 4 + 0, 1 * 4 + 1]) > 1e-3  # fraction 1 of layer 2 reads T^1's 2nd
    np.testing.assert_allclose(u.by_fraction, frac, atol=1e-9)
    L, m = 4, 4
    C0 = frac.reshape(L + 2, m, L + 2, m).sum(axis=3).mean(axis=1)
    np.testing.assert_allclose(u.C0, C0, atol=1e-9)
    for s in range(m):
        want = np.array([st[s].reshape(L + 2, m).sum(axis=1) for st in states])
        np.testing.assert_allclose(u.Ci[s][1:], want, atol=1e-9)


def test_fc_dynamic_from_a_checkpoint_runs_and_moves(tmp_path: Path) -> None:
    spec = F / "frac_tiny_dfc4.hc"
    model = hcdsl.compile(spec, backend="reference", seed=0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "_coef." in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    ckpt = tmp_path / "dfc.pt"
    torch.save(model.state_dict(), ckpt)
    u = unfold(spec, checkpoint=ckpt, tokens="1,2,3,4")
    assert not u.exact and u.by_fraction.shape == (24, 24)
    assert np.allclose(np.triu(u.C0), 0) and np.abs(u.C0 - np.tril(np.ones((6, 6)), -1)).max() > 1e-3
    assert "C^(0) by fraction" in u.render() and "5.4:" in u.render()


def test_fc_commands_work_on_the_bundled_specs(tmp_path: Path) -> None:
    """show --arrangement was an internal error and unfold/plot refused every FC spec."""
    from typer.testing import CliRunner

    from hcdsl.cli import app

    run = CliRunner().invoke
    for spec in sorted(F.glob("*frac*.hc")) + [F / "olmo2_1b_dfc4.hc"]:
        r = run(app, ["show", str(spec), "--arrangement"])
        assert r.exit_code == 0 and "sequential" in r.output, r.output
    r = run(app, ["unfold", str(F / "frac_tiny_dfc4.hc")])
    assert r.exit_code == 0 and "C^(4) (fraction 4)" in r.output, r.output
    r = run(app, ["plot", str(F / "frac_tiny_sfc4.hc"), "-o", str(tmp_path / "fc.png")])
    assert r.exit_code == 0, r.output


def test_the_training_probe_has_fc_matrices() -> None:
    """The compare report's matrices come from unfold_numeric: DFC now has them."""
    from hcdsl.train.probes import connections

    spec = F / "frac_tiny_dfc4.hc"
    model = hcdsl.compile(spec, seed=0)
    got = connections(spec, model.state_dict(), torch.tensor([[1, 2, 3]]))
    assert "C0" in got, got
    np.testing.assert_allclose(np.array(got["C0"]), np.tril(np.ones((6, 6)), -1), atol=1e-6)


# --- generators: a token-dependent read and readout (DeepSeek-V4's mHC and head) -----------
def _layer_inputs_and_outputs(model: torch.nn.Module, tokens: torch.Tensor):
    """Every layer's raw input (before its pre-norm), h^L before the final norm, and the
    sources h0, T^1..T^L, as the reference backend computes them (float64, one token)."""
    from hcdsl.ir import nodes as n

    ir = model.ir
    values = model.run(tokens)
    raw = lambda v: ir.inputs(v)["x"] if isinstance(ir.payload(v), n.Norm) else v  # noqa: E731
    layers = [v for v in ir.order() if isinstance(ir.payload(v), n.Layer)]
    embed = next(v for v in ir.order() if isinstance(ir.payload(v), n.Embed))
    unembed = next(v for v in ir.order() if isinstance(ir.payload(v), n.Unembed))
    inputs = [values[raw(ir.inputs(v)[ir.payload(v).ports()[0]])] for v in layers]
    inputs.append(values[raw(ir.inputs(unembed)["x"])])
    sources = [values[embed]] + [values[v] for v in layers]
    return [x.reshape(-1) for x in inputs], [s.reshape(-1) for s in sources]


def test_generator_read_and_readout_unfold_exactly_at_one_token() -> None:
    """At one token every weight is one number, so the numeric C^(0) must rebuild each layer's
    input and the readout's h^L from h0 and the layer outputs exactly: DeepSeek-V4's read
    and head are per-stream sigmoids of the state (transformers' DeepseekV4HyperConnection),
    with every weight moved far from its init."""
    from helpers import perturb

    spec = F / "deepseek_v4_mhc.hc"
    m = hcdsl.compile(spec, backend="reference", seed=1).double()
    perturb(m, seed=3, rel=2.0, const=0.5)
    tokens = torch.tensor([[7]])
    u = unfold_numeric(spec, checkpoint=m.state_dict(), tokens=tokens)
    inputs, sources = _layer_inputs_and_outputs(m, tokens)
    C = u.C0.astype(float)
    for k, x in enumerate(inputs, start=1):
        rebuilt = sum(C[k, j] * sources[j] for j in range(k))
        torch.testing.assert_close(rebuilt, x, rtol=1e-9, atol=1e-9)
    assert len(u.Ci) == 4  # the head reads the final 4-stream state


def test_per_channel_generator_unfolds_with_a_note() -> None:
    """Qwen4-exp's gated residual reads the normalised state with per-channel weights: the
    unfolding averages them (said in its note) and still shows who reads whom."""
    u = unfold(F / "qwen4_gated_residual.hc")
    assert "per-channel weights taken as their mean" in u.note and "1/std" in u.note
    reads = u.reads()
    assert all(reads[k, j] > 0 for k in range(1, u.L + 2) for j in range(k))


# --- history generators with channel groups: Multi-Head AttnRes, DCA -----------------------
def _moved(spec: Path, seed: int) -> torch.nn.Module:
    """The spec's model in float64 with every weight moved far from its init."""
    from helpers import perturb

    m = hcdsl.compile(spec, backend="reference", seed=seed).double()
    perturb(m, seed=seed + 1, rel=2.0, const=1.0)
    return m


def test_multihead_attnres_unfolds_to_the_by_hand_weights() -> None:
    """C^(0) of Multi-Head AttnRes (arXiv 2607.27230) with moved weights is the softmax
    weights of the equations recomputed by hand (tests/history_by_hand.py), averaged over the
    4 channel groups, then over the tokens; the groups' weights really differ, and the rows
    are convex combinations (sum 1)."""
    from history_by_hand import mh_attnres

    spec = F / "attnres_multihead.hc"
    m = _moved(spec, seed=11)
    toks = torch.randint(0, 256, (2, 7), generator=torch.Generator().manual_seed(12))
    u = unfold_numeric(spec, checkpoint=m.state_dict(), tokens=toks)
    with torch.no_grad():
        logits, alphas, C0 = mh_attnres(m, toks, heads=4, layers=8)
        assert (m(toks) - logits).abs().max().item() <= 1e-9  # the by-hand model is the model
    np.testing.assert_allclose(u.C0.astype(float), C0, atol=1e-9)
    assert max((a.amax(-1) - a.amin(-1)).max().item() for a in alphas) > 0.1  # groups differ
    np.testing.assert_allclose(C0[1:].sum(axis=1), 1.0, atol=1e-12)
    assert np.abs(C0[9, :9] - 1 / 9).max() > 1e-2  # moved away from the uniform init
    assert u.Ci == [] and "per-channel weights taken as their mean" in u.note


def test_dca_unfolds_to_the_by_hand_weights() -> None:
    """C^(0) of DeepCrossAttention (arXiv 2502.06785) with moved weights: the GRN-v3 weights
    b + ReLU(w · RMSNorm(g_j)) of the equations recomputed by hand, averaged over the channels,
    then over the tokens, through g_i = T^(2i-1) + T^(2i); the attention row shows its q
    input, the FFN's its a + q. At init (b = 1, w = 0) it is Pre-Norm's all-ones triangle."""
    from history_by_hand import dca

    spec = F / "dca.hc"
    m = _moved(spec, seed=13)
    toks = torch.randint(0, 256, (2, 7), generator=torch.Generator().manual_seed(14))
    u = unfold_numeric(spec, checkpoint=m.state_dict(), tokens=toks)
    with torch.no_grad():
        logits, _, C0 = dca(m, toks, blocks=4)
        assert (m(toks) - logits).abs().max().item() <= 1e-9
    np.testing.assert_allclose(u.C0.astype(float), C0, atol=1e-9)
    assert np.abs(C0 - np.tril(np.ones((10, 10)), -1)).max() > 0.1  # moved from init
    assert u.Ci == [] and "shows its first (q)" in u.note and "1/std" not in u.note
    init = unfold(spec)  # no checkpoint: numeric at init
    np.testing.assert_allclose(init.C0.astype(float), np.tril(np.ones((10, 10)), -1),
                               atol=1e-12)


def test_history_generator_commands_show_dynamic_weights(tmp_path: Path) -> None:
    """`hcdsl unfold` and `plot` refused Multi-Head AttnRes and DCA (exit 1, "not a linear
    combination"); at init Multi-Head AttnRes is every group's mean of the sources: 1/k."""
    from typer.testing import CliRunner

    from hcdsl.cli import app

    run = CliRunner().invoke
    r = run(app, ["unfold", str(F / "attnres_multihead.hc"), "--input", "1,2,3"])
    assert r.exit_code == 0, r.output
    assert "  9: 0.111 0.111 0.111 0.111 0.111 0.111 0.111 0.111 0.111" in r.output, r.output
    r = run(app, ["plot", str(F / "attnres_multihead.hc"), str(F / "dca.hc"),
                  "-o", str(tmp_path / "h.png")])
    assert r.exit_code == 0 and (tmp_path / "h.png").stat().st_size > 0, r.output


def test_a_dynamic_history_spec_says_so_when_unfolded_exactly() -> None:
    """Attention residuals and MUDD unfold exactly at init, but their weights depend on the
    token: the note says how to see the trained, per-token ones."""
    for spec in ("attnres_tiny.hc", "mudd_tiny.hc"):
        u = unfold(F / spec)
        assert u.exact and "a dynamic spec: give --checkpoint and --input" in u.note, u.note
    assert "a dynamic spec" not in unfold(F / "denseformer_1x1_tiny.hc").note
