"""User-defined connections no paper has, written here: a brand-new scheme (round trip,
fx == reference, its equation), one torch.compile of a learned template, and LAuReL-PA
without its low-rank maps as a shift register."""

from __future__ import annotations

import textwrap

import pytest
import torch

from custom_helpers import (
    LAYERS, tokens, random_model, n_params, pre_norm_text, assert_fx_equals_reference,
    layer_of, run, logits, LEARNED_VRES, model,
)
import hcdsl
from hcdsl.frontend.printer import format_model

pytestmark = pytest.mark.usefixtures("one_thread")


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
