"""History generators (`generator { ... }` in a `state = history` connection).

- The presets are the records a user writes: MUDD and attention residuals written as
  connections build the same modules (state_dict keys and shapes) and the same logits as
  `connect mudd` / `connect attnres`, with the same weights.
- Multi-Head Attention Residuals (specs/families/attnres_multihead.hc) and DeepCrossAttention
  (specs/families/dca.hc): each recomputed here in plain torch from the equations (their
  docs/families pages), float64, to 1e-6; fx == reference with every gradient; parameter
  counts from the equations' shapes; a few training steps lower the loss.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_same, perturb, train_losses
from history_by_hand import mh_attnres, rms
import hcdsl
from hcdsl.counts import count_params
from hcdsl.spec import ConnectionSpec

FAMILIES = Path(__file__).resolve().parents[2] / "specs" / "families"
MHA = FAMILIES / "attnres_multihead.hc"
DCA = FAMILIES / "dca.hc"
VOCAB, DIM, BLOCKS, EPS = 256, 64, 4, 1e-5
LAYERS = 2 * BLOCKS


def tokens(seed: int, shape: tuple[int, int] = (2, 9)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def model(connection: str, connect: str, norm: str = "layernorm") -> str:
    return f"""{connection}
model m {{
  dim = {DIM}
  vocab = {VOCAB}
  norm = {norm}
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=128)
  body = repeat {BLOCKS} [attn, ffn]
  connect {connect}
}}
"""


def same_model(a: str, b: str, seed: int) -> None:
    """a and b build the same modules, and the same logits with b's weights in a."""
    ma = hcdsl.compile(a, seed=0, dtype=torch.float64)
    mb = hcdsl.compile(b, seed=1, dtype=torch.float64)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(ma) == shapes(mb)
    perturb(mb, seed)
    ma.load_state_dict(mb.state_dict(), strict=True)
    with torch.no_grad():
        toks = tokens(seed)
        assert (ma(toks) - mb(toks)).abs().max().item() <= 1e-12


# -- the presets are the records a user writes ----------------------------------------------
MUDD_TEXT = """connection my_mudd {
  state = history
  granularity = block
  ways = qkvr
  generator {
    input = newest
    norm = rmsnorm(weight=none)
    proj = lowrank(rank=auto, rank_ways=4)
    static = source(init=newest)
  }
}"""

DDFORMER_TEXT = """connection my_ddformer {
  state = history
  generator {
    input = newest
    norm = rmsnorm
    proj = lowrank(rank=auto)
  }
}"""

ATTNRES_TEXT = """connection my_attnres {{
  state = history
  granularity = {granularity}
  generator {{
    input = sources
    norm = rmsnorm(weight=scale)
    proj = query
    act = softmax
    static = none
  }}
}}"""


def test_mudd_written_as_a_connection_is_the_preset() -> None:
    same_model(model(MUDD_TEXT, "my_mudd"), model("", "mudd"), seed=1)


def test_a_ddformer_reads_its_last_aggregate_with_its_own_rank() -> None:
    """mudd(ways=1)'s last DA counts 4 ways in K ("hidden x4"); the same record without
    rank_ways counts 1: K = L + 1, so the two differ in exactly that W1, W2."""
    mine = hcdsl.compile(model(DDFORMER_TEXT, "my_ddformer"), seed=0).state_dict()
    preset = hcdsl.compile(model("", "mudd(ways=1)"), seed=0).state_dict()
    differ = {k for k in preset if preset[k].shape != mine[k].shape}
    assert mine.keys() == preset.keys()
    assert differ == {f"A{BLOCKS}_coef.w1", f"A{BLOCKS}_coef.w2"}
    assert mine[f"A{BLOCKS}_coef.w1"].shape == (DIM, BLOCKS + 1)
    assert preset[f"A{BLOCKS}_coef.w1"].shape == (DIM, 4 * (BLOCKS + 1))


@pytest.mark.parametrize("granularity", ["layer", "block"])
def test_attention_residuals_written_as_a_generator_are_the_preset(granularity: str) -> None:
    mine = model(ATTNRES_TEXT.format(granularity=granularity), "my_attnres")
    same_model(mine, model("", f"attnres(granularity={granularity})"), seed=2)


