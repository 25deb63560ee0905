"""A `param` that nothing in its connection block uses is a located error (file:line:col of
its name, the offending text, a hint), in the connected block and in a block the model does
not use; a param used anywhere a param may be written is not (matrix entries and their
arithmetic, `layer k` rules, `readout`, `value_residual`, a map's weight; tied and vector
params alike). A generator's settings cannot name a param, so a param next to a generator
that nothing else uses is unused."""

from __future__ import annotations

import textwrap

import pytest

import hcdsl
from custom_helpers import model
from hcdsl.errors import HcError

pytestmark = pytest.mark.usefixtures("one_thread")


def source(connections: str, connect: str = "c") -> str:
    return textwrap.dedent(connections).lstrip("\n") + model(connect)


def at(src: str, needle: str) -> tuple[int, int]:
    pos = src.index(needle)
    return src.count("\n", 0, pos) + 1, pos - (src.rfind("\n", 0, pos) + 1) + 1


def diagnostics(src: str) -> list[str]:
    with pytest.raises(HcError) as info:
        hcdsl.parse(src)
    err = info.value
    return [d.render(err.filename, err.source) for d in err.diagnostics]


def check_unused(src: str, names: list[str]) -> None:
    """Exactly one error per name, at `param NAME`'s name, with its line and a hint."""
    got = diagnostics(src)
    assert len(got) == len(names), got
    for rendered, name in zip(got, names):
        line, col = at(src, f"param {name} ")
        col += len("param ")
        lines = rendered.splitlines()
        assert lines[0].startswith(f"<spec>:{line}:{col}: error: connection "), rendered
        assert f"param '{name}' is declared but never used" in lines[0], rendered
        assert f"param {name} " in lines[1]  # the offending text, quoted
        assert lines[2].index("^") - lines[2].index("|") - 2 == col - 1, rendered
        assert lines[-1].startswith("  hint: remove it"), rendered
        assert "Traceback" not in rendered


USED = {
    "entry": """connection c {
                  param g = 0.5
                  all = [[0, 1], [1, g]]
                }""",
    "arithmetic": """connection c {
                       param g = scalar(init=0.5, bound=unit)
                       all = [[0, g], [1, 1 - g]]
                     }""",
    "layer_rule_only": """connection c {
                            param g = 0.5
                            all = [[0, 1], [1, 1]]
                            layer 2 = [[0, 1], [1, g]]
                          }""",
    "tied": """connection c {
                 param mix = scalar(init=0.5, bound=unit, tied=true)
                 all = [[0, mix], [1, 1]]
               }""",
    "vectors": """connection c {
                    param g = vector(init=1, bound=double)
                    param r = vector(init=1)
                    param h = vector(init=0.5, bound=unit, tied=true)
                    all = [[0, g], [r, h]]
                  }""",
    "readout": """connection c {
                    streams = 2
                    param w = 0.5
                    init = [1, 0]
                    readout = [1, w]
                    all = [[0, 1, 0], [1, 1, 0], [0, 0, 1]]
                  }""",
    "value_residual": """connection c {
                           param a = 0.5
                           param b = 0.5
                           value_residual = [a, b]
                           all = [[0, 1], [1, 1]]
                         }""",
    "map_weight_only": """connection c {
                            streams = 2
                            param g1 = 0.5
                            init = [1, 0]
                            maps = [lowrank(rank=4, source=2, target=1, weight=g1, start=2)]
                            all = [[0, 1, 0], [1, 1, 1], [0, 0, 0]]
                          }""",
}


@pytest.mark.parametrize("case", sorted(USED))
def test_a_used_param_is_no_error(case: str) -> None:
    hcdsl.parse(source(USED[case]))


def test_every_bundled_spec_uses_its_params() -> None:
    from pathlib import Path

    for spec in sorted(Path("specs").rglob("*.hc")):
        hcdsl.parse(spec)


def test_an_unused_scalar_param() -> None:
    check_unused(source("""
        connection c {
          param g = 0.5
          all = [[0, 1], [1, 1]]
        }
    """), ["g"])


def test_unused_tied_and_vector_params_each_reported() -> None:
    check_unused(source("""
        connection c {
          param used = 0.5
          param t = scalar(init=0.5, bound=unit, tied=true)
          param v = vector(init=1, bound=double)
          all = [[0, 1], [1, used]]
        }
    """), ["t", "v"])


def test_a_param_named_only_in_a_comment_is_unused() -> None:
    check_unused(source("""
        connection c {
          param g = 0.5
          all = [[0, 1], [1, 1]]   # g would go here
        }
    """), ["g"])


def test_a_param_next_to_a_generator_is_unused() -> None:
    src = source("""
        connection c {
          streams = 2
          param g = 0.5
          generator {
            input = flat
            norm = rmsnorm(weight=none)
            read = linear(act=sigmoid, scale=0.5)
            write = linear(act=double_sigmoid, scale=1, bias=0)
            res = linear(scale=1, bias=0)
          }
        }
    """)
    check_unused(src, ["g"])
    assert "a generator learns its own weights" in diagnostics(src)[0]


def test_an_unused_param_in_a_block_the_model_does_not_use() -> None:
    check_unused(source("""
        connection other {
          param g = 0.5
          all = [[0, 1], [1, 1]]
        }
    """, connect="residual"), ["g"])


def test_no_cascade_after_the_blocks_own_error() -> None:
    """A block with an error of its own reports that one only (its param may be meant for
    the entry that is wrong)."""
    got = diagnostics(source("""
        connection c {
          param g = 0.5
          all = [[0, 1], [1, gg]]
        }
    """))
    assert len(got) == 1 and "'gg'" in got[0], got


def test_a_call_in_a_matrix_entry_has_a_hint() -> None:
    """`exp(g)` in an entry was located but had no hint (custom.md's "cannot express" list:
    functions of params are out of scope; bounds give σ, 2σ and e^ of one param)."""
    (got,) = diagnostics(source("""
        connection c {
          param g = 0.5
          all = [[0, exp(g)], [1, 1]]
        }
    """))
    assert "neither a number nor a declared param: 'exp(...)'" in got, got
    assert "hint: an entry is a number, a param or arithmetic" in got and "bound=" in got
