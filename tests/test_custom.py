"""User-defined connections: `connection NAME { ... }` blocks written with the primitives alone.

The five methods of specs/custom/ (LAuReL-RW, LAuReL-LR, value residual, ResiDual, attention
residuals) and one brand-new scheme written here: each parses, prints back to the same spec,
runs the same on both backends with random parameters, and equals its paper's equation
recomputed here with plain torch and the compiled module's own layers. Identity at init where
the method has one; parameter counts; every mistake a user can make in a connection block.
See docs/families/custom.md.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_same, perturb
import hcdsl
from hcdsl.errors import HcError
from hcdsl.frontend.printer import format_model
from hcdsl.ir.dump import dump
from hcdsl.nn.layers import rotate

CUSTOM = Path(__file__).resolve().parents[1] / "specs" / "custom"
SPECS = ["laurel_rw", "laurel_lr", "value_residual", "residual_dual", "attention_residuals"]
VOCAB, DIM, LAYERS = 256, 64, 4  # every spec in specs/custom/: repeat 2 [attn, ffn]

pytestmark = pytest.mark.usefixtures("one_thread")


def path(name: str) -> Path:
    return CUSTOM / f"{name}.hc"


def text(name: str) -> str:
    return path(name).read_text()


def randomise(model: torch.nn.Module, seed: int) -> None:
    """0.3 on the constant parameters (learned scalars, B = 0, norm scales, queries), so every
    coefficient moves well away from its init."""
    perturb(model, seed, const=0.3)


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 9), vocab: int = VOCAB) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def random_model(spec, seed: int = 3) -> torch.nn.Module:
    m = hcdsl.compile(spec, seed=0)
    randomise(m, seed)
    return m


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def pre_norm_text(spec_text: str) -> str:
    """The same model without its connection: Pre-Norm residual."""
    model = spec_text[spec_text.index("\nmodel ") + 1:]
    return "\n".join(ln for ln in model.splitlines() if not ln.strip().startswith("connect "))


def assert_fx_equals_reference(spec, seed: int = 3) -> None:
    fx_model = random_model(spec, seed)
    ref = hcdsl.compile(spec, backend="reference", seed=1)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(), nonzero=True)


# -- every spec: parse, round-trip, fx == reference ------------------------------------------

@pytest.mark.parametrize("name", SPECS)
def test_spec_parses_and_round_trips(name: str) -> None:
    spec = hcdsl.parse(path(name))
    assert spec.connection.kind == "custom"
    assert dict(spec.connection.options)["name"] == name
    printed = format_model(spec)
    assert printed.startswith(f"connection {name} {{")
    assert hcdsl.parse(printed).model_dump() == spec.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed  # the canonical text is a fixed point


@pytest.mark.parametrize("name", SPECS)
def test_fx_equals_reference_with_random_parameters_and_every_gradient(name: str) -> None:
    assert_fx_equals_reference(path(name))


# -- each method's equation, recomputed with plain torch and the module's own layers --------

def layer_of(m: torch.nn.Module, k: int) -> tuple[torch.nn.Module, bool]:
    """Layer k (1-based) of `repeat 2 [attn, ffn]`, and whether it is attention."""
    return (getattr(m, f"L{k}_attn"), True) if k % 2 else (getattr(m, f"L{k}_ffn"), False)


def run(layer: torch.nn.Module, is_attn: bool, x: torch.Tensor) -> torch.Tensor:
    return layer(x, x, x) if is_attn else layer(x)


def logits(m: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    return m.head(m.final_norm(h))


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


LEARNED_VRES = text("value_residual").replace(
    "  value_residual = [0.5, 0.5]",
    "  param l1 = 0.5\n  param l2 = scalar(init=0.5, bound=unit)\n  value_residual = [l1, l2]")


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
    return connection + textwrap.dedent(f"""
        model tiny_attention_residuals {{
          dim = 64
          vocab = 256
          layer attn = attention(heads=4)
          layer ffn = mlp(hidden=256)
          body = repeat 2 [attn, ffn]
          connect {connect}
        }}
    """)


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


# -- identity at init --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["laurel_rw", "laurel_lr"])
def test_laurel_equals_pre_norm_at_init(name: str) -> None:
    """α = β = 2σ(0) = 1 (RW) and B = 0 (LR): exactly Pre-Norm. The shared weights are copied
    from a Pre-Norm compile by name; the only extra ones are the connection's."""
    m = hcdsl.compile(path(name), seed=0)
    pre = hcdsl.compile(pre_norm_text(text(name)), seed=5)
    missing, unexpected = m.load_state_dict(pre.state_dict(), strict=False)
    assert not unexpected
    extra = "_coef." if name == "laurel_rw" else "_lowrank."
    assert missing and all(extra in k for k in missing), missing
    toks = tokens()
    with torch.no_grad():
        assert (m(toks) - pre(toks)).abs().max().item() <= 1e-6


