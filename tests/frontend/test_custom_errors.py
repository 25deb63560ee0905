"""Every mistake a user can make in a connection block: one diagnostic at file:line:col, with
a caret under the offending text, the message and a hint."""

from __future__ import annotations

import textwrap

import pytest
import torch

from custom_helpers import tokens, model
import hcdsl
from hcdsl.errors import HcError

pytestmark = pytest.mark.usefixtures("one_thread")


def source(connections: str, connect: str = "c") -> str:
    return textwrap.dedent(connections).lstrip("\n") + model(connect)


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
          "settings are: fractions, granularity, init, keep, lowrank")


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




def test_error_in_a_connection_block_the_model_does_not_use() -> None:
    src = source("""
        connection unused {
          all = [[0, undeclared], [1, 1]]
        }
    """, connect="residual")
    check(src, at(src, "undeclared"), "matrix entry (1, 2) is neither a number nor a "
          "declared param: 'undeclared'", "declare it")


_FRAC_GEN = """
          generator {
            input = each
            read = linear(std=0, act=tanh, affine=after_act, scale=0.01, bias=[1, 0, 0, 1])
          }
"""


@pytest.mark.parametrize("value, message, hint", [
    ("0", "setting 'fractions' must be >= 1, got '0'", "hint: write a value >= 1"),
    ("1.5", "setting 'fractions' must be an integer, got '1.5'",
     "hint: write a whole number such as 4")])
def test_error_bad_fractions_is_reported_once_at_fractions(value: str, message: str,
                                                           hint: str) -> None:
    src = source("connection c {\n  fractions = " + value + "\n" + _FRAC_GEN + "}\n")
    rendered = error(src)  # one diagnostic, not a second one about 'streams'
    where = at(src, "fractions =")
    assert rendered.splitlines()[0].startswith(
        f"<spec>:{where[0]}:{where[1]}: error: connection 'c': {message}"), rendered
    assert rendered.count("error:") == 1 and hint in rendered, rendered


def test_error_fractions_without_a_generator() -> None:
    src = source("""
        connection c {
          fractions = 2
        }
    """)
    check(src, at(src, "fractions = 2"), "connection 'c': fractions = 2 needs a `generator",
          "add a generator, e.g. as specs/custom/frac_written.hc, or drop fractions")


def test_error_fractions_generator_without_write_and_res() -> None:
    src = source("connection c {\n  fractions = 2\n" + _FRAC_GEN + "}\n")
    check(src, at(src, "generator {"), "connection 'c': fractions = 2: give write, res too",
          "read, write and res")
