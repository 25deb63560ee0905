"""Arithmetic in a connection's matrix entries (`1 - g`, `2 * h - g * h`): it parses into
canonical text, prints back to itself, evaluates to the same matrix on both backends and in
the prover's value at init, and every misuse is a located error with a hint."""

from __future__ import annotations

import textwrap

import pytest
import torch

from helpers import assert_same, perturb
import hcdsl
from hcdsl.errors import HcError
from hcdsl.frontend.printer import format_model
from hcdsl.lang.expr import evaluate, parse, render

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = """
model m {
  dim = 32
  vocab = 64
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect c
}
"""
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
     "arithmetic (+ - *)"),
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
