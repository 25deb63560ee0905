"""Vector params (`param g = vector(init=1, bound=double)`): one learned weight per channel,
standing alone in a matrix entry of a connection block. The output equals the step written
per channel in plain torch (float64, random parameters); they are counted once per layer
(once per model when tied, once per layer when used twice in it); the prover takes a vector
at its init as that scalar and otherwise as an opaque linear map."""

from __future__ import annotations

import textwrap

import pytest
import torch

from custom_helpers import n_params, randomise, tokens
from helpers import assert_same, attn_ffn, model_text
import hcdsl
from hcdsl.counts import stats
from hcdsl.frontend.printer import format_model

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, VOCAB, LAYERS = 32, 64, 4


def spec(connection: str) -> str:
    body = model_text("c", dim=DIM, vocab=VOCAB, layers=attn_ffn(4, "mlp(hidden=64)"))
    return textwrap.dedent(connection).lstrip("\n") + "\n" + body


# x' = g ⊙ f(Norm(r ⊙ x)) + h ⊙ x, g ∈ (0, 2), h ∈ (0, 1) tied across layers
GAINS = spec("""
    connection c {
      param g = vector(init=1, bound=double)
      param r = vector(init=1)
      param h = vector(init=0.5, bound=unit, tied=true)
      all = [[0, g], [r, h]]
    }
""")
# two streams, a vector used twice in a layer (read and keep stream 1) with scalars around it
TWO = spec("""
    connection c {
      streams = 2
      param a = vector(init=1)
      param s = scalar(init=0.5, bound=unit)
      readout = [1, 1]
      all = [[0, 1, s], [a, a, 0], [0.5, 0, 1]]
    }
""")
# per-channel convex mixes: x' = g ⊙ f(Norm(x)) + (1 - g) ⊙ x, and a softmax per channel over
# two entries, a / (a + b) with exp-bounded vectors
CONVEX = spec("""
    connection c {
      param g = vector(init=0.5, bound=unit)
      all = [[0, g], [1, 1 - g]]
    }
""")
SOFTMAX = spec("""
    connection c {
      param a = vector(init=1, bound=exp)
      param b = vector(init=1, bound=exp)
      all = [[0, a / (a + b)], [1, b / (a + b)]]
    }
""")
PRE = model_text("residual", dim=DIM, vocab=VOCAB, layers=attn_ffn(4, "mlp(hidden=64)"))


def layer(m: torch.nn.Module, k: int, x: torch.Tensor) -> torch.Tensor:
    h = getattr(m, f"L{k}_norm")(x)
    return m.L1_attn(h, h, h) if k == 1 else (
        getattr(m, f"L{k}_attn")(h, h, h) if k % 2 else getattr(m, f"L{k}_ffn")(h))


def model64(text: str) -> torch.nn.Module:
    m = hcdsl.compile(text, seed=0).double()
    randomise(m, 5)
    return m


def test_gains_equal_the_step_per_channel() -> None:
    m = model64(GAINS)
    toks = tokens(vocab=VOCAB)
    with torch.no_grad():
        h = torch.sigmoid(m.L1_vwrite1_1_gain.raw_h)  # the tied vector, held by layer 1
        assert h.std() > 1e-3  # moved off its uniform init, channel by channel
        x = m.embed(toks)
        for k in range(1, LAYERS + 1):
            g = 2 * torch.sigmoid(getattr(m, f"L{k}_vwrite0_1_gain").raw_g)
            r = getattr(m, f"L{k}_vread1_gain").raw_r
            x = g * layer(m, k, r * x) + h * x
        diff = (m(toks) - m.head(m.final_norm(x))).abs().max().item()
    assert diff <= 1e-6, diff


def test_a_vector_twice_in_a_layer_is_one_vector() -> None:
    m = model64(TWO)
    toks = tokens(vocab=VOCAB)
    with torch.no_grad():
        x1 = x2 = m.embed(toks)
        for k in range(1, LAYERS + 1):
            a = getattr(m, f"L{k}_vread1_gain").raw_a
            s = torch.sigmoid(getattr(m, f"L{k}_coef").raw_s)
            o = layer(m, k, a * x1 + 0.5 * x2)
            x1, x2 = o + a * x1, s * o + x2
        diff = (m(toks) - m.head(m.final_norm(x1 + x2))).abs().max().item()
    assert diff <= 1e-6, diff


