"""Every shape, axis or option mistake in the `generator { ... }` block of a history
connection is one located error: file:line:col of the offending text, the message, and a
hint (never a traceback, never a cascade of follow-on errors)."""

from __future__ import annotations

import textwrap

import pytest

import hcdsl
from helpers import attn_ffn, model_text
from test_dynamic_errors import at, check  # one located-error check for both
from hcdsl.errors import HcError

MODEL = "\n" + model_text("c", dim=32, vocab=64, layers=attn_ffn(4, "mlp(hidden=64)"))
ATTNRES = """input = sources
norm = rmsnorm(weight=scale)
proj = query
act = softmax
static = none"""


def source(body: str, extra: str = "") -> str:
    gen = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return (f"connection c {{\n  state = history\n{extra}  generator {{\n{gen}\n  }}\n}}\n"
            + MODEL)


CASES = [
    # (id, generator body, needle, message start, hint fragment)
    ("unknown setting", "ways = 3\n" + ATTNRES, "ways = 3",
     "unknown setting 'ways' in the generator", "settings are: input, norm, proj"),
    ("stream output", "read = linear\n" + ATTNRES, "read = linear",
     "unknown setting 'read' in the generator", "output of a stream generator"),
    ("duplicate setting", ATTNRES + "\nact = relu", "act = relu",
     "duplicate setting 'act'", "once"),
    ("bad input", ATTNRES.replace("input = sources", "input = all"), "all",
     "'input' must be one of none, newest, sources, got 'all'", "input = none"),
    ("layernorm", ATTNRES.replace("rmsnorm(weight=scale)", "layernorm"), "layernorm",
     "a history generator normalises with rmsnorm", "norm = rmsnorm"),
    ("bad norm weight", ATTNRES.replace("weight=scale", "weight=offset"), "offset",
     "'weight' must be one of none, scale, got 'offset'", "weight = none"),
    ("norm option", ATTNRES.replace("weight=scale", "eps=1e-6"), "eps=1e-6",
     "'norm = rmsnorm' has no option 'eps'", "rmsnorm takes: weight"),
    ("bad proj", ATTNRES.replace("proj = query", "proj = mlp"), "mlp",
     "'proj' must be one of none, linear, query, lowrank, got 'mlp'", "proj = none"),
    ("query option", ATTNRES.replace("proj = query", "proj = query(rank=4)"), "rank=4",
     "'proj = query' has no option 'rank'", "query takes: heads"),
    ("heads zero", ATTNRES.replace("proj = query", "proj = query(heads=0)"), "0)",
     "'heads' must be a whole number from 1 to 32, got '0'", "heads=1"),
    ("heads over dim", ATTNRES.replace("proj = query", "proj = query(heads=33)"), "33",
     "'heads' must be a whole number from 1 to 32, got '33'", "heads=1"),
    ("heads not dividing", ATTNRES.replace("proj = query", "proj = query(heads=3)"),
     "query(heads=3)", "heads = 3 must divide dim = 32", "choose heads among [1, 2, 4, 8"),
    ("fractional rank", "input = newest\nnorm = rmsnorm\nproj = lowrank(rank=2.5)", "2.5",
     "'rank' must be a whole number from 1 to", "rank=1"),
    ("bad mid", "input = newest\nproj = lowrank(mid=softmax)", "softmax",
     "'mid' must be one of identity, relu", "mid = identity"),
    ("rank_ways over 4", "input = newest\nproj = lowrank(rank_ways=5)", "5",
     "'rank_ways' must be a whole number from 1 to 4", "rank_ways=1"),
    ("duplicate argument", "input = newest\nproj = lowrank(rank=4, rank=8)", "rank=8",
     "'proj': duplicate argument 'rank'", "once"),
    ("bad act", ATTNRES.replace("act = softmax", "act = sparsemax"), "sparsemax",
     "'act' must be one of identity, relu", "act = identity"),
    ("bad static", ATTNRES.replace("static = none", "static = stream"), "stream",
     "'static' must be one of none, source, channel, got 'stream'", "static = none"),
    ("bad static init", ATTNRES.replace("static = none", "static = source(init=eye)"), "eye",
     "'init' must be one of newest, zero, ones, got 'eye'", "init = newest"),
    ("static option", ATTNRES.replace("static = none", "static = none(init=ones)"),
     "init=ones", "'static = none' has no option 'init'", "none takes no arguments"),
    # -- the whole block: what the input feeds, shapes and axes
    ("no weights", "static = none", "none", "the generator makes no weights",
     "give a projection"),
    ("projection without input", "proj = linear", "linear",
     "proj = linear needs an input to project", "input = newest"),
    ("input without projection", "input = newest", "newest",
     "input = newest is read by nothing", "add proj"),
    ("norm without input", "norm = rmsnorm", "rmsnorm",
     "the norm has no input to normalise", "drop the norm"),
    ("act without projection", "act = softmax", "softmax",
     "act = softmax applies to the projection, and there is none", "drop act"),
    ("query on the newest", ATTNRES.replace("input = sources", "input = newest"), "newest",
     "a query scores every source against its own key", "input = sources"),
    ("lowrank on every source", "input = sources\nproj = lowrank", "sources",
     "lowrank makes the weights of every source and way from one vector",
     "write input = newest"),
]


