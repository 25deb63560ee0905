"""The grammar: builds strictly, reads every shipped spec, keeps source positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from hcdsl.frontend import syntax as s
from hcdsl.frontend.parser import make_parser, parse_syntax

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
SPECS = sorted(SPECS_DIR.rglob("*.hc"))


def test_grammar_builds_strict():
    # strict: no shift/reduce conflicts, no terminal collisions
    parser = make_parser(strict=True)
    assert parser.options.parser == "lalr"


@pytest.mark.parametrize("path", SPECS, ids=[str(p.relative_to(SPECS_DIR)) for p in SPECS])
def test_every_spec_file_parses(path: Path):
    syntax = parse_syntax(path.read_text(), str(path))
    assert syntax.bodies, f"{path.name} has no body"
    make_parser(strict=True).parse(path.read_text())


TEXT = """\
# a comment before the model
model pos {
  dim = 64        # trailing comment
  vocab = 256
  layer attn = attention(heads=4)
    layer   ffn = mlp(act=swiglu)
  layer mine = extern myblock(window=8, causal, name="x \\"y\\"")
  body = repeat 2 [attn, ffn], [mine], []
  connect hyper(n=1, static) {
    all = [[0, 1], [1, 1]]
    odd = [[0, 1], [1, 1]]
    even = [[0, 1], [1, -0.5]]
    layer 2 = [[0, 1], [1, 1e-3]]
    layers 1..3 = [[0, 1], [1, 1]]
    every 2 = [[0, 1], [1, 1]]
    every 3 from 2 = [[0, 1], [1, 1]]
  }
  head = unembed(tied=true)
}
"""


def _line(needle: str, nth: int = 0) -> tuple[int, int]:
    pos = -1
    for _ in range(nth + 1):
        pos = TEXT.index(needle, pos + 1)
    return TEXT.count("\n", 0, pos) + 1, pos - (TEXT.rfind("\n", 0, pos) + 1) + 1


def test_layer_spans_point_at_their_lines():
    syn = parse_syntax(TEXT)
    for layer in syn.layers:
        line, col = _line(f"layer {layer.name}") if layer.name != "ffn" else _line("layer   ffn")
        assert (layer.span.line, layer.span.column) == (line, col)
        assert layer.name_span.line == line
        assert layer.name_span.column == _line(layer.name + " =")[1]
        assert layer.call.name_span.line == line


def test_other_spans():
    syn = parse_syntax(TEXT)
    assert (syn.name_span.line, syn.name_span.column) == _line("pos {")
    assert (syn.settings[0].span.line, syn.settings[0].span.column) == _line("dim")
    assert syn.bodies[0].span.line == _line("body")[0]
    names = {n: sp for part in syn.bodies[0].parts for n, sp in part.names}
    assert (names["mine"].line, names["mine"].column) == _line("mine]")
    rule = syn.connects[0].rules[3]
    assert (rule.selector.span.line, rule.selector.span.column) == _line("layer 2")
    entry = rule.value.items[1].items[1]
    assert isinstance(entry, s.Number) and entry.text == "1e-3"
    assert (entry.span.line, entry.span.column) == _line("1e-3")


def test_syntax_tree_contents():
    syn = parse_syntax(TEXT)
    assert [st.name for st in syn.settings] == ["dim", "vocab"]
    mine = syn.layers[2]
    assert mine.extern and mine.call.name == "myblock"
    assert [(a.name, a.value is None) for a in mine.call.args] == [
        ("window", False), ("causal", True), ("name", False)]
    assert mine.call.args[2].value.value == 'x "y"'
    parts = syn.bodies[0].parts
    assert [(tuple(n for n, _ in p.names), p.repeat) for p in parts] == [
        (("attn", "ffn"), 2), (("mine",), 1), ((), 1)]
    sels = [(r.selector.kind, r.selector.args) for r in syn.connects[0].rules]
    assert sels == [("all", ()), ("odd", ()), ("even", ()), ("layer", (2,)), ("range", (1, 3)),
                    ("every", (2,)), ("every", (3, 2))]
    assert syn.heads[0].call.name == "unembed"


def test_keywords_are_names_where_a_name_is_expected():
    text = """model m { dim = 8 vocab = 8 layer odd = mlp layer every = mlp layer repeat = mlp
              body = [odd, every, repeat] }"""
    syn = parse_syntax(text)
    assert [ld.name for ld in syn.layers] == ["odd", "every", "repeat"]


def test_comments_and_whitespace_are_ignored():
    a = parse_syntax("model m{dim=8 vocab=8 layer a=mlp body=[a]}")
    b = parse_syntax("model m {\n\t# hi\n dim = 8 # x\n vocab = 8\n layer a = mlp\n"
                     " body = [a]\n}\n")
    assert [st.name for st in a.settings] == [st.name for st in b.settings]
    assert a.layers[0].call.name == b.layers[0].call.name