def test_arithmetic_over_vectors_is_per_channel() -> None:
    for text in (CONVEX, SOFTMAX):
        m = model64(text)
        toks = tokens(vocab=VOCAB)
        with torch.no_grad():
            x = m.embed(toks)
            for k in range(1, LAYERS + 1):
                if text is CONVEX:
                    g = torch.sigmoid(getattr(m, f"L{k}_vwrite0_1_gain").raw_g)
                    keep = 1 - g
                else:  # softmax over the two entries, channel by channel
                    gain = getattr(m, f"L{k}_vwrite0_1_gain")
                    g, keep = torch.softmax(torch.stack([gain.raw_a, gain.raw_b]), dim=0)
                assert g.std() > 1e-3
                x = g * layer(m, k, x) + keep * x
            diff = (m(toks) - m.head(m.final_norm(x))).abs().max().item()
        assert diff <= 1e-6, diff


@pytest.mark.parametrize("text, extra", [
    (CONVEX, LAYERS * DIM),  # g once per layer, in two entries
    (SOFTMAX, 2 * LAYERS * DIM),
    (GAINS, 2 * LAYERS * DIM + DIM),  # g, r per layer; h once (tied)
    (TWO, LAYERS * (DIM + 1)),  # a once per layer although used twice; s per layer
])
def test_counts(text: str, extra: int) -> None:
    got = n_params(hcdsl.compile(text, seed=0)) - n_params(hcdsl.compile(PRE, seed=0))
    assert got == extra
    assert stats(text).extra_params == extra


def test_tied_vector_is_one_parameter_with_the_summed_gradient() -> None:
    m = hcdsl.compile(GAINS, seed=0)
    names = [n for n, _ in m.named_parameters() if n.endswith("raw_h")]
    assert names == ["L1_vwrite1_1_gain.raw_h"]
    m(tokens(vocab=VOCAB)).sum().backward()
    assert m.L1_vwrite1_1_gain.raw_h.grad.abs().sum() > 0


@pytest.mark.parametrize("text", [GAINS, TWO, CONVEX, SOFTMAX])
def test_fx_equals_reference(text: str) -> None:
    fx_model = hcdsl.compile(text, seed=0)
    randomise(fx_model, 3)
    ref = hcdsl.compile(text, backend="reference", seed=1)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(vocab=VOCAB), nonzero=True)


@pytest.mark.parametrize("text", [GAINS, TWO, CONVEX, SOFTMAX])
def test_prints_back(text: str) -> None:
    parsed = hcdsl.parse(text)
    assert "vector(init=" in format_model(parsed)
    assert hcdsl.parse(format_model(parsed)) == parsed


def test_stats_show_a_vector_at_its_init() -> None:
    (_, step), = stats(GAINS).matrix_groups()
    assert step.matrix == ((0.0, 1.0), (1.0, 0.5)) and step.learn


def test_prover_takes_a_vector_at_init_as_its_scalar_and_otherwise_as_opaque() -> None:
    ones = GAINS.replace("param h = vector(init=0.5, bound=unit, tied=true)",
                         "param h = vector(init=1, tied=true)")
    at_init = hcdsl.prove(ones, PRE, at_init=True)
    assert at_init.verdict == "EQUIVALENT", at_init
    trained = hcdsl.prove(ones, PRE, witness=False)
    assert trained.verdict != "EQUIVALENT", trained
    assert hcdsl.prove(ones, ones).verdict == "EQUIVALENT"
    half = hcdsl.prove(GAINS, PRE, at_init=True, witness=False)
    assert half.verdict == "NOT EQUIVALENT", half


def test_prover_on_arithmetic_over_vectors() -> None:
    """A per-channel convex mix equals the scalar one at init (every channel 1/2), not as
    learned (a vector is not a scalar); equal entries over the same vectors are one map."""
    scalar = CONVEX.replace("vector(init=0.5, bound=unit)", "scalar(init=0.5, bound=unit)")
    assert hcdsl.prove(CONVEX, scalar, at_init=True).verdict == "EQUIVALENT"
    assert hcdsl.prove(CONVEX, scalar).verdict == "NOT EQUIVALENT"
    assert hcdsl.prove(CONVEX, CONVEX).verdict == "EQUIVALENT"
    assert hcdsl.prove(SOFTMAX, SOFTMAX).verdict == "EQUIVALENT"


def test_vectors_are_static_connection_parameters() -> None:
    """Like the scalars of a connection: no weight decay, in the static connections' group."""
    from hcdsl.nn.groups import STATIC, classify

    groups = classify(hcdsl.compile(GAINS, seed=0))
    vectors = {name: g for name, g in groups.items() if "_gain.raw_" in name}
    assert len(vectors) == 2 * LAYERS + 1 and set(vectors.values()) == {STATIC}
