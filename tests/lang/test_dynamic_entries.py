"""Arithmetic in a connection's matrix entries (`1 - g`, `2 * h - g * h`): it parses into
canonical text, prints back to itself, evaluates to the same matrix on both backends and in
the prover's value at init, and every misuse is a located error with a hint."""

from __future__ import annotations

import textwrap

import pytest
import torch

from helpers import assert_same, attn_ffn, model_text, perturb
import hcdsl
from hcdsl.errors import HcError
from hcdsl.frontend.printer import format_model
from hcdsl.lang.expr import evaluate, parse, render

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = "\n" + model_text("c", dim=32, vocab=64, layers=attn_ffn(4, "mlp(hidden=64)"))
CONVEX = """
connection c {
  streams = 2
  param g = scalar(init=0.25, bound=unit)
  param h = 0.5
  all = [[0, 1, g], [1 - g, 1, 0], [g, 0, 2 * h - g * h]]
  layer 1 = [[0, 1, 0.5 * 2], [1, 1, 0], [0, 0, 1 - 0.25]]
}
"""


def spec(connection: str = CONVEX) -> str:
    return textwrap.dedent(connection).lstrip("\n") + MODEL


def test_entries_are_canonical_text_and_round_trip() -> None:
    parsed = hcdsl.parse(spec())
    matrices = dict(parsed.connection.matrices)
    assert matrices[2][1][0] == "1 - g"
    assert matrices[2][2][2] == "2 * h - g * h"
    assert matrices[1][0][2] == 1.0 and matrices[1][2][2] == 0.75  # numbers only: folded
    printed = format_model(parsed)
    assert "[1 - g, 1.0, 0.0]" in printed
    assert hcdsl.parse(printed).model_dump() == parsed.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed


@pytest.mark.parametrize("text, value", [
    ("1 - g", 0.75), ("2 * h - g * h", 0.875), ("-(g + h)", -0.75), ("1 - (g - h)", 1.25),
    ("(1 - g) * h", 0.375), ("g - h - 1", -1.25), ("2 * -g", -0.5)])
def test_precedence_and_canonical_text(text: str, value: float) -> None:
    env = {"g": 0.25, "h": 0.5}
    assert evaluate(text, env, float) == value  # by hand above
    assert render(parse(text)) == text  # already canonical
    assert parse(render(parse(text))) == parse(text)


def test_module_value_is_the_expression_of_the_learned_scalars() -> None:
    m = hcdsl.compile(spec(), backend="reference", seed=0).double()
    perturb(m, 3, const=0.3)
    coef = m.mod("L3.coef")
    g = torch.sigmoid(coef.raw_g)
    h = coef.raw_h
    got = coef()
    want = torch.stack([torch.stack([torch.tensor(0.0).double(), torch.tensor(1.0).double(), g]),
                        torch.stack([1 - g, torch.tensor(1.0).double(),
                                     torch.tensor(0.0).double()]),
                        torch.stack([g, torch.tensor(0.0).double(), 2 * h - g * h])])
    assert (got - want).abs().max().item() < 1e-12


def test_fx_equals_reference_with_every_gradient() -> None:
    fx_model = hcdsl.compile(spec(), seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(spec(), backend="reference", seed=0)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, torch.randint(0, 64, (2, 7)), nonzero=True)


def test_value_at_init_and_stats() -> None:
    from hcdsl.proofs.at_init import AT_INIT

    ir = hcdsl.compile(spec(), backend="reference", seed=0).ir
    p = ir.payload("L2.coef")
    assert AT_INIT[type(p)](p) == ((0.0, 1.0, 0.25), (0.75, 1.0, 0.0), (0.25, 0.0, 0.875))
    assert p.param_count() == 2


MODEL_HC = MODEL.replace("connect c", "connect hyper(n=1) { all = [[0, 1], [1, 1 - 0.5]] }")


def error(src: str) -> list[str]:
    with pytest.raises(HcError) as info:
        hcdsl.parse(src)
    err = info.value
    assert len(err.diagnostics) == 1, str(err)
    rendered = err.diagnostics[0].render(err.filename, err.source)
    assert "Traceback" not in rendered
    return rendered.splitlines()


def at(src: str, needle: str) -> str:
    pos = src.index(needle)
    return f"<spec>:{src.count(chr(10), 0, pos) + 1}:{pos - (src.rfind(chr(10), 0, pos) + 1) + 1}"


@pytest.mark.parametrize("body, needle, message, hint", [
    ("all = [[0, 1], [1, 1 - k]]", "1 - k",
     "matrix entry (2, 2) names 'k', which is not a declared param", "param k = 1"),
    ("param g = 0.5\n  all = [[0, 1], [1, 1 - scalar(init=1)]]", "1 - scalar",
     "matrix entry (2, 2) is an expression of something other than numbers and params",
     "arithmetic (+ - * /)"),
    ("param g = 0.5\n  init = [1 - g]\n  all = [[0, 1], [1, 1]]", "1 - g]",
     "connection 'c': 'init' entry 1 is an expression; arithmetic is allowed in matrix "
     "entries only", "write a number"),
    ("all = [[0, 1], [1, 1e300 * 1e300]]", "1e300 * 1e300", "matrix entry (2, 2)",
     "choose a small one"),
])
def test_located_errors(body: str, needle: str, message: str, hint: str) -> None:
    src = "connection c {\n  " + body + "\n}\n" + MODEL
    lines = error(src)
    assert lines[0].startswith(f"{at(src, needle)}: error: "), lines
    assert message in lines[0], lines
    assert lines[-1].startswith("  hint: ") and hint in lines[-1], lines


