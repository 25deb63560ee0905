"""Parse .hc text with the LALR grammar in grammar/hc.lark into a ModelSyntax."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import lark
from lark import Token, Transformer, v_args

from hcdsl.errors import Diagnostic, HcError, Span
from hcdsl.frontend import syntax as s

# Friendly names for the grammar's terminals, used in "expected ..." messages.
_TOKEN_NAMES = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "EQUAL": "'='", "NAME": "a name", "INT": "an integer",
    "SIGNED_NUMBER": "a number", "ESCAPED_STRING": "a string", "MODEL": "'model'",
    "LAYER": "'layer'", "BODY": "'body'", "CONNECT": "'connect'", "HEAD": "'head'",
    "REPEAT": "'repeat'", "EXTERN": "'extern'", "$END": "end of file",
}


def grammar_text() -> str:
    return resources.files("hcdsl.grammar").joinpath("hc.lark").read_text()


@lru_cache(maxsize=1)
def make_parser(strict: bool = False) -> lark.Lark:
    return lark.Lark(
        grammar_text(), parser="lalr", propagate_positions=True, maybe_placeholders=False,
        strict=strict,
    )


def _span(x: object) -> Span:
    return Span.of(x)


@v_args(meta=True)
class _ToSyntax(Transformer):
    """Lark tree -> syntax dataclasses, keeping every span."""

    def start(self, meta, children):
        return children[0]

    def model(self, meta, children):
        name, *items = children
        model = s.ModelSyntax(str(name), _span(meta))
        for item in items:
            target = {
                s.Setting: model.settings, s.LayerDef: model.layers, s.BodyDef: model.bodies,
                s.ConnectDef: model.connects, s.HeadDef: model.heads,
            }[type(item)]
            target.append(item)
        return model

    def setting(self, meta, children):
        name, value = children
        return s.Setting(str(name), value, _span(meta))

    def layer_def(self, meta, children):
        name = children[0]
        extern = len(children) == 3
        return s.LayerDef(str(name), children[-1], extern, _span(meta), _span(name))

    def body_def(self, meta, children):
        return s.BodyDef(tuple(children), _span(meta))

    def repeat(self, meta, children):
        count, group = children
        return s.BlockRef(group, int(count), _span(meta))

    def block(self, meta, children):
        return s.BlockRef(children[0], 1, _span(meta))

    def group(self, meta, children):
        return tuple((str(t), _span(t)) for t in children if t is not None)

    def connect_def(self, meta, children):
        call = children[0]
        rules = children[1] if len(children) > 1 else ()
        return s.ConnectDef(call, tuple(rules), _span(meta))

    def connect_block(self, meta, children):
        return tuple(children)

    def rule(self, meta, children):
        selector, value = children
        return s.Rule(selector, value, _span(meta))

    def _selector(kind):  # noqa: N805 - a factory for the selector rules below
        def build(self, meta, children):
            return s.Selector(kind, tuple(int(c) for c in children), _span(meta))

        return build

    sel_all = _selector("all")
    sel_odd = _selector("odd")
    sel_even = _selector("even")
    sel_layer = _selector("layer")
    sel_range = _selector("range")
    sel_every = _selector("every")

    def head_def(self, meta, children):
        return s.HeadDef(children[0], _span(meta))

    def call(self, meta, children):
        name, *args = children
        return s.Call(str(name), tuple(args), _span(meta), _span(name))

    call_value = call

    def kwarg(self, meta, children):
        name, value = children
        return s.Arg(str(name), value, _span(meta))

    def flag(self, meta, children):
        return s.Arg(str(children[0]), None, _span(meta))

    def number(self, meta, children):
        tok = children[0]
        return s.Number(float(tok), str(tok), _span(tok))

    def name(self, meta, children):
        return s.Name(str(children[0]), _span(meta))

    def string(self, meta, children):
        return s.String(str(children[0])[1:-1], _span(meta))

    def list(self, meta, children):
        return s.ListValue(tuple(children), _span(meta))


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    return f"'{token}'"


def _expected(names: set[str]) -> str:
    pretty = sorted({
        "end of file" if "END" in n else _TOKEN_NAMES.get(n, f"'{n.lower()}'") for n in names
    })
    if len(pretty) > 6:
        pretty = pretty[:6] + ["..."]
    return ", ".join(pretty)


def _syntax_diagnostic(err: lark.exceptions.UnexpectedInput, source: str) -> Diagnostic:
    """Turn a lark error into file:line:col with a hint."""
    lines = source.splitlines() or [""]
    if isinstance(err, lark.exceptions.UnexpectedToken) and err.token.type == "$END":
        last = len(lines)
        col = len(lines[-1]) + 1 if lines else 1
        opened = source.count("{") - source.count("}")
        hint = (
            f"the file ends inside a block: {opened} '{{' not closed"
            if opened > 0
            else f"expected {_expected(err.expected)}"
        )
        return Diagnostic("unexpected end of file (is the file truncated?)",
                          Span(last, col, last, col + 1), hint)
    line, col = err.line, err.column
    if isinstance(err, lark.exceptions.UnexpectedToken):
        tok = err.token
        span = Span(line, col, line, col + max(len(str(tok)), 1))
        expected = err.expected
        hint = f"expected {_expected(expected)}"
        if "RSQB" in expected and tok.type != "RSQB":
            hint = "a ']' is missing: close the list or group before this point"
        elif "RBRACE" in expected and tok.type in ("$END", "MODEL"):
            hint = "a '}' is missing: close the model block"
        return Diagnostic(f"unexpected {_describe(tok)}", span, hint)
    # UnexpectedCharacters
    char = source.splitlines()[line - 1][col - 1] if line <= len(lines) else "?"
    allowed = getattr(err, "allowed", set()) or set()
    return Diagnostic(f"unexpected character '{char}'", Span(line, col, line, col + 1),
                      f"expected {_expected(allowed)}" if allowed else None)


def parse_syntax(source: str, filename: str = "<spec>") -> s.ModelSyntax:
    try:
        tree = make_parser().parse(source)
    except lark.exceptions.UnexpectedInput as err:
        raise HcError([_syntax_diagnostic(err, source)], filename, source) from None
    return _ToSyntax().transform(tree)
