"""IR text round trips (hcdsl/ir/text.py): parse(dump_exact(ir)) is the same IR, strictly, for
every bundled spec and for generated ones, raw and optimised; parse(dump(ir)) equals ir where
the short dump is complete; the one IR equality sees every kind of difference; a mistake in
IR text is an error at its line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.ir.dump import dump
from hcdsl.ir.graph import IR
from hcdsl.ir.text import IRParseError, differences, dump_exact, parse, same
from differential import random_spec

ROOT = Path(__file__).parents[2]
SPECS = sorted((ROOT / "specs").rglob("*.hc"))
GOLDEN = sorted((Path(__file__).parents[1] / "golden").glob("*.ir.txt"))


def lowered(text: str, optimised: bool) -> IR:
    return hcdsl.lower(text) if optimised else hcdsl.lower(text, passes=None)


def check_round_trip(ir: IR) -> None:
    back = parse(dump_exact(ir))
    assert same(back, ir), differences(back, ir)
    assert dump_exact(back) == dump_exact(ir)
    assert dump(back) == dump(ir)  # the short form of the parsed IR: the same bytes
    if not ir.of_type(n.ParallelLayers) and not ir.of_type(n.GeneratorCoef):
        short = parse(dump(ir))
        assert set(short.g.nodes) == set(ir.g.nodes)
        assert all(short.payload(v) == ir.payload(v) for v in ir.g.nodes)
        assert all(short.inputs(v) == ir.inputs(v) for v in ir.g.nodes)
        assert dump(short) == dump(ir)


def test_every_bundled_spec_is_here() -> None:
    assert len(SPECS) >= 40


@pytest.mark.parametrize("optimised", [False, True], ids=["raw", "optimised"])
@pytest.mark.parametrize("path", SPECS, ids=lambda p: str(p.relative_to(ROOT / "specs")))
def test_bundled_specs_round_trip(path: Path, optimised: bool) -> None:
    check_round_trip(lowered(path.read_text(), optimised))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), optimised=st.booleans())
def test_generated_specs_round_trip(seed: int, optimised: bool) -> None:
    check_round_trip(lowered(random_spec(seed), optimised))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_golden_dumps_parse_back_to_the_same_bytes(path: Path) -> None:
    text = path.read_text()
    if "parallel_layers(" in text:
        with pytest.raises(IRParseError, match="kinds only") as err:
            parse(text, path.name)
        assert "dump_exact" in str(err.value)
        return
    assert dump(parse(text, path.name)) == text


def test_exact_form_is_the_dump_where_the_dump_is_complete() -> None:
    """The goldens of tests/passes read like `hcdsl show --ir`: dump_exact writes dump's
    lines except where dump loses something (parallel layers, floats where any scalar
    may stand)."""
    ir = lowered((ROOT / "specs/tiny_dhc4.hc").read_text(), True)
    assert dump_exact(ir) == dump(ir)


def extern_ir() -> IR:
    """Values the short dump cannot tell apart: strings that read as other scalars, with
    spaces, commas and quotes, integral floats where any scalar may stand."""
    ir = IR("odd names")
    ir.add("tokens", n.Input())
    ir.add("embed", n.Embed(32, 8), x="tokens")
    args = (("flag", "True"), ("count", "2"), ("ratio", 1.0), ("n", 1), ("b", False),
            ("text", 'a b, "c" = [d]'), ("empty", ""), ("arrow", "->x"), ("f", 0.25),
            ("line", "x\ny"))
    ir.add("L1.mine", n.Layer("mine", "mine", args, 8, ("x",), 0.5, True), x="embed")
    ir.add("tpl", n.TemplateCoef(((0.0, "a"), (1, 2.5)), (("a", 1.0, "unit"),)))
    ir.add("head", n.Unembed(32, 8, False), x="L1.mine")
    ir.add("output", n.Output(), x="head")
    return ir


def test_exact_form_keeps_every_scalar() -> None:
    ir = extern_ir()
    back = parse(dump_exact(ir))
    assert same(back, ir), differences(back, ir)
    args = dict(back.payload("L1.mine").args)
    assert args["flag"] == "True" and args["count"] == "2" and type(args["ratio"]) is float
    row = back.payload("tpl").template[1]
    assert row == (1, 2.5) and type(row[0]) is int
    # the short dump loses what the exact form keeps: the word True reads back as a bool,
    # the float 1.0 as the int 1
    plain = ir.copy()
    plain.name = "plain"  # the short dump's header takes a name without spaces
    plain.set_payload("L1.mine", n.Layer("mine", "mine", (("flag", "True"), ("ratio", 1.0)), 8,
                                         ("x",), 0.5, True))
    short = parse(dump(plain))
    assert dict(short.payload("L1.mine").args) == {"flag": True, "ratio": 1}
    assert not same(short, plain)
    assert same(parse(dump_exact(plain)), plain)


def test_parallel_layers_round_trip_in_full() -> None:
    ir = lowered((ROOT / "specs/parallel_shared.hc").read_text(), True)
    fused = ir.of_type(n.ParallelLayers)
    assert fused
    back = parse(dump_exact(ir))
    assert back.payload(fused[0]).layers == ir.payload(fused[0]).layers
    assert same(back, ir)


# -- the one equality ---------------------------------------------------------------------
def base() -> IR:
    return lowered((ROOT / "specs/pre_norm.hc").read_text(), False)


def test_equality_sees_a_changed_field() -> None:
    a, b = base(), base()
    assert same(a, b) and differences(a, b) == []
    norm = b.payload("L1.norm")
    b.set_payload("L1.norm", n.Norm(norm.kind, norm.affine, 1e-6, norm.width))
    assert not same(a, b)
    assert "L1.norm" in differences(a, b)[0]


def test_equality_tells_an_int_from_a_float() -> None:
    a, b = base(), base()
    node = next(v for v in b.g.nodes if isinstance(b.payload(v), n.Layer))
    layer = b.payload(node)
    args = tuple((k, float(v) if type(v) is int else v) for k, v in layer.args)
    b.set_payload(node, n.Layer(layer.name, layer.kind, args, layer.dim, layer.in_ports,
                                layer.out_scale, layer.extern))
    assert any(type(v) is int and not isinstance(v, bool) for _, v in layer.args)
    assert b.payload(node) == a.payload(node)  # Python's equality: 64 == 64.0 ...
    assert not same(a, b)  # ... the IR's tells them apart: hidden=64.0 is no valid layer


def test_equality_sees_ports_nodes_and_name() -> None:
    a = base()
    b = base()
    b.name = "other"
    assert any(d.startswith("name") for d in differences(a, b))
    c = base()
    v = next(v for v in c.g.nodes if isinstance(c.payload(v), n.Mix))
    x, coef = c.inputs(v)["x"], c.inputs(v)["coef"]
    c.disconnect(v)
    c.connect(coef, v, "x")
    c.connect(x, v, "coef")
    assert any("inputs" in d for d in differences(a, c))
    d = base()
    d.add("junk", n.Input())
    assert "only in the second: ['junk']" in differences(a, d)


# -- errors -------------------------------------------------------------------------------
GOOD = """ir m  # 4 nodes
tokens = input() () -> tokens
embed = embed(vocab=32, dim=8) (x=tokens) -> h[8]
head = unembed(vocab=32, dim=8, tied=False) (x=embed) -> logits[32]
output = output() (x=head) -> logits[32]
"""


def error(text: str) -> str:
    with pytest.raises(IRParseError) as err:
        parse(text, "t.ir")
    return str(err.value)


def test_the_example_parses() -> None:
    assert dump(parse(GOOD)) == GOOD


def at(text: str, needle: str) -> str:
    """'t.ir:LINE:COL:' of the first occurrence of needle in text (counted here, by hand)."""
    pos = text.index(needle)
    line = text.count("\n", 0, pos) + 1
    return f"t.ir:{line}:{pos - (text.rfind(chr(10), 0, pos) + 1) + 1}:"


@pytest.mark.parametrize("old, new, needle, message", [
    ("embed(vocab", "embedd(vocab", "embedd(", "unknown operation 'embedd'"),
    ("vocab=32, dim=8) (x=tokens)", "vocab=32) (x=tokens)", "embed(vocab=32)",
     "lacks the field dim"),
    ("dim=8) (x=tokens)", "dim=8, size=3) (x=tokens)", "size", "no field 'size'"),
    ("vocab=32, dim=8) (x=tokens)", "vocab=many, dim=8) (x=tokens)", "many",
     "embed.vocab expects an integer, found 'many'"),
    ("tied=False", "tied=maybe", "maybe", "expects True or False"),
    ("(x=head)", "(x=heed)", "heed", "reads 'heed', which no line defines"),
    ("(x=embed) -> logits[32]", "(x=embed) -> h[8]", "h[8]\nout", "written as h[8]"),
    ("# 4 nodes", "# 5 nodes", "5", "says 5 nodes, the text has 4"),
    ("(x=tokens) -> h[8]", "(y=tokens) -> h[8]", "embed = ", "wired on ports ['y']"),
    ("dim=8) (x=tokens)", "dim=8 (x=tokens)", "(x=tokens)", "expected ','"),
    ("ir m", "IR m", "IR m", "expected the header"),
    ("head = unembed", "embed = unembed", "embed = unembed", "'embed' defined twice"),
])
def test_errors_name_line_and_column(old: str, new: str, needle: str, message: str) -> None:
    assert old in GOOD
    bad = GOOD.replace(old, new, 1)
    text = error(bad)
    assert text.startswith(at(bad, needle)), text
    assert message in text
    assert "^" in text  # the offending text is marked under its line


def test_unterminated_string_and_empty_text() -> None:
    assert "unterminated string" in error(GOOD.replace("vocab=32, dim=8)", 'vocab="32, dim=8)'))
    assert "empty" in error("// nothing\n\n")


def test_a_type_error_names_the_node() -> None:
    text = error(GOOD.replace("unembed(vocab=32, dim=8", "unembed(vocab=32, dim=9")
                 .replace("(x=embed) -> logits[32]", "(x=embed) -> logits[32]"))
    assert "t.ir:4:1:" in text and "unembed expects h[9]" in text


@pytest.mark.parametrize("path", ["specs/families/deepseek_v4_mhc.hc", "specs/tiny_dhc4.hc",
                                  "specs/families/mhc_tiny_identity4.hc"])
def test_a_generator_line_reads_back(path: str) -> None:
    """dump writes a generator's settings as a spec writes them (dynamic HC and mHC are
    generators too); the language's generator reader reads them back into the same record,
    so dump_exact writes the same line."""
    ir = lowered((ROOT / path).read_text(), False)
    assert ir.of_type(n.GeneratorCoef)
    assert dump_exact(ir) == dump(ir)
    back = parse(dump(ir))
    assert same(back, ir), differences(back, ir)


def test_a_wrong_generator_setting_is_located() -> None:
    ir = lowered((ROOT / "specs/tiny_dhc4.hc").read_text(), False)
    text = dump(ir).replace("scale=read", "scale=res", 1)  # res's own scale: itself
    with pytest.raises(IRParseError, match="generator's settings do not read") as err:
        parse(text)
    assert "scale=res names this output itself" in str(err.value)
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x.startswith("L1.coef ="))
    assert str(err.value).startswith(f"<ir>:{line}:11:")  # at the op of L1.coef
    bad = dump(ir).replace("names=hc", "names=nope", 1)
    with pytest.raises(IRParseError, match="names=nope is not one of"):
        parse(bad)
