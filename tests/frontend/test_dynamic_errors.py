"""Every shape, axis or option mistake in a `generator { ... }` block is one located error:
file:line:col of the offending text, the message, and a hint (never a traceback, never a
cascade of follow-on errors)."""

from __future__ import annotations

import textwrap

import pytest

import hcdsl
from helpers import attn_ffn, model_text
from hcdsl.errors import HcError

MODEL = "\n" + model_text("c", dim=32, vocab=64, layers=attn_ffn(4, "mlp(hidden=64)"))
GOOD_READ = "read = linear(act=sigmoid)"


def source(body: str, streams: int = 4, extra: str = "", readout: str = "") -> str:
    gen = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    block = f"connection c {{\n  streams = {streams}\n{extra}  generator {{\n{gen}\n  }}\n"
    if readout:
        block += "  generator readout {\n" + textwrap.indent(
            textwrap.dedent(readout).strip("\n"), "    ") + "\n  }\n"
    return block + "}\n" + MODEL


def at(src: str, needle: str) -> tuple[int, int]:
    pos = src.index(needle)
    return src.count("\n", 0, pos) + 1, pos - (src.rfind("\n", 0, pos) + 1) + 1


def check(src: str, needle: str, message: str, hint: str) -> None:
    with pytest.raises(HcError) as info:
        hcdsl.parse(src)
    err = info.value
    assert len(err.diagnostics) == 1, str(err)
    rendered = err.diagnostics[0].render(err.filename, err.source)
    assert "Traceback" not in rendered
    line, col = at(src, needle)
    first = rendered.splitlines()[0]
    assert first.startswith(f"<spec>:{line}:{col}: error: connection 'c': {message}"), rendered
    caret = rendered.splitlines()[2]
    assert caret.index("^") - caret.index("|") - 2 == col - 1, rendered
    assert rendered.splitlines()[-1].startswith("  hint: "), rendered
    assert hint in rendered.splitlines()[-1], rendered


CASES = [
    # (id, generator body, needle, message start, hint fragment)
    ("unknown setting", "rows = 3\n" + GOOD_READ, "rows = 3",
     "unknown setting 'rows' in the generator", "settings are: input, norm, read"),
    ("readout in the step", "readout = linear(act=sigmoid)", "readout = linear",
     "unknown setting 'readout' in the generator", "generator readout"),
    ("duplicate output", GOOD_READ + "\nread = linear(act=tanh)", "read = linear(act=tanh)",
     "duplicate setting 'read'", "once"),
    ("bad input", "input = rows\n" + GOOD_READ, "rows",
     "'input' must be one of flat, each, got 'rows'", "input=flat"),
    ("bad norm", "norm = batchnorm\n" + GOOD_READ, "batchnorm",
     "norm must be rmsnorm(...), layernorm(...) or none", "rmsnorm(weight=none"),
    ("bad norm option", "norm = rmsnorm(bias=true)\n" + GOOD_READ, "bias=true",
     "norm: unknown option 'bias'", "weight=none|scale|offset"),
    ("bad norm weight", "norm = rmsnorm(weight=gain)\n" + GOOD_READ, "gain",
     "'weight' must be one of none, scale, offset", "weight=none"),
    ("norm groups", "norm = rmsnorm(groups=channels)\n" + GOOD_READ, "channels",
     "'groups' must be one of streams", "groups=streams"),
    ("negative eps", "norm = rmsnorm(eps=-1)\n" + GOOD_READ, "-1",
     "'eps' must be > 0, got -1", "choose eps > 0"),
    ("groups with each", "input = each\nnorm = rmsnorm(groups=streams)\n" + GOOD_READ,
     "norm = rmsnorm(groups", "`groups=streams` normalises the streams", "input = flat"),
    ("not a projection", "read = sigmoid", "sigmoid",
     "read must be a projection, linear(...) or lowrank(rank=R, ...), got 'sigmoid'",
     "read = linear(act=sigmoid"),
    ("unknown act", "read = linear(act=relu)", "relu",
     "'act' must be one of sigmoid, double_sigmoid, tanh, softmax, silu, identity, got 'relu'",
     "act=sigmoid"),
    ("axis without softmax", "read = linear(act=sigmoid, axis=streams)", "axis=streams",
     "read: 'axis' says what a softmax normalises, and act is sigmoid", "act=softmax"),
    ("axis of res", "res = linear(act=softmax, axis=streams)", "streams)",
     "'axis' must be one of rows, cols, got 'streams'", "axis=rows"),
    ("channels axis per stream", "read = linear(act=softmax, axis=channels)", "axis=channels",
     "read: axis=channels needs per=channel", "per=channel"),
    ("unknown output option", "read = linear(gain=2)", "gain=2",
     "read: unknown option 'gain'", "options: act"),
    ("source on write", GOOD_READ + "\nwrite = linear(source=normed)", "source=normed",
     "write: 'source' is an option of read weights only", "multiply the layer output"),
    ("per on res", "res = linear(per=channel)", "per=channel",
     "res: 'per' is an option of read and write weights", "n x n"),
    ("source on res", "res = linear(source=normed)", "source=normed",
     "res: 'source' is an option of read weights only", "n x n"),
    ("constraint on read", "read = linear(constraint=permutations)", "constraint=",
     "read: a constraint applies to the residual mix (res) only", "res = ..."),
    ("rank on linear", "read = linear(rank=4)", "rank=4",
     "read: 'rank' is an option of lowrank(...), not linear(...)", "lowrank(rank=16"),
    ("lowrank without rank", "read = lowrank(mid=silu)", "lowrank(mid",
     "read: lowrank(...) needs its rank", "rank=16"),
    ("zero rank", "read = lowrank(rank=0)", "0)",
     "'rank' must be a whole number >= 1, got 0", "rank=1"),
    ("zero div", "read = linear(div=0)", "0)", "'div' must be > 0, got 0", "choose div > 0"),
    ("act with a constraint", "res = linear(act=sigmoid, constraint=permutations)",
     "act=sigmoid", "res: a constraint makes the weights from the logits itself",
     "drop act"),
    ("unknown constraint", "res = linear(constraint=birkhoff)", "birkhoff",
     "res: unknown constraint 'birkhoff'", "sinkhorn(order=paper|softmax_rows"),
    ("sinkhorn order", "res = linear(constraint=sinkhorn(order=cols_first))", "cols_first",
     "'order' must be one of paper, softmax_rows", "order=paper"),
    ("sinkhorn iters", "res = linear(constraint=sinkhorn(iters=0))", "0)",
     "'iters' must be a whole number >= 1, got 0", "iters=1"),
    ("sinkhorn option", "res = linear(constraint=sinkhorn(tau=2))", "tau=2",
     "sinkhorn: unknown option 'tau'", "order=paper|softmax_rows"),
    ("kronecker product", "res = linear(constraint=kronecker(factors=[2, 3]))", "[2, 3]",
     "kronecker: the factors [2, 3] multiply to 6, but the connection has 4 streams",
     "product must equal `streams`"),
    ("kronecker factor 1", "res = linear(constraint=kronecker(factors=[1, 4]))", "1, 4",
     "'factor' must be a whole number >= 2, got 1", "factor=2"),
    ("kronecker without factors", "res = linear(constraint=kronecker)", "kronecker)",
     "kronecker needs its factor sizes", "factors=[2, 2]"),
    ("permutations with each", "input = each\nres = linear(constraint=permutations)",
     "res = linear(constraint=perm", "res: a permutations constraint mixes over all n x n",
     "input = flat"),
    ("normed without a norm", "norm = none\nread = linear(source=normed)", "read = linear",
     "read: source=normed reads the normalised state, but the generator has norm = none",
     "give a norm"),
    ("empty", "input = flat", "generator {", "the generator makes no weights",
     "read, write, res"),
]


