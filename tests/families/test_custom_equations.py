"""User-defined connections: each method of specs/custom/ equals its paper's equation,
recomputed here with plain torch and the compiled module's own layers; the history
connections are the presets' IRs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import attn_ffn, model_text
from custom_helpers import (
    DIM, LAYERS, path, text, tokens, random_model, pre_norm_text, assert_fx_equals_reference,
    layer_of, run, logits, LEARNED_VRES, model,
)
import hcdsl
from hcdsl.ir.dump import dump
from hcdsl.nn.layers import rotate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_laurel_rw_equation(random: bool) -> None:
    """x' = 2σ(a) f(Norm(x)) + 2σ(b) x, with a, b the raw TemplateCoef parameters."""
    m = random_model(path("laurel_rw")) if random else hcdsl.compile(path("laurel_rw"))
    toks = tokens()
    with torch.no_grad():
        x = m.embed(toks)
        for k in range(1, LAYERS + 1):
            coef = getattr(m, f"L{k}_coef")
            alpha, beta = 2 * torch.sigmoid(coef.raw_alpha), 2 * torch.sigmoid(coef.raw_beta)
            if random:
                assert abs(alpha.item() - 1) > 1e-3 and abs(beta.item() - 1) > 1e-3
            layer, is_attn = layer_of(m, k)
            x = alpha * run(layer, is_attn, getattr(m, f"L{k}_norm")(x)) + beta * x
        want = logits(m, x)
        assert (m(toks) - want).abs().max().item() <= 1e-5


@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_laurel_lr_equation(random: bool) -> None:
    """x' = f(Norm(x)) + x + B A x, A = L{k}_lowrank.down (r x d), B = .up (d x r)."""
    m = random_model(path("laurel_lr")) if random else hcdsl.compile(path("laurel_lr"))
    toks = tokens()
    with torch.no_grad():
        x = m.embed(toks)
        for k in range(1, LAYERS + 1):
            low = getattr(m, f"L{k}_lowrank")
            assert low.down.shape == (8, DIM) and low.up.shape == (DIM, 8)
            layer, is_attn = layer_of(m, k)
            x = run(layer, is_attn, getattr(m, f"L{k}_norm")(x)) + x + x @ low.down.T @ low.up.T
        assert (m(toks) - logits(m, x)).abs().max().item() <= 1e-5