def test_an_expression_in_a_preset_matrix_is_an_error() -> None:
    src = MODEL_HC
    lines = error(src)
    assert lines[0].startswith(f"{at(src, '1 - 0.5')}: error: matrix entry (2, 2) is not a "
                               "number: '1 - 0.5'"), lines


def test_an_expression_outside_a_list_is_a_syntax_error() -> None:
    src = MODEL.replace("dim = 32", "dim = 16 * 2")
    lines = error(src)
    assert lines[0].startswith(f"{at(src, '* 2')}: error:"), lines


# -- tied params: one scalar for every layer ------------------------------------------------

TIED = """
connection c {
  streams = 2
  param g = scalar(init=0.25, bound=unit, tied=true)
  param k = 1
  all = [[0, 1, g], [1 - g, 1, 0], [g, 0, k]]
}
"""


def test_a_tied_param_is_one_scalar_for_every_layer() -> None:
    m = hcdsl.compile(spec(TIED), backend="reference", seed=0).double()
    names = [name for name, _ in m.named_parameters() if "raw_" in name]
    assert sorted(names) == ["L1_coef.raw_g", "L1_coef.raw_k", "L2_coef.raw_k",
                             "L3_coef.raw_k", "L4_coef.raw_k"]
    assert [k for k in m.state_dict() if k.endswith("raw_g")] == ["L1_coef.raw_g"]
    with torch.no_grad():
        m.mod("L1.coef").raw_g.fill_(0.7)  # every layer sees the new value
    g = torch.sigmoid(torch.tensor(0.7, dtype=torch.float64))
    for k in range(1, 5):
        got = m.mod(f"L{k}.coef")()
        assert (got[1, 0] - (1 - g)).abs() < 1e-12 and (got[0, 2] - g).abs() < 1e-12
    ir = m.ir
    assert [ir.payload(f"L{k}.coef").param_count() for k in range(1, 5)] == [2, 1, 1, 1]
    assert sum(p.numel() for p in m.parameters()) == hcdsl.compile(
        spec(TIED), backend="reference", seed=0).ir.payload("L1.coef").param_count() + \
        sum(p.numel() for n_, p in m.named_parameters() if "coef" not in n_) + 3


def test_a_tied_param_gets_the_gradient_of_every_layer() -> None:
    fx_model = hcdsl.compile(spec(TIED), seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(spec(TIED), backend="reference", seed=0)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, torch.randint(0, 64, (2, 7)), nonzero=True)
    # the gradient of the one scalar is the sum over the layers that use it: untie it
    # (four separate scalars with the same value) and compare
    untied = hcdsl.compile(spec(TIED.replace(", tied=true", "")), seed=0)
    state = fx_model.state_dict()
    with torch.no_grad():
        for name, p in untied.named_parameters():
            p.copy_(state[name] if name in state else state["L1_coef.raw_g"])
    t = torch.randint(0, 64, (2, 7))
    fx_model.zero_grad()
    fx_model(t).sum().backward()
    untied(t).sum().backward()
    total = sum(dict(untied.named_parameters())[f"L{k}_coef.raw_g"].grad for k in range(1, 5))
    assert (fx_model.get_parameter("L1_coef.raw_g").grad - total).abs().item() < 1e-5


def test_tied_round_trip_and_bad_option() -> None:
    parsed = hcdsl.parse(spec(TIED))
    printed = format_model(parsed)
    assert "param g = scalar(init=0.25, bound=unit, tied=true)" in printed
    assert hcdsl.parse(printed).model_dump() == parsed.model_dump()
    src = spec(TIED.replace("tied=true", "tied=maybe"))
    lines = error(src)
    assert lines[0].startswith(f"{at(src, 'tied=maybe')}: error: param 'g': unknown or bad "
                               "option 'tied'"), lines
    assert "tied=false|true" in lines[-1]


# -- the prover reads arithmetic and tied params ---------------------------------------------

def _prove_spec(connection: str, connect: str = "c") -> str:
    return (f"{connection}\nmodel m {{\n  dim = 16\n  vocab = 64\n  layer attn = "
            f"attention(heads=2)\n  layer ffn = mlp\n  body = repeat 2 [attn, ffn]\n"
            f"  connect {connect}\n}}\n")


def test_prover_simplifies_arithmetic_entries() -> None:
    """1 - g + g is 1 for every g: the spec is Pre-Norm exactly (symbolic, not at init);
    1 - g alone is not."""
    from hcdsl.proofs.prove import NOT_EQUIVALENT, prove

    cancels = "connection c {\n  param g = 0.3\n  all = [[0, 1], [1, 1 - g + g]]\n}"
    assert prove(_prove_spec(cancels), _prove_spec("", "residual")).equivalent
    keeps = "connection c {\n  param g = 0.3\n  all = [[0, 1], [1, 1 - g]]\n}"
    assert prove(_prove_spec(keeps), _prove_spec("", "residual")).verdict == NOT_EQUIVALENT


def test_prover_ties_a_tied_param_across_layers() -> None:
    """With g tied, layers 1 and 2 share one symbol: g1 - g2 is 0, so `[1, 1 + g - g]` in
    layer 2 written through two different layers' copies cancels only when tied."""
    from hcdsl.proofs.prove import prove

    tied = ("connection c {\n  param g = scalar(init=0.3, tied=true)\n"
            "  all = [[0, 1], [1, g]]\n}")
    untied = tied.replace(", tied=true", "")
    assert prove(_prove_spec(tied), _prove_spec(tied)).equivalent
    assert not prove(_prove_spec(tied), _prove_spec(untied)).equivalent