@pytest.mark.parametrize("body, needle, message, hint", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_located_error(body: str, needle: str, message: str, hint: str) -> None:
    check(source(body), needle, message, hint)


def test_permutations_of_too_many_streams() -> None:
    src = source("res = linear(constraint=permutations)", streams=8)
    check(src, "permutations)", "permutations mixes all n! permutation matrices: 8! = 40,320",
          "kronecker(factors=[...])")


def test_readout_generator_needs_a_readout() -> None:
    src = source(GOOD_READ, readout="input = flat\nnorm = none")
    check(src, "generator readout", "a readout generator needs `readout = ...`",
          "readout = linear(act=sigmoid)")


def test_read_in_the_readout_generator() -> None:
    src = source(GOOD_READ, readout="read = linear(act=sigmoid)")
    check(src, "read = linear(act=sigmoid)\n  }\n}", "unknown setting 'read' in the generator",
          "belongs in the layers'")


def test_unknown_generator_name() -> None:
    src = source(GOOD_READ).replace("  generator {", "  generator head {")
    check(src, "head {", "unknown generator 'head'", "generator readout")


def test_two_generators() -> None:
    src = source(GOOD_READ, extra="  generator {\n    read = linear\n  }\n")
    check(src, "generator {\n    read = linear(act", "a second `generator` block",
          "one of each")


def test_matrix_rules_and_a_generator() -> None:
    src = source(GOOD_READ, extra="  all = [[0, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], "
                 "[0, 0, 0, 1, 0], [0, 0, 0, 0, 1]]\n")
    check(src, "all = ", "matrix rules and a generator both give M", "drop the matrix rules")


def test_readout_weights_and_a_readout_generator() -> None:
    src = source(GOOD_READ, extra="  readout = [1, 1, 1, 1]\n",
                 readout="readout = linear(act=sigmoid)")
    check(src, "generator readout", "'readout' and `generator readout` both give the readout",
          "drop 'readout'")


def test_generator_in_a_history_connection() -> None:
    """A history connection has a generator of its own (tests/frontend/
    test_history_generator_errors.py); a stream generator's output there is named."""
    src = ("connection c {\n  state = history\n  generator {\n    read = linear\n  }\n}\n"
           + MODEL)
    check(src, "read = linear", "unknown setting 'read' in the generator",
          "drop `state = history`")


def test_an_unused_connection_block_is_checked_too() -> None:
    src = source("read = linear(act=relu)").replace("connect c", "connect residual")
    check(src, "relu", "'act' must be one of", "act=sigmoid")
