"""Every mistake a user can make gives `file:LINE:COL: error: message`, a caret, and a hint.

Expected positions are computed from the spec text (the offending token is located), never
copied from the output.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hcdsl
from hcdsl.errors import CompileError, HcError


def spec(text: str) -> str:
    return textwrap.dedent(text).strip("\n") + "\n"


def at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line:col of the nth occurrence of needle in text."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def after(text: str, needle: str) -> tuple[int, int]:
    """The position just after the (first) occurrence of needle."""
    line, col = at(text, needle)
    return line, col + len(needle)


def errors(text: str, **kwargs) -> HcError:
    with pytest.raises(HcError) as info:
        hcdsl.parse(text, **kwargs)
    rendered = str(info.value)
    assert "Traceback" not in rendered
    return info.value


def check(err: HcError, where: tuple[int, int], *parts: str, index: int = 0) -> str:
    """Diagnostic `index` is at `where` and its message contains every part."""
    d = err.diagnostics[index]
    rendered = d.render(err.filename, err.source)
    header = rendered.splitlines()[0]
    assert header.startswith(f"<spec>:{where[0]}:{where[1]}: error: "), rendered
    for part in parts:
        assert part in rendered, f"{part!r} not in\n{rendered}"
    # the caret line sits under the offending column
    caret = rendered.splitlines()[2]
    assert caret.index("^") - caret.index("|") - 2 == where[1] - 1, rendered
    return rendered


GOOD = spec("""
    model m {
      dim = 64
      vocab = 256
      layer attn = attention(heads=4)
      layer ffn = mlp(hidden=128, act=swiglu)
      body = repeat 2 [attn, ffn]
      connect hyper(n=2, dynamic, tanh)
    }
