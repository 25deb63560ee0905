"""Manifold-constrained Hyper-Connections (mHC, arXiv 2512.24880): backends, the paper's
equations, Sinkhorn-Knopp, the two inits, bf16 autocast, stats, compile.

The oracle is written from the paper's formulas (arXiv 2512.24880) in plain torch; it reads the
compiled module's parameters by state_dict name and calls its layer submodules as F, never
hcdsl's mixing or Sinkhorn code. x ∈ R^{n×C} per token:

    x'     = RMSNorm(vec(x))                         (1 x nC, no learned scale, eps 1e-6)
    H_pre  = σ(α_pre x'φ_pre + b_pre)                (1 x n)
    H_post = 2 σ(α_post x'φ_post + b_post)           (1 x n)
    H_res  = SK(α_res mat(x'φ_res) + b_res)          (n x n; mat is row-major)
    SK(L): M = exp(L), then 20 x (normalise columns, then rows)
    x_{l+1} = H_res x_l + H_postᵀ F(H_pre x_l)        (H_res without transpose)
    logits  = unembed(norm(Σ_i x_i))   (readout=mean: (1/n) Σ_i x_i)
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_one_graph, assert_same, run_recording
import hcdsl
import hcdsl.nn.generator as generator
import hcdsl.nn.manifold as manifold
from hcdsl.ir.dump import dump
from hcdsl.counts import stats
from helpers import attn_ffn, model_text

SPECS = Path(__file__).resolve().parents[2] / "specs" / "families"
DIM, VOCAB, EPS, X_EPS = 32, 64, 1e-5, 1e-6
LAYERS = ["attn", "ffn", "attn", "ffn"]  # body = repeat 2 [attn, ffn]


def spec(connect: str, dim: int = DIM) -> str:
    return model_text(connect, name="mhc", dim=dim, vocab=VOCAB,
                      settings="norm = rmsnorm(affine=true)",
                      layers=attn_ffn(4, "mlp(hidden=64, act=swiglu)"))


def tokens(b: int = 2, t: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


def randomise(model: torch.nn.Module, seed: int, logit_std: float = 1.0) -> dict:
    """Coefficient logits of std about `logit_std` (x' has RMS 1, so x'φ with φ ~ N(0, 1/nC)
    has std about 1), gates α near 1, random biases, random norm weights."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in model.state_dict().items():
        r = torch.randn(t.shape, generator=g, dtype=t.dtype)
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("phi_"):
            t = r / math.sqrt(t.shape[0])
        elif leaf.startswith("alpha_"):
            t = logit_std * (1.0 + 0.2 * r)
        elif leaf.startswith("b_"):
            t = 0.5 * logit_std * r
        elif "norm" in name and leaf == "weight":
            t = 1.0 + 0.2 * r
        out[name] = t
    model.load_state_dict(out)
    return out