# -- parameter counts --------------------------------------------------------------------------

def test_parameter_counts() -> None:
    """RW: 2 per layer; LR: 2 d r per layer; value residual: 0 with fixed λ, 2 per attention
    layer after the first with learned λ."""
    base = n_params(hcdsl.compile(pre_norm_text(text("laurel_rw"))))
    count = lambda spec: n_params(hcdsl.compile(spec)) - base  # noqa: E731
    assert count(path("laurel_rw")) == 2 * LAYERS
    assert count(path("laurel_lr")) == 2 * DIM * 8 * LAYERS
    assert count(path("value_residual")) == 0
    assert count(LEARNED_VRES) == 2  # one attention layer after the first
    three = LEARNED_VRES.replace("repeat 2", "repeat 3")
    assert n_params(hcdsl.compile(three)) - n_params(
        hcdsl.compile(pre_norm_text(three))) == 2 * 2
    # ResiDual: a post-LN per layer instead of a pre-LN, plus LN(d): one more LayerNorm
    assert count(path("residual_dual")) == 2 * DIM
    # attention residuals: a query and an RMSNorm scale per aggregate after the first layer
    assert count(path("attention_residuals")) == 2 * DIM * LAYERS


# -- a brand-new scheme, written here --------------------------------------------------------

DUAL_MIX = textwrap.dedent("""
    # "dual residual": stream 1 is the Pre-Norm residual; stream 2 a slow stream that takes a
    # learned share g in (0, 1) of every output and keeps itself with a learned decay `keep`
    # in (0, 2). Odd layers read stream 1, even layers a learned mix of both; the readout is
    # the mean. Every layer has its own g and keep (and mix).
    connection dual_mix {
      streams = 2
      param g = scalar(init=0.25, bound=unit)
      param keep = scalar(init=1, bound=double)
      param mix = 0.5
      init = [1, 0.5]
      readout = [0.5, 0.5]
      odd = [[0, 1, g], [1, 1, 0], [0, 0, keep]]
      even = [[0, 1, g], [mix, 1, 0], [mix, 0, keep]]
    }

    model dual {
      dim = 32
      vocab = 256
      norm = rmsnorm
      layer attn = attention(heads=4)
      layer ffn = mlp(hidden=64, act=swiglu)
      body = repeat 2 [attn, ffn]
      connect dual_mix
    }
""")


def test_a_new_scheme_compiles_round_trips_and_matches_its_equation() -> None:
    """A scheme no paper has: per layer, with M = L{k}_coef() (3x3), the layer reads
    Norm(M[1,0] H_1 + M[2,0] H_2), and H'_s = M[0,s] o + sum_t M[t,s] H_t."""
    spec = hcdsl.parse(DUAL_MIX)
    assert hcdsl.parse(format_model(spec)).model_dump() == spec.model_dump()
    assert_fx_equals_reference(DUAL_MIX)
    m = random_model(DUAL_MIX)
    assert n_params(m) - n_params(hcdsl.compile(pre_norm_text(DUAL_MIX))) == 2 * 2 + 2 * 3
    toks = tokens()
    with torch.no_grad():
        e = m.embed(toks)
        H = [e, 0.5 * e]
        for k in range(1, LAYERS + 1):
            M = getattr(m, f"L{k}_coef")()
            assert M.shape == (3, 3)
            if k % 2 == 0:  # the even matrix: `mix` is learned, and moved away from 0.5
                assert abs(M[1, 0].item() - 0.5) > 1e-3 and M[1, 0] == M[2, 0]
            layer, is_attn = layer_of(m, k)
            o = run(layer, is_attn, getattr(m, f"L{k}_norm")(M[1, 0] * H[0] + M[2, 0] * H[1]))
            H = [M[0, s] * o + M[1, s] * H[0] + M[2, s] * H[1] for s in (1, 2)]
        assert (m(toks) - logits(m, 0.5 * H[0] + 0.5 * H[1])).abs().max().item() <= 1e-5