def test_softmax_weights_setting_is_the_attnres_record() -> None:
    text = "connection w {\n  state = history\n  granularity = layer\n  weights = softmax\n}"
    same_model(model(text, "w"), model("", "attnres"), seed=3)


# -- Multi-Head Attention Residuals -----------------------------------------------------------
def mh_attnres_by_hand(m: torch.nn.Module, toks: torch.Tensor, heads: int) -> torch.Tensor:
    """h_l[g] = sum_i softmax_i(w_l[g] · RMSNorm(v_i[g]) ⊙ γ_l[g]) v_i[g] for every group g
    of DIM / heads channels (tests/history_by_hand.py, written from the equation)."""
    return mh_attnres(m, toks, heads, LAYERS)[0]


def test_multihead_attnres_matches_the_equation() -> None:
    m = hcdsl.compile(MHA, seed=4, dtype=torch.float64)
    perturb(m, seed=5)
    toks = tokens(2)
    with torch.no_grad():
        assert (m(toks) - mh_attnres_by_hand(m, toks, heads=4)).abs().max().item() <= 1e-6
        # the groups really differ: one softmax over all channels is another function
        assert (m(toks) - mh_attnres_by_hand(m, toks, heads=1)).abs().max().item() > 1e-3


def test_multihead_attnres_with_one_head_is_attnres() -> None:
    one = MHA.read_text().replace("query(heads=4)", "query(heads=1)")
    preset = MHA.read_text().split("model ")[1]
    preset = "model " + preset.replace("connect attnres_multihead", "connect attnres")
    same_model(one, preset, seed=6)


def test_multihead_attnres_extra_parameters() -> None:
    """Per read: H queries of D/H channels and a key RMSNorm scale per channel: 2 D, as
    AttnRes. Reads: layers 2..8 and the output."""
    spec = hcdsl.parse(MHA)
    base = spec.model_copy(update={"connection": ConnectionSpec(kind="residual")})
    assert count_params(spec) - count_params(base) == LAYERS * 2 * DIM
    assert hcdsl.stats(MHA).extra_params == LAYERS * 2 * DIM
    assert count_params(spec) == sum(p.numel() for p in hcdsl.compile(MHA).parameters())


# -- DeepCrossAttention ------------------------------------------------------------------------
def grn(coef: torch.nn.Module, norm: torch.nn.Module, G: torch.Tensor) -> list[torch.Tensor]:
    """GRN-v3 (arXiv 2502.06785), one output per column of w:
    out_c = sum_j (b_{j,c} + ReLU(w_c · RMSNorm(g_j))) ⊙ g_j."""
    N = rms(G, norm.weight)  # (B, T, S, D)
    outs = []
    for c in range(coef.w1.shape[1]):
        weight = coef.static[:, c, :] + F.relu(N @ coef.w1[:, c]).unsqueeze(-1)  # (B,T,S,D)
        outs.append((weight * G).sum(2))
    return outs


def dca_by_hand(m: torch.nn.Module, toks: torch.Tensor) -> torch.Tensor:
    """G = [g_0 = embedding]; per block i: q, k, v = GRN-v3(G); a = Attn(N_q(q), N_k(k),
    N_v(v)); f = FFN(N(a + q)); G gains a + f. Output: head(N(GRN-v3(G)))."""
    mod = lambda name: getattr(m, name)  # noqa: E731
    G = [mod("embed")(toks)]
    for i in range(BLOCKS):
        q, k, v = grn(mod(f"A{i}_coef"), mod(f"A{i}_key_norm"), torch.stack(G, dim=2))
        la, lf = 2 * i + 1, 2 * i + 2
        a = mod(f"L{la}_attn")(mod(f"L{la}_norm_q")(q), mod(f"L{la}_norm_k")(k),
                               mod(f"L{la}_norm_v")(v))
        f = mod(f"L{lf}_ffn")(mod(f"L{lf}_norm")(a + q))
        G.append(a + f)
    (out,) = grn(mod(f"A{BLOCKS}_coef"), mod(f"A{BLOCKS}_key_norm"), torch.stack(G, dim=2))
    return mod("head")(mod("final_norm")(out))