def sinkhorn_knopp(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """The paper's SK in the plain domain: exp, then columns then rows, `iters` times."""
    m = logits.exp()
    for _ in range(iters):
        m = m / m.sum(dim=-2, keepdim=True)
        m = m / m.sum(dim=-1, keepdim=True)
    return m


def coefficients(sd: dict, c: str, x: torch.Tensor, n: int, iters: int):
    """H_pre (.., n), H_post (.., n), H_res (.., n, n) of layer prefix c from x (.., n, C)."""
    xf = F.rms_norm(x.flatten(-2), (x.shape[-2] * x.shape[-1],), None, X_EPS)  # x'
    pre = torch.sigmoid(sd[c + "alpha_pre"] * (xf @ sd[c + "phi_pre"]) + sd[c + "b_pre"])
    post = 2 * torch.sigmoid(sd[c + "alpha_post"] * (xf @ sd[c + "phi_post"]) + sd[c + "b_post"])
    res_logits = sd[c + "alpha_res"] * (xf @ sd[c + "phi_res"]).reshape(*xf.shape[:-1], n, n)
    return pre, post, sinkhorn_knopp(res_logits + sd[c + "b_res"], iters)


def oracle(model, sd, n: int, toks, readout: str = "sum", iters: int = 20):
    h0 = F.embedding(toks, sd["embed.weight"])
    x = torch.stack([h0] * n, dim=-2)  # n copies, (B, T, n, C)
    states = []
    for k, name in enumerate(LAYERS, start=1):
        pre, post, res = coefficients(sd, f"L{k}_coef.", x, n, iters)
        h_in = (pre.unsqueeze(-2) @ x).squeeze(-2)  # H_pre x, (B, T, C)
        h_in = F.rms_norm(h_in, (DIM,), sd[f"L{k}_norm.weight"], EPS)
        layer = getattr(model, f"L{k}_{name}")
        y = layer(h_in, h_in, h_in) if name == "attn" else layer(h_in)  # F(H_pre x)
        x = res @ x + post.unsqueeze(-1) * y.unsqueeze(-2)  # H_res x + H_postᵀ F
        states.append(x)
    h = x.sum(-2) if readout == "sum" else x.mean(-2)
    h = F.rms_norm(h, (DIM,), sd["final_norm.weight"], EPS)
    return h @ sd["head.weight"].T, states


def h_res_of(coef_module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """H_res from the compiled step matrix M = [[0, H_post], [H_preᵀ, H_resᵀ]]."""
    return coef_module(x)[..., 1:, 1:].transpose(-1, -2)


CASES = [(n, init, readout) for n in (2, 4) for init in ("paper", "identity")
         for readout in ("sum", "mean")] + [(1, "paper", "sum")]
IDS = [f"n{n}-{i}-{r}" for n, i, r in CASES]


@pytest.mark.parametrize("n,init,readout", CASES, ids=IDS)
def test_fx_equals_reference_with_random_parameters(n: int, init: str, readout: str) -> None:
    text = spec(f"mhc(n={n}, init={init}, readout={readout})")
    fxm = hcdsl.compile(text, backend="fx", seed=3)
    ref = hcdsl.compile(text, backend="reference", seed=3)
    ref.load_state_dict(randomise(fxm, seed=10 + n))
    assert_same(fxm, ref, tokens())


@pytest.mark.parametrize("backend", ["fx", "reference"])
@pytest.mark.parametrize("n,init,readout", CASES, ids=IDS)
def test_random_parameters_match_the_paper_equations(n: int, init: str, readout: str,
                                                     backend: str) -> None:
    model = hcdsl.compile(spec(f"mhc(n={n}, init={init}, readout={readout})"),
                          backend=backend, seed=n)
    sd = randomise(model, seed=100 + n)
    toks = tokens()
    with torch.no_grad():
        want, want_states = oracle(model, sd, n, toks, readout)
        got, seen = run_recording(model, toks)
    assert (got - want).abs().max().item() <= 1e-5
    for k, want_x in enumerate(want_states, start=1):
        got_x = seen[f"L{k}.write"].reshape(want_x.shape)
        diff = (got_x - want_x).abs().max().item()
        assert diff <= 1e-5, f"state after layer {k}: max abs diff {diff:.3g}"
    if n > 1:  # the streams really differ, so H_res's orientation is tested
        assert (want_states[-1][..., 0, :] - want_states[-1][..., 1, :]).abs().max() > 1e-2


def test_h_res_is_not_transposed() -> None:
    """Sanity of the oracle: using H_resᵀ instead of H_res changes the answer."""
    model = hcdsl.compile(spec("mhc(n=4)"), backend="reference", seed=0)
    sd = randomise(model, seed=1)
    c, x = "L1_coef.", torch.randn(3, 4, DIM)
    _, _, res = coefficients(sd, c, x, 4, 20)
    with torch.no_grad():
        got = h_res_of(model.L1_coef, x)
    assert (got - res).abs().max() <= 1e-6
    assert (got - res.transpose(-1, -2)).abs().max() > 1e-2


# --- Sinkhorn-Knopp ------------------------------------------------------------------------
# Column tolerance after 20 iterations, measured over 10^4 random n x n logit matrices (n in
# 2, 4, 8; the error is truncation: fp64 gives the same): logit std <= 0.5 -> columns within
# 1e-5 (worst n = 2: 2.5e-6; n = 4, 8: 2.4e-7, fp32 rounding); std 1 -> within 1e-2 (worst
# n = 2: 8.6e-3, 99th percentile 2e-4; n = 8: 4.1e-5); std 2 -> up to 4e-2, not tested.
# At the paper init (α = 0.01, logit std about 0.01) H_res is doubly stochastic to 1e-6.
# Rows are exact to rounding (<= 1e-6): the last step normalises rows.
COL_TOL = {0.5: 1e-5, 1.0: 1e-2}


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("std", [0.5, 1.0])
def test_sinkhorn_rows_and_columns(n: int, std: float) -> None:
    logits = torch.randn(10_000, n, n, generator=torch.Generator().manual_seed(n)) * std
    m = manifold.sinkhorn_log(logits, 20)
    rows = (m.sum(-1) - 1).abs().max().item()
    cols = (m.sum(-2) - 1).abs().max().item()
    print(f"\nSK n={n} std={std}: rows {rows:.1e}, columns {cols:.1e}")
    assert (m >= 0).all() and rows <= 1e-6 and cols <= COL_TOL[std]
    assert (m - sinkhorn_knopp(logits, 20)).abs().max() <= 1e-6  # log domain == plain domain


def test_sinkhorn_is_stable_for_large_logits() -> None:
    """Log domain: no overflow where exp(logits) would be inf."""
    logits = torch.tensor([[[200.0, 0.0], [0.0, 200.0]], [[-300.0, 5.0], [1.0, 90.0]]])
    m = manifold.sinkhorn_log(logits, 20)
    assert torch.isfinite(m).all() and (m.sum(-1) - 1).abs().max() <= 1e-6
    assert not torch.isfinite(logits.exp()).all()


@pytest.mark.parametrize("std", [0.5, 1.0])
def test_products_of_h_res_stay_doubly_stochastic(std: float) -> None:
    """The H_res of a model's layers (random parameters, logit std about `std`) and products of
    k = 16 of them: rows sum to 1 within k x 1e-6, columns within k x COL_TOL (a product's
    column error is at most the sum of its factors' column errors, as all entries are >= 0)."""
    model = hcdsl.compile(spec("mhc(n=4)"), backend="reference", seed=0)
    randomise(model, seed=3, logit_std=std)
    x = torch.randn(64, 4, DIM, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mats = [h_res_of(getattr(model, f"L{k}_coef"), x) for k in range(1, 5)] * 4
    prod = mats[0]
    for m in mats[1:]:
        prod = prod @ m
    k = len(mats)
    for m in mats[:4]:
        assert (m.sum(-1) - 1).abs().max() <= 1e-6 and (m.sum(-2) - 1).abs().max() <= COL_TOL[std]
    rows, cols = (prod.sum(-1) - 1).abs().max().item(), (prod.sum(-2) - 1).abs().max().item()
    print(f"\nproduct of {k} H_res (std {std}): rows {rows:.1e}, columns {cols:.1e}")
    assert (prod >= 0).all() and rows <= k * 1e-6 and cols <= k * COL_TOL[std]
    assert torch.linalg.matrix_norm(prod, ord=2).max() <= 1 + k * COL_TOL[std]


@pytest.mark.parametrize("iters", [1, 3, 20])
def test_iterations_are_configurable(iters: int) -> None:
    model = hcdsl.compile(spec(f"mhc(n=4, iters={iters})"), backend="reference", seed=0)
    assert model.L1_coef.iters == iters
    assert f"iters={iters}" in dump(model.hc_ir)
    sd = randomise(model, seed=2, logit_std=2.0)
    x = torch.randn(256, 4, DIM, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = h_res_of(model.L1_coef, x)
    for k in (1, 3, 20):  # equals SK with exactly `iters` iterations and no other count
        close = (got - coefficients(sd, "L1_coef.", x, 4, k)[2]).abs().max() <= 1e-6
        assert close == (k == iters)


# --- inits -------------------------------------------------------------------------------------


def copy_shared(src: torch.nn.Module, dst: torch.nn.Module) -> int:
    theirs = dst.state_dict()
    shared = {k: v for k, v in src.state_dict().items() if k in theirs}
    dst.load_state_dict(shared, strict=False)
    return len(shared)


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("backend", ["reference", "fx"])
def test_identity_init_equals_pre_norm(n: int, backend: str) -> None:
    """φ = 0, b_pre = -log(n-1), b_post = b_res = 0: H_pre = 1/n, H_post = 1, H_res = 1/n.
    Every stream equals the Pre-Norm hidden state after every layer (<= 1e-6), and with
    readout=mean the logits are Pre-Norm's to float rounding (measured: printed, <= 1e-6)."""
    pre = hcdsl.compile(spec("residual"), backend=backend, seed=1)
    model = hcdsl.compile(spec(f"mhc(n={n}, identity, readout=mean)"), backend=backend, seed=2)
    assert copy_shared(pre, model) == len(pre.state_dict())
    toks = tokens()
    with torch.no_grad():
        pre_logits, pre_seen = run_recording(pre, toks)
        logits, seen = run_recording(model, toks)
    worst = 0.0
    for k in range(1, len(LAYERS) + 1):
        h = pre_seen[f"L{k}.write"].reshape(2, 7, 1, DIM)
        x = seen[f"L{k}.write"].reshape(2, 7, n, DIM)
        worst = max(worst, (x - h).abs().max().item())
    diff = (logits - pre_logits).abs().max().item()
    print(f"\nmHC x{n} identity ({backend}): streams {worst:.1e}, logits {diff:.1e}")
    assert worst <= 1e-6 and diff <= 1e-6


def test_identity_init_with_sum_readout_differs_only_by_the_final_eps() -> None:
    """readout=sum feeds n h to the final RMSNorm: RMSNorm(n h; eps) = RMSNorm(h; eps/n²)."""
    pre = hcdsl.compile(spec("residual"), backend="reference", seed=1)
    model = hcdsl.compile(spec("mhc(n=4, identity)"), backend="reference", seed=2)
    copy_shared(pre, model)
    with torch.no_grad():
        pre.final_norm.eps = model.final_norm.eps = 0.0
        assert (model(tokens()) - pre(tokens())).abs().max() <= 1e-5


def test_paper_init_is_what_the_docs_say() -> None:
    """Paper-style init: φ ~ N(0, 1/(nC)), α = 0.01, b = 0 (the bias inits are unpublished;
    hcdsl's choice). At zero input (x' = 0): H_pre = 1/2, H_post = 1, H_res = 1/n."""
    n = 4
    model = hcdsl.compile(spec(f"mhc(n={n})"), backend="reference", seed=0)
    coef = model.L1_coef
    for alpha in (coef.alpha_pre, coef.alpha_post, coef.alpha_res):
        assert alpha.item() == pytest.approx(0.01)
    for b in (coef.b_pre, coef.b_post, coef.b_res):
        assert b.abs().max() == 0
    std = coef.phi_res.std().item() * math.sqrt(n * DIM)
    assert 0.9 < std < 1.1, std
    with torch.no_grad():
        m = coef(torch.zeros(1, 1, n, DIM))[0, 0]
    assert torch.allclose(m[1:, 0], torch.full((n,), 0.5))  # H_pre
    assert torch.allclose(m[0, 1:], torch.ones(n))  # H_post
    assert torch.allclose(m[1:, 1:], torch.full((n, n), 1.0 / n))  # H_res (transposed)
    with torch.no_grad():  # at init, on any input, H_res is doubly stochastic to rounding
        res = h_res_of(coef, torch.randn(256, n, DIM, generator=torch.Generator().manual_seed(0)))
    assert (res.sum(-1) - 1).abs().max() <= 1e-6 and (res.sum(-2) - 1).abs().max() <= 1e-6


def test_paper_init_is_near_but_not_pre_norm() -> None:
    """With random φ the paper init is only close to Pre-Norm: H_pre = 1/2 reads (n/2) h, which
    the layer's RMSNorm undoes; the α = 0.01 terms move the streams apart slightly."""
    pre = hcdsl.compile(spec("residual"), backend="reference", seed=1)
    model = hcdsl.compile(spec("mhc(n=4, readout=mean)"), backend="reference", seed=2)
    copy_shared(pre, model)
    with torch.no_grad():
        diff = (model(tokens()) - pre(tokens())).abs().max().item()
    print(f"\nmHC x4 paper init vs Pre-Norm: max |logit diff| = {diff:.1e}")
    assert 1e-7 < diff < 1e-2


def test_identity_needs_two_streams() -> None:
    with pytest.raises(hcdsl.errors.HcError, match="n >= 2"):
        hcdsl.parse(spec("mhc(n=1, identity)"))


# --- bf16 autocast -----------------------------------------------------------------------------


def test_bf16_autocast_keeps_coefficients_in_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    model = hcdsl.compile(SPECS / "mhc_tiny_paper4.hc", seed=0)
    randomise(model, seed=4, logit_std=0.5)
    toks = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    seen: list[torch.dtype] = []
    original = generator.sinkhorn_paper  # the preset is a generator: its Sinkhorn hook

    def recording(logits: torch.Tensor, iters: int) -> torch.Tensor:
        seen.append(logits.dtype)
        return original(logits, iters)

    monkeypatch.setattr(generator, "sinkhorn_paper", recording)
    with torch.no_grad():
        want = model(toks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(toks)
            # a bf16 state: the coefficients are still computed in fp32, then cast back
            x = torch.randn(2, 3, 4, 64).bfloat16()
            m = model.L1_coef(x)
    assert seen and set(seen) == {torch.float32}
    assert m.dtype == torch.bfloat16
    assert (m.float() - model.L1_coef(x.float())).abs().max() <= 1e-2  # bf16 rounding
    assert torch.isfinite(got).all()
    diff = (got.float() - want).abs().max().item() / want.abs().max().item()
    print(f"\nmHC x4 bf16 autocast vs fp32: max |diff| / max |logit| = {diff:.1e}")
    assert diff <= 5e-2


# --- parameters and gradients ------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4])
def test_extra_params_per_layer(n: int) -> None:
    """φ_pre, φ_post (nC x n), φ_res (nC x n²); α_pre, α_post, α_res; b_pre, b_post (n),
    b_res (n x n): nC(2n + n²) + 3 + 2n + n² per layer."""
    C = DIM
    per_layer = n * C * (2 * n + n * n) + 3 + 2 * n + n * n
    st = stats(spec(f"mhc(n={n})"))
    assert st.extra_params == len(LAYERS) * per_layer
    assert st.params == sum(p.numel() for p in hcdsl.compile(spec(f"mhc(n={n})")).parameters())


@pytest.mark.parametrize("init", ["paper", "identity"])
def test_every_parameter_gets_a_gradient(init: str) -> None:
    """With φ = 0 (identity init) the gradient of every α is legitimately 0 (α multiplies
    x'φ = 0), and H_res = 1/n uniform on equal streams gives b_res no signal; after
    randomising φ, α and b every parameter must get a nonzero gradient."""
    model = hcdsl.compile(spec(f"mhc(n=4, init={init})"), seed=0)
    randomise(model, seed=5)
    model(tokens()).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert p.grad.abs().sum() > 0, f"{name} gets a zero gradient"


# --- torch.compile ---------------------------------------------------------------------------


def test_mhc4_compiles_in_one_graph() -> None:
    """The tiny mHC x4 spec (Sinkhorn-Knopp one op per layer): torch.compile(fullgraph=True)
    with inductor, one graph, no breaks, and compiled == eager within 1e-5."""
    model = hcdsl.compile(SPECS / "mhc_tiny_paper4.hc", seed=0)
    randomise(model, seed=2)
    tokens = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    assert_one_graph(model, tokens)