@pytest.mark.parametrize("body,needle,message,hint", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_generator_mistake_is_one_located_error(body: str, needle: str, message: str,
                                                hint: str) -> None:
    check(source(body), needle, message, hint)


SETTING_CASES = [
    # (id, connection settings, needle, message start, hint fragment)
    ("weights and a generator", "  weights = softmax\n", "generator {",
     "'weights' and a generator both make the aggregates' weights", "drop `weights"),
    ("qkv over raw outputs", "  ways = qkv\n  keep = outputs\n", "ways = qkv",
     "ways = qkv feeds q, k and v from the history, but it keeps raw layer outputs",
     "keep = updates"),
    ("qkv over states", "  ways = qkv\n  keep = states\n", "ways = qkv",
     "ways = qkv has no residual way", "keep = updates (DCA)"),
]


@pytest.mark.parametrize("extra,needle,message,hint", [c[1:] for c in SETTING_CASES],
                         ids=[c[0] for c in SETTING_CASES])
def test_connection_setting_mistake_is_one_located_error(extra: str, needle: str,
                                                         message: str, hint: str) -> None:
    check(source(ATTNRES, extra), needle, message, hint)


def test_readout_generator_in_a_history_connection() -> None:
    src = source(ATTNRES).replace("  generator {", "  generator readout {")
    check(src, "readout {", "a history connection reads out with its last aggregate",
          "write `generator { ... }`")


def test_a_stream_setting_in_a_history_generator_connection() -> None:
    check(source(ATTNRES, "  streams = 2\n"), "streams = 2",
          "'streams' is a setting of stream state", "drop it")


def test_qkv_ways_need_a_first_layer_with_q_k_v() -> None:
    """ways = qkv feeds the block's first layer three inputs: an FFN-first body is refused
    when the scheme is built (compile), naming the block and the layer."""
    src = source(ATTNRES.replace("act = softmax", "act = relu").replace(
        "proj = query", "proj = linear").replace("static = none", "static = channel"),
        "  ways = qkv\n  keep = updates\n").replace("[attn, ffn]", "[ffn, attn]")
    with pytest.raises(HcError) as info:
        hcdsl.compile(src)
    text = str(info.value)
    assert "block 1 starts with 'ffn'" in text and "Traceback" not in text
    assert "or write ways = x" in text


def test_several_mistakes_are_all_reported() -> None:
    body = ATTNRES.replace("input = sources", "input = all").replace(
        "act = softmax", "act = sparsemax")
    with pytest.raises(HcError) as info:
        hcdsl.parse(source(body))
    assert len(info.value.diagnostics) == 2