def test_dca_matches_the_equation() -> None:
    m = hcdsl.compile(DCA, seed=7, dtype=torch.float64)
    perturb(m, seed=8)
    toks = tokens(3)
    with torch.no_grad():
        assert (m(toks) - dca_by_hand(m, toks)).abs().max().item() <= 1e-6


def test_dca_starts_as_the_residual_stream() -> None:
    """b = 1, w = 0 at init: every combination is sum_j g_j, the residual stream, so DCA
    starts as a Pre-Norm Transformer whose attention reads q, k, v through three norms."""
    m = hcdsl.compile(DCA, seed=9, dtype=torch.float64)
    mod = lambda name: getattr(m, name)  # noqa: E731
    toks = tokens(4)
    with torch.no_grad():
        h = mod("embed")(toks)
        for i in range(BLOCKS):
            la, lf = 2 * i + 1, 2 * i + 2
            a = mod(f"L{la}_attn")(mod(f"L{la}_norm_q")(h), mod(f"L{la}_norm_k")(h),
                                   mod(f"L{la}_norm_v")(h))
            h = h + a
            h = h + mod(f"L{lf}_ffn")(mod(f"L{lf}_norm")(h))
        expect = mod("head")(mod("final_norm")(h))
        assert (m(toks) - expect).abs().max().item() <= 1e-10


def test_dca_extra_parameters() -> None:
    """Per GRN-v3 over S entries with C outputs: an RMSNorm scale (D), w (D x C) and b
    (S x C x D). Block i (0-based) reads S = i + 1 entries with C = 3; the output reads
    S = L + 1 with C = 1. The attention's two extra input norms (k, v): 2 D per block.
    `hcdsl stats` (hcdsl.stats) reports the same."""
    spec = hcdsl.parse(DCA)
    base = spec.model_copy(update={"connection": ConnectionSpec(kind="residual")})
    grns = sum(DIM + 3 * DIM + (i + 1) * 3 * DIM for i in range(BLOCKS))
    grns += DIM + DIM + (BLOCKS + 1) * DIM
    assert count_params(spec) - count_params(base) == grns + BLOCKS * 2 * DIM
    assert hcdsl.stats(DCA).extra_params == grns + BLOCKS * 2 * DIM
    assert count_params(spec) == sum(p.numel() for p in hcdsl.compile(DCA).parameters())


# -- both families: backends and training ---------------------------------------------------
@pytest.mark.parametrize("path", [MHA, DCA], ids=lambda p: p.stem)
def test_fx_equals_reference_with_every_gradient(path: Path) -> None:
    fx_model = hcdsl.compile(path, seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(path, backend="reference", seed=1)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(5), nonzero=True)


@pytest.mark.parametrize("path", [MHA, DCA], ids=lambda p: p.stem)
def test_trains(path: Path) -> None:
    torch.manual_seed(0)
    m = hcdsl.compile(path, seed=0)
    losses = train_losses(m, tokens(6, (4, 16)), VOCAB)
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("path", [MHA, DCA], ids=lambda p: p.stem)
def test_spec_round_trips_through_the_printer(path: Path) -> None:
    from hcdsl.frontend.printer import format_model

    spec = hcdsl.parse(path)
    printed = format_model(spec)
    assert "generator {" in printed and "proj = " in printed
    assert hcdsl.parse(printed).model_dump() == spec.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed


@pytest.mark.slow
@pytest.mark.parametrize("path", [MHA, DCA], ids=lambda p: p.stem)
def test_torch_compile_fullgraph_one_graph(path: Path) -> None:
    """Channel-group weights (a per-group softmax, a per-channel b) trace as one graph."""
    from helpers import assert_one_graph

    m = hcdsl.compile(path, seed=0)
    perturb(m, seed=9)
    assert_one_graph(m, tokens(5, (2, 8)))