def attention_by_hand(att: torch.nn.Module, x: torch.Tensor, v_first: torch.Tensor | None,
                      lam: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention from the module's projections; V <- λ1 V_1 + λ2 V when V_1 given.
    Returns the output and the layer's own (unmixed) values."""
    B, T, d = x.shape
    heads = att.heads
    split = lambda t: t.view(B, T, heads, d // heads).transpose(1, 2)  # noqa: E731
    own = att.v_proj(x)
    values = own if v_first is None else lam[0] * v_first + lam[1] * own
    q, k = rotate(split(att.q_proj(x))), rotate(split(att.k_proj(x)))
    y = F.scaled_dot_product_attention(q, k, split(values), is_causal=True)
    return att.out_proj(y.transpose(1, 2).reshape(B, T, d)), own


def value_residual_by_hand(m: torch.nn.Module, toks: torch.Tensor,
                           lam_of: dict[int, tuple[float, float]]) -> torch.Tensor:
    """Pre-Norm; attention layers after the first mix in layer 1's values V_1."""
    x, v_first = m.embed(toks), None
    for k in range(1, LAYERS + 1):
        layer, is_attn = layer_of(m, k)
        h = getattr(m, f"L{k}_norm")(x)
        if is_attn:
            o, own = attention_by_hand(layer, h, v_first, lam_of.get(k, (0.0, 1.0)))
            v_first = own if v_first is None else v_first
        else:
            o = layer(h)
        x = x + o
    return logits(m, x)


def test_value_residual_equation_with_random_parameters() -> None:
    """V_3 <- 0.5 V_1 + 0.5 V_3 (fixed λ, as in ResFormer); attention recomputed by hand."""
    m = random_model(path("value_residual"))
    assert m.L1_attn.rope
    toks = tokens()
    with torch.no_grad():
        want = value_residual_by_hand(m, toks, {3: (0.5, 0.5)})
        assert (m(toks) - want).abs().max().item() <= 1e-5
        # the mix matters: without it the output is different
        plain = value_residual_by_hand(m, toks, {})
        assert (m(toks) - plain).abs().max().item() > 1e-3






def test_value_residual_learned_lambda_equation_and_init() -> None:
    """No identity at init (V_n is half V_1); what holds instead: learned λ with
    `param l1 = 0.5` starts as the fixed 0.5/0.5 model exactly, and with random λ the output
    is the equation with λ1 = l1 (no bound), λ2 = σ(l2) (unit bound)."""
    fixed = hcdsl.compile(path("value_residual"))
    learned = hcdsl.compile(LEARNED_VRES)
    missing, unexpected = learned.load_state_dict(fixed.state_dict(), strict=False)
    # only the mix differs: a constant buffer there, learned scalars here
    assert {"L3_vmix.raw_l1", "L3_vmix.raw_l2"} <= set(missing)
    assert all(k.startswith("L3_vmix.") for k in [*missing, *unexpected])
    toks = tokens()
    with torch.no_grad():
        assert (learned(toks) - fixed(toks)).abs().max().item() <= 1e-6
    m = random_model(LEARNED_VRES)
    with torch.no_grad():
        lam = (m.L3_vmix.raw_l1.item(), torch.sigmoid(m.L3_vmix.raw_l2).item())
        assert abs(lam[0] - 0.5) > 1e-3 and abs(lam[1] - 0.5) > 1e-3
        want = value_residual_by_hand(m, toks, {3: lam})
        assert (m(toks) - want).abs().max().item() <= 1e-5
    assert_fx_equals_reference(LEARNED_VRES)


def test_value_residual_zero_one_is_pre_norm() -> None:
    """λ = (0, 1) switches the value residual off: exactly Pre-Norm."""
    src = text("value_residual").replace("[0.5, 0.5]", "[0, 1]")
    m = hcdsl.compile(src)
    pre = hcdsl.compile(pre_norm_text(src))
    assert not m.load_state_dict(pre.state_dict(), strict=False).unexpected_keys
    with torch.no_grad():
        assert (m(tokens()) - pre(tokens())).abs().max().item() <= 1e-6


@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_residual_dual_equation(random: bool) -> None:
    """ResiDual has no identity at init (x is Post-LN, the output adds LN(d)).
    o = F(x); x <- LN_k(x + o); d <- d + o; out = x + LN(d), then the head's final norm."""
    name = "residual_dual"
    m = random_model(path(name)) if random else hcdsl.compile(path(name))
    toks = tokens()
    with torch.no_grad():
        x = d = m.embed(toks)
        for k in range(1, LAYERS + 1):
            layer, is_attn = layer_of(m, k)
            o = run(layer, is_attn, x)  # no pre-norm: F reads x itself
            x = getattr(m, f"L{k}_post").norm(x + o)
            d = d + o
        out = x + m.readout_norm.norm(d)
        assert (m(toks) - logits(m, out)).abs().max().item() <= 1e-5


def attnres_model(connect: str, connection: str = "") -> str:
    return model_text(connect, name="tiny_attention_residuals", dim=64, vocab=256,
                      layers=attn_ffn(4, "mlp(hidden=256)"), prelude=connection)


def ir_text(spec) -> str:
    return dump(hcdsl.lower(spec)).split("\n", 1)[1]


def test_attention_residuals_is_the_attnres_ir() -> None:
    """The same IR as `connect attnres` (after the dump's first line, which names the model)."""
    assert ir_text(path("attention_residuals")) == ir_text(attnres_model("attnres"))


@pytest.mark.parametrize("settings, preset", [
    ("weights = softmax\n  granularity = block", "attnres(granularity=block)"),
    ("weights = static", "denseformer"),
])
def test_history_connections_are_the_presets_irs(settings: str, preset: str) -> None:
    """Block AttnRes and DenseFormer written as history connections: the presets' IRs."""
    conn = f"connection hist {{\n  state = history\n  {settings}\n}}\n"
    assert ir_text(attnres_model("hist", conn)) == ir_text(attnres_model(preset))


def test_attention_residuals_uniform_at_init() -> None:
    """No identity at init: the pseudo-queries are 0, so every layer after the first reads
    the plain mean of the history (uniform softmax weights)."""
    m = hcdsl.compile(path("attention_residuals"))
    toks = tokens()
    with torch.no_grad():
        v = [m.embed(toks)]
        h = v[0]
        for k in range(1, LAYERS + 2):
            if k > 1:
                coef = getattr(m, f"A{k - 1}_coef")
                assert coef.query.eq(0).all()
                h = torch.stack(v).mean(0)
            if k == LAYERS + 1:
                break
            layer, is_attn = layer_of(m, k)
            v.append(run(layer, is_attn, getattr(m, f"L{k}_norm")(h)))
        assert (m(toks) - logits(m, h)).abs().max().item() <= 1e-5