""")


def test_good_spec_parses():
    assert hcdsl.parse(GOOD).connection.options.n == 2


# -- syntax ----------------------------------------------------------------------------
def test_missing_brace_in_the_middle_points_where_it_was_expected():
    text = spec("""
        model m {
          dim = 64
          vocab = 256
          layer attn = attention(heads=4)
          connect hyper(n=2) {
            odd = [[0,1,0],[1,1,0],[1,0,1]]
          body = repeat 2 [attn]
        }
    """)
    err = errors(text)
    brace = at(text, "{", 1)
    out = check(err, after(text, "[1,0,1]]"), "missing '}'",
                f"'{{' at {brace[0]}:{brace[1]} that opens the connect block",
                f"hint: add '}}' here, before 'body' on line {at(text, 'body')[0]}")
    assert len(err.diagnostics) == 1, out


def test_missing_brace_at_end_of_file():
    text = "model m {\n  dim = 64\n  vocab = 256\n"
    check(errors(text), after(text, "256"), "missing '}'", "the model 'm'",
          "before the end of the file")


def test_missing_bracket():
    text = spec("""
        model m {
          dim = 64
          vocab = 256
          layer attn = attention(heads=4)
          body = repeat 2 [attn
          connect hyper(n=2)
        }
    """)
    lsqb = at(text, "[attn")
    check(errors(text), after(text, "[attn"), "missing ']'",
          f"'[' at {lsqb[0]}:{lsqb[1]} that opens a body block", "before 'connect'")


def test_stray_token():
    text = GOOD.replace("dim = 64", "dim = 64 64")
    check(errors(text), at(text, "64", 1), "unexpected number '64' in the model 'm'",
          "hint: expected a new item")


def test_missing_comma_in_a_block():
    text = GOOD.replace("[attn, ffn]", "[attn ffn]")
    check(errors(text), at(text, "ffn]"), "unexpected name 'ffn' in a body block",
          "expected ',' or ']'; is a ',' missing?")


def test_truncated_file():
    text = "model m {\n  dim = 64\n  layer attn = attention(heads="
    paren = at(text, "(")
    check(errors(text), after(text, "heads="), "unexpected end of file",
          "is the file truncated?", f"'(' at {paren[0]}:{paren[1]} (the options of 'attention')",
          "'{' at 1:9 (the model 'm')")


def test_bad_character():
    text = GOOD.replace("vocab = 256", "vocab = 256 $")
    check(errors(text), at(text, "$"), "unexpected character '$'",
          "'$' is not part of the .hc language")


def test_unterminated_string():
    text = GOOD.replace("layer attn = attention(heads=4)", 'layer attn = extern a(p="x)')
    check(errors(text), at(text, '"'), "unterminated string", "close the string")


def test_text_after_the_model():
    text = GOOD + "layer x = mlp\n"
    check(errors(text), at(text, "layer x"), "unexpected 'layer' after the end of the model")


def test_empty_text_and_missing_file():
    check(errors("   \n"), (1, 1), "the spec is empty")
    err = errors(Path("no/such/file.hc"))
    assert str(err).startswith("no/such/file.hc: error: no such spec file: no/such/file.hc")


# -- names -------------------------------------------------------------------------------
def test_unknown_layer_in_body():
    text = GOOD.replace("[attn, ffn]", "[attn, fnn]")
    check(errors(text), at(text, "fnn"), "unknown layer 'fnn'", "did you mean 'ffn'?")


def test_unknown_layer_kind():
    text = GOOD.replace("attention(heads=4)", "atention(heads=4)")
    check(errors(text), at(text, "atention"), "unknown layer kind 'atention'",
          "did you mean 'attention'?", "extern atention(...)")


def test_unknown_connection():
    text = GOOD.replace("hyper(", "hypr(")
    check(errors(text), at(text, "hypr"), "unknown connection 'hypr'", "did you mean 'hyper'?")


def test_unknown_layer_option():
    text = GOOD.replace("heads=4", "heads=4, window=8")
    check(errors(text), at(text, "window"), "unknown option 'window' for layer 'attn' "
          "(attention)", "takes: bias, heads, rope")


def test_unknown_connection_option():
    text = GOOD.replace("n=2, dynamic", "n=2, rate=4, dynamic")
    check(errors(text), at(text, "rate"), "unknown option 'rate' for connection 'hyper'",
          "static")


def test_unknown_flag():
    text = GOOD.replace("dynamic, tanh", "dynamic, sigmoid")
    check(errors(text), at(text, "sigmoid"), "unknown option 'sigmoid' for connection 'hyper'")


def test_option_set_twice_through_a_flag():
    text = GOOD.replace("dynamic, tanh", "dynamic, static")
    check(errors(text), at(text, "static"), "option 'dynamic' of connection 'hyper' is given "
          "twice")


def test_duplicate_layer_name():
    text = GOOD.replace("layer ffn", "layer attn")
    check(errors(text), at(text, "attn", 1), "duplicate layer name 'attn'",
          f"already defined on line {at(text, 'layer attn')[0]}")


def test_duplicate_setting():
    text = GOOD.replace("vocab = 256", "vocab = 256\n  dim = 32")
    check(errors(text), at(text, "dim = 32"), "duplicate setting 'dim'",
          f"already set on line {at(text, 'dim')[0]}")


def test_unknown_setting():
    text = GOOD.replace("vocab = 256", "vocab = 256\n  vocabs = 3")
    check(errors(text), at(text, "vocabs"), "unknown setting 'vocabs'", "did you mean 'vocab'?")


# -- matrices and selectors ----------------------------------------------------------------
MATRIX = spec("""
    model m {
      dim = 64
      vocab = 256
      layer T = opaque
      body = repeat 4 [T]
      connect hyper(n=2, static) {
        odd  = [[0,1,0],[1,1,1],[1,1,1]]
        even = [[0,0,1],[0,1,0],[1,0,1]]
      }
    }
""")


def test_matrix_parses():
    assert len(hcdsl.parse(MATRIX).connection.matrices) == 4


def test_matrix_with_too_few_rows():
    text = MATRIX.replace("[[0,1,0],[1,1,1],[1,1,1]]", "[[0,1],[1,1]]")
    check(errors(text), at(text, "[[0,1],"), "expected a 3x3 matrix for n=2", "got 2 rows")


def test_matrix_row_of_the_wrong_length():
    text = MATRIX.replace("[1,1,1],[1,1,1]]", "[1,1],[1,1,1]]")
    check(errors(text), at(text, "[1,1]"), "expected a 3x3 matrix for n=2",
          "got 2 entries in row 2")


def test_matrix_that_is_not_a_list_of_rows():
    text = MATRIX.replace("[[0,1,0],[1,1,1],[1,1,1]]", "1")
    check(errors(text), at(text, "1\n"), "expected a 3x3 matrix for n=2, got '1'",
          "a list of rows")


def test_non_numeric_matrix_entry():
    text = MATRIX.replace("[[0,1,0],", "[[0,one,0],")
    check(errors(text), at(text, "one"), "matrix entry (1, 2) is not a number: 'one'")


def test_layer_index_out_of_range():
    text = MATRIX.replace("even =", "layer 9 =")
    check(errors(text), at(text, "layer 9"), "layer 9 does not exist: the body has 4 layers",
          "numbered from 1 to 4")


def test_every_from_out_of_range():
    text = MATRIX.replace("even =", "every 2 from 7 =")
    check(errors(text), at(text, "every"), "layer 7 does not exist")


# -- values --------------------------------------------------------------------------------
def test_n_below_one():
    text = GOOD.replace("n=2", "n=0")
    check(errors(text), at(text, "n=0"), "option 'n' of connection 'hyper' must be >= 1, "
          "got '0'")


def test_dim_not_divisible_by_heads():
    text = GOOD.replace("heads=4", "heads=5")
    check(errors(text), at(text, "heads=5"), "dim = 64 is not divisible by heads = 5",
          "choose heads among [1, 2, 4, 8, 16, 32, 64]")


def test_rope_needs_an_even_head_size():
    text = GOOD.replace("dim = 64", "dim = 60")
    check(errors(text), at(text, "heads=4"), "rotary embeddings need an even head size, but "
          "dim / heads = 60 / 4 = 15", "rope=false")
    assert hcdsl.parse(text.replace("heads=4", "heads=4, rope=false")).dim == 60


def test_no_body():
    text = spec("""
        model m {
          dim = 64
          vocab = 256
          layer attn = attention(heads=4)
        }
    """)
    check(errors(text), at(text, "m {"), "model 'm' has no body", "body = repeat")


def test_empty_block():
    text = GOOD.replace("repeat 2 [attn, ffn]", "[]")
    check(errors(text), at(text, "[]"), "empty body block")


def test_missing_dim_and_vocab():
    text = spec("""
        model tiny {
          layer attn = attention(heads=4)
          body = [attn]
        }
    """)
    err = errors(text)
    name = at(text, "tiny")
    check(err, name, "model 'tiny' has no 'dim' setting", "dim = ", index=0)
    check(err, name, "model 'tiny' has no 'vocab' setting", "vocab = ", index=1)


@pytest.mark.parametrize(("old", "new", "needle", "message"), [
    ("heads=4", "heads=two", "heads=two",
     "option 'heads' of layer 'attn' (attention) must be an integer, got 'two'"),
    ("heads=4", "heads=true", "heads=true", "must be an integer, got 'true'"),
    ("hidden=128", "hidden=1.5", "hidden=1.5", "option 'hidden' of layer 'ffn' (mlp) must be "
     "an integer, got '1.5'"),
    ("act=swiglu", "act=relu", "act=relu", "option 'act' of layer 'ffn' (mlp) must be gelu "
     "or swiglu, got 'relu'"),
    ("tanh)", "tanh=1)", "tanh=1", "option 'tanh' of connection 'hyper' must be true or "
     "false, got '1'"),
    ("dim = 64", "dim = -3", "-3", "'dim' must be a positive integer, got '-3'"),
    ("vocab = 256", "vocab = 2.5", "2.5", "'vocab' must be a positive integer, got '2.5'"),
    ("heads=4", "heads=f(x)", "f(x)", "option 'heads' of layer 'attn' (attention) takes a "
     "value, not a call"),
])
def test_wrong_value_types(old, new, needle, message):
    text = GOOD.replace(old, new)
    check(errors(text), at(text, needle), message)


def test_dynamic_needs_learn():
    text = GOOD.replace("tanh)", "tanh, fixed)")
    check(errors(text), at(text, "hyper"), "connection 'hyper': a dynamic connection must be "
          "learned")


# -- compile time ----------------------------------------------------------------------------
def test_extern_layer_without_factory():
    text = GOOD.replace("layer attn = attention(heads=4)", "layer attn = extern myattn(w=8)")
    with pytest.raises(CompileError) as info:
        hcdsl.compile(text)
    msg = str(info.value)
    assert "layer 'attn' uses extern 'myattn', but no factory was given" in msg
    assert "layers={'myattn': factory}" in msg


# -- all errors, in source order -----------------------------------------------------------
def test_three_errors_reported_in_source_order():
    text = spec("""
        model m {
          dim = 64
          vocab = 256
          layer attn = atention(heads=4)
          layer ffn = mlp(hidden=128, act=relu)
          body = repeat 2 [attn, ffn, nope]
          connect hyper(n=2)
        }
    """)
    err = errors(text)
    assert len(err.diagnostics) == 3, str(err)
    check(err, at(text, "atention"), "unknown layer kind 'atention'", index=0)
    check(err, at(text, "act=relu"), "must be gelu or swiglu", index=1)
    check(err, at(text, "nope"), "unknown layer 'nope'", index=2)
    assert str(err).endswith("3 errors in <spec>")


# -- never a traceback ---------------------------------------------------------------------
FUZZ_TOKENS = ["{", "}", "[", "]", "(", ")", "=", ",", "..", "layer", "layers", "repeat",
               "-1", "0", "1.5", "1e999", "99999999999999", '"', '"s"', "#", "$", "x", "all",
               "every", "from", "connect", "hyper", "residual", "extern", "model", "body",
               "head", "\n", "\t", "é", "n=", "dim", "norm", "rmsnorm(", "[[0]]"]
_edit = st.tuples(st.integers(0, len(MATRIX)), st.integers(0, 12),
                  st.lists(st.sampled_from(FUZZ_TOKENS), max_size=3))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([GOOD, MATRIX]), st.lists(_edit, min_size=1, max_size=4))
def test_fuzz_only_hc_errors(base, edits):
    text = base
    for pos, cut, inserted in edits:
        pos = min(pos, len(text))
        text = text[:pos] + " ".join(inserted) + text[pos + cut:]
    try:
        hcdsl.parse(text)
    except HcError as err:
        rendered = str(err)
        assert ": error: " in rendered and "Traceback" not in rendered


# -- user-supplied layers that do not fit -------------------------------------------------
EXTERN = "model m { dim = 16 vocab = 20 layer a = extern wide(k=2) body = [a] }"


def test_extern_layer_of_the_wrong_shape_is_a_compile_error() -> None:
    from torch import nn

    with pytest.raises(CompileError, match=r"layer 'a' \(extern wide\) maps \(2, 3, 16\) to "
                                           r"\(2, 3, 32\); it must return"):
        hcdsl.compile(EXTERN, layers={"wide": lambda dim, k: nn.Linear(dim, dim * k)})


def test_extern_factory_rejecting_its_options_is_a_compile_error() -> None:
    from torch import nn

    with pytest.raises(CompileError, match=r"factory 'wide' rejected its options \(dim=16, "
                                           r"\{'k': 2\}\)"):
        hcdsl.compile(EXTERN, layers={"wide": lambda dim: nn.Linear(dim, dim)})


def test_extern_layer_that_crashes_is_a_compile_error() -> None:
    from torch import nn

    class Broken(nn.Module):
        def forward(self, x):  # noqa: ANN001, ANN202
            raise RuntimeError("boom")

    with pytest.raises(CompileError, match="fails on an input of shape .*RuntimeError: boom"):
        hcdsl.compile(EXTERN, layers={"wide": lambda dim, k: Broken()})