def test_torch_compile_fullgraph_on_a_learned_template() -> None:
    """One small torch.compile: named learned scalars and a value residual in one graph."""
    src = LEARNED_VRES.replace("value_residual = [l1, l2]", "value_residual = [l1, l2]\n"
                               "  param a = scalar(init=1, bound=double)").replace(
        "all = [[0, 1], [1, 1]]", "all = [[0, a], [1, 1]]")
    m = random_model(src)
    toks = tokens()
    compiled = torch.compile(m, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert (compiled(toks) - m(toks)).abs().max().item() <= 1e-5


# -- errors: file:line:col, caret, message, hint ----------------------------------------------

MODEL = """
model m {
  dim = 32
  vocab = 64
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect CONNECT
}
"""


def source(connections: str, connect: str = "c") -> str:
    return textwrap.dedent(connections).lstrip("\n") + MODEL.replace("CONNECT", connect)


def at(src: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line:col of the nth occurrence of needle in src."""
    pos = -1
    for _ in range(nth + 1):
        pos = src.index(needle, pos + 1)
    return src.count("\n", 0, pos) + 1, pos - (src.rfind("\n", 0, pos) + 1) + 1


def error(src: str) -> str:
    """The one diagnostic of src, rendered (several would be a cascade)."""
    with pytest.raises(HcError) as info:
        hcdsl.parse(src)
    err = info.value
    assert len(err.diagnostics) == 1, str(err)
    rendered = err.diagnostics[0].render(err.filename, err.source)
    assert "Traceback" not in rendered
    return rendered


def check(src: str, where: tuple[int, int], message: str, hint: str) -> None:
    rendered = error(src)
    lines = rendered.splitlines()
    assert lines[0].startswith(f"<spec>:{where[0]}:{where[1]}: error: {message}"), rendered
    caret = lines[2]
    assert caret.index("^") - caret.index("|") - 2 == where[1] - 1, rendered
    assert lines[-1].startswith("  hint: ") and hint in lines[-1], rendered


def test_error_undeclared_name_in_a_matrix() -> None:
    src = source("""
        connection c {
          all = [[0, alpha], [1, 1]]
        }
    """)
    check(src, at(src, "alpha"), "matrix entry (1, 2) is neither a number nor a declared "
          "param: 'alpha'", "declare it in the connection: param alpha = 1")


def test_error_matrix_size_for_streams() -> None:
    src = source("""
        connection c {
          streams = 2
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "[[0, 1]"), "connection 'c': expected a 3x3 matrix for streams=2",
          "a list of rows")


def test_error_unknown_setting() -> None:
    src = source("""
        connection c {
          stream = 2
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "stream ="), "unknown setting 'stream' in connection 'c'",
          "settings are: granularity, init, lowrank")


def test_error_duplicate_param() -> None:
    src = source("""
        connection c {
          param a = 1
          param a = 2
          all = [[0, a], [1, 1]]
        }
    """)
    check(src, at(src, "a = 2"), "duplicate param 'a' in connection 'c'", "its own name")


def test_error_bad_bound() -> None:
    src = source("""
        connection c {
          param a = scalar(init=1, bound=positive)
          all = [[0, a], [1, 1]]
        }
    """)
    check(src, at(src, "scalar("), "param 'a': unknown bound 'positive'",
          "bounds: none (any value), unit (sigmoid, 0..1), double (2 sigmoid, 0..2)")


@pytest.mark.parametrize("bound, init", [("unit", "1"), ("unit", "-0.5"), ("double", "2")])
def test_error_init_outside_the_bound(bound: str, init: str) -> None:
    src = source(f"""
        connection c {{
          param a = scalar(init={init}, bound={bound})
          all = [[0, a], [1, 1]]
        }}
    """)
    hi = {"unit": "1.0", "double": "2.0"}[bound]
    check(src, at(src, "scalar("), f"param 'a': init {float(init):g} is outside the open "
          f"range (0.0, {hi}) of bound={bound}", "choose an init strictly between them")


@pytest.mark.parametrize("key, value", [("init", "[1]"), ("readout", "[1, 1, 1]")])
def test_error_weights_per_stream(key: str, value: str) -> None:
    src = source(f"""
        connection c {{
          streams = 2
          {key} = {value}
          all = [[0, 1, 1], [1, 1, 0], [0, 0, 1]]
        }}
    """)
    got = value.count(",") + 1
    check(src, at(src, f"{key} ="), f"connection 'c': '{key}' needs one weight per stream "
          f"(2), got {got}", f"{key} = [1, 1]")


@pytest.mark.parametrize("key, stream", [("post_streams", 3), ("readout_norm", 0)])
def test_error_stream_index_out_of_range(key: str, stream: int) -> None:
    src = source(f"""
        connection c {{
          streams = 2
          post = norm
          {key} = [1, {stream}]
          all = [[0, 1, 1], [1, 1, 0], [0, 0, 1]]
        }}
    """)
    check(src, at(src, f"{key} ="), f"connection 'c': '{key}' names stream {stream}; "
          "streams are 1..2", "numbered from 1")


def test_error_options_on_a_user_defined_connection() -> None:
    src = source("""
        connection c {
          all = [[0, 1], [1, 1]]
        }
    """, connect="c(x=1)")
    check(src, at(src, "c(x=1)"), "connection 'c' is defined in this file and takes no "
          "options or matrices here", "set them inside `connection c { ... }`")


def test_error_connection_named_like_a_preset() -> None:
    src = source("""
        connection hyper {
          all = [[0, 1], [1, 1]]
        }
    """, connect="hyper(n=1)")
    check(src, at(src, "hyper {"), "connection 'hyper' has the name of a built-in preset",
          "choose another name")


def test_error_duplicate_connection() -> None:
    src = source("""
        connection c {
          all = [[0, 1], [1, 1]]
        }
        connection c {
          all = [[0, 2], [1, 1]]
        }
    """)
    check(src, at(src, "c {", 1), "duplicate connection 'c'", "its own name")


def test_error_the_internal_preset_is_not_nameable() -> None:
    src = source("", connect="custom")
    rendered = error(src)
    assert rendered.splitlines()[0] == \
        f"<spec>:{at(src, 'custom')[0]}:{at(src, 'custom')[1]}: error: unknown connection " \
        "'custom'"
    hint = rendered.splitlines()[-1]
    assert hint.startswith("  hint: ") and "hyper" in hint and "custom" not in hint


def test_error_missing_matrices_reported_at_the_connect_line() -> None:
    src = source("""
        connection c {
          layers 1..2 = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "connect c"), "connection 'c' gives no matrix for layer(s) [3, 4]",
          "add a rule such as `all = [[0, 1], [1, 1]]`")


def test_error_value_residual_names_an_undeclared_param() -> None:
    src = source("""
        connection c {
          param l2 = 0.5
          value_residual = [l1, l2]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "value_residual"), "connection 'c': value_residual names 'l1', which "
          "is not a declared param", "declare it: param l1 = 0.5")


def test_error_value_residual_needs_two_entries() -> None:
    src = source("""
        connection c {
          value_residual = [0.5]
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "value_residual"), "connection 'c': 'value_residual' needs two "
          "entries [λ1, λ2] (V <- λ1 V_first + λ2 V), got 1", "[0.5, 0.5]")


def test_error_value_residual_without_a_second_attention_layer() -> None:
    src = source("""
        connection c {
          value_residual = [0.5, 0.5]
          all = [[0, 1], [1, 1]]
        }
    """).replace("repeat 2 [attn, ffn]", "[attn, ffn, ffn]")
    check(src, at(src, "connect c"), "connection 'c': value_residual mixes the first "
          "attention layer's values into later ones, but the model has 1 attention layer(s)",
          "drop value_residual")


def test_error_matrices_in_a_history_connection() -> None:
    src = source("""
        connection c {
          state = history
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "all ="), "connection 'c': a history connection takes no matrices",
          "drop the matrices, or drop `state = history`")


def test_error_settings_of_the_other_state() -> None:
    """A setting the chosen state would silently ignore is an error."""
    src = source("""
        connection c {
          state = history
          lowrank = 4
        }
    """)
    check(src, at(src, "lowrank"), "connection 'c': 'lowrank' is a setting of stream state; "
          "a history connection does not read it", "drop `state = history`")
    src = source("""
        connection c {
          weights = softmax
          all = [[0, 1], [1, 1]]
        }
    """)
    check(src, at(src, "weights"), "connection 'c': 'weights' is a setting of history state, "
          "and this connection has stream state", "add `state = history`")


def test_a_bad_param_is_reported_once_not_again_where_it_is_used() -> None:
    """The matrix entry and value_residual naming an invalid param add no second error."""
    src = source("""
        connection c {
          param a = scalar(bound=unit)
          value_residual = [a, 0.5]
          all = [[0, a], [1, 1]]
        }
    """)
    check(src, at(src, "scalar("), "param 'a' needs an initial value",
          "`param NAME = scalar(init=1, bound=double)`")


@pytest.mark.parametrize("name", ["eval", "training", "consts", "forward"])
def test_param_names_that_are_torch_module_attributes(name: str) -> None:
    """Params are stored as `raw_NAME`: a name like `eval` must not clash with nn.Module."""
    src = source(f"""
        connection c {{
          param {name} = scalar(init=0.5, bound=unit)
          all = [[0, 1], [1, {name}]]
        }}
    """)
    m = hcdsl.compile(src)
    assert torch.sigmoid(getattr(m.L1_coef, f"raw_{name}")).item() == pytest.approx(0.5)
    assert m(tokens(shape=(1, 3), vocab=64)).shape == (1, 3, 64)


# -- LAuReL-PA without its low-rank maps: a shift register of previous activations ------------

PA_LITE = textwrap.dedent("""
    # x' = f(Norm(x)) + x + g1 x_prev + g2 x_prev2: streams 1 = x_i, 2 = x_(i-1), 3 = x_(i-2);
    # the residual matrix shifts 1 -> 2 -> 3. g1 = g2 = 0 at init: Pre-Norm.
    connection laurel_pa_lite {
      streams = 3
      param g1 = 0
      param g2 = 0
      init = [1, 0, 0]
      readout = [1, 0, 0]
      all = [[0, 1, 0, 0], [1, 1, 1, 0], [0, g1, 0, 1], [0, g2, 0, 0]]
      # no x_(i-1) before layer 2, no x_(i-2) before layer 3: no gamma there
      layer 1 = [[0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
      layer 2 = [[0, 1, 0, 0], [1, 1, 1, 0], [0, g1, 0, 1], [0, 0, 0, 0]]
    }

    model tiny_pa {
      dim = 64
      vocab = 256
      layer attn = attention(heads=4)
      layer ffn = mlp(hidden=256)
      body = repeat 2 [attn, ffn]
      connect laurel_pa_lite
    }
""")


def test_laurel_pa_without_low_rank_maps_as_a_shift_register() -> None:
    """LAuReL-PA's γ-weighted sum over the two previous activations (without PA's low-rank
    maps h, which the primitives cannot express): Pre-Norm at init, the equation with
    random γ, fx == reference."""
    spec = hcdsl.parse(PA_LITE)
    assert hcdsl.parse(format_model(spec)).model_dump() == spec.model_dump()
    m = hcdsl.compile(PA_LITE)
    pre = hcdsl.compile(pre_norm_text(PA_LITE), seed=4)
    assert not m.load_state_dict(pre.state_dict(), strict=False).unexpected_keys
    toks = tokens()
    with torch.no_grad():
        assert (m(toks) - pre(toks)).abs().max().item() <= 1e-6
    assert_fx_equals_reference(PA_LITE)
    assert n_params(m) - n_params(pre) == 0 + 1 + 2 + 2
    m = random_model(PA_LITE)
    with torch.no_grad():
        x = m.embed(toks)
        prev, prev2 = torch.zeros_like(x), torch.zeros_like(x)
        for k in range(1, LAYERS + 1):
            c = getattr(m, f"L{k}_coef", None)  # layer 1 has no params: constant M
            g1 = c.raw_g1 if k > 1 else 0.0
            g2 = c.raw_g2 if k > 2 else 0.0
            layer, is_attn = layer_of(m, k)
            o = run(layer, is_attn, getattr(m, f"L{k}_norm")(x))
            x, prev, prev2 = o + x + g1 * prev + g2 * prev2, x, prev
        assert (m(toks) - logits(m, x)).abs().max().item() <= 1e-5


# -- the docs' examples parse -----------------------------------------------------------------

def test_every_connection_block_in_the_docs_parses() -> None:
    """Every ``` block of docs/families/custom.md and docs/language.md that defines a
    connection parses (blocks without a model get a small one that connects them)."""
    docs = Path(__file__).resolve().parents[1] / "docs"
    blocks = [b.split("\n", 1)[1] for doc in ("families/custom.md", "language.md")
              for b in (docs / doc).read_text().split("```")[1::2]]
    conns = [b for b in blocks if re.search(r"^connection \w+ {", b, re.M)]
    assert len(conns) >= 8
    for block in conns:
        if not re.search(r"^model ", block, re.M):
            name = re.search(r"^connection (\w+)", block, re.M).group(1)
            block += MODEL.replace("CONNECT", name)
        spec = hcdsl.parse(block)
        assert spec.connection.kind == "custom"


def test_error_in_a_connection_block_the_model_does_not_use() -> None:
    src = source("""
        connection unused {
          all = [[0, undeclared], [1, 1]]
        }
    """, connect="residual")
    check(src, at(src, "undeclared"), "matrix entry (1, 2) is neither a number nor a "
          "declared param: 'undeclared'", "declare it")
