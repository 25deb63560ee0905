"""Parse .hc text with the LALR grammar in grammar/hc.lark into a ModelSyntax."""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import lark
from lark import Transformer, v_args

from hcdsl.errors import Diagnostic, HcError, Span
from hcdsl.frontend import syntax as s
from hcdsl.frontend.syntax_errors import syntax_diagnostic


def grammar_text() -> str:
    return resources.files("hcdsl.grammar").joinpath("hc.lark").read_text()


def _cache_file(grammar: str) -> str | bool:
    """Where lark keeps the built LALR tables between runs (building them costs more than
    the rest of `hcdsl check`): a file in the user's own cache directory, named by the
    grammar's and lark's version, or no cache when that directory cannot be made private."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hcdsl"
    digest = hashlib.sha256(f"{lark.__version__}\n{grammar}".encode()).hexdigest()[:16]
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if root.stat().st_uid != os.getuid() or root.stat().st_mode & 0o022:
            return False  # not ours alone: never load a pickle others could write
    except (OSError, AttributeError):  # read-only home, no getuid (Windows)
        return False
    return str(root / f"grammar-{digest}.lark")


@lru_cache(maxsize=2)
def make_parser(strict: bool = False) -> lark.Lark:
    grammar = grammar_text()
    return lark.Lark(
        grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False,
        strict=strict, cache=False if strict else _cache_file(grammar),
    )


def _span(x: object) -> Span:
    return Span.of(x)


@v_args(meta=True)
class _ToSyntax(Transformer):
    """Lark tree -> syntax dataclasses, keeping every span."""

    def start(self, meta, children):
        *connections, model = children
        model.connections.extend(connections)
        return model

    def connection_def(self, meta, children):
        name, *items = children
        conn = s.ConnectionSyntax(str(name), _span(meta), _span(name))
        for item in items:
            {s.Setting: conn.settings, s.ParamDef: conn.params, s.Rule: conn.rules,
             s.GeneratorSyntax: conn.generators}[type(item)].append(item)
        return conn

    def generator_def(self, meta, children):
        named = children and isinstance(children[0], lark.Token)
        name = str(children[0]) if named else ""
        settings = tuple(children[1:] if named else children)
        span = _span(meta)
        return s.GeneratorSyntax(name, settings, span, _span(children[0]) if named else span)

    def param_def(self, meta, children):
        name, value = children
        return s.ParamDef(str(name), value, _span(meta), _span(name))

    def model(self, meta, children):
        name, *items = children
        model = s.ModelSyntax(str(name), _span(meta), _span(name))
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
        return s.BlockRef(group, _int(count), _span(meta))

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
            return s.Selector(kind, tuple(_int(c) for c in children), _span(meta))

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
        return s.String(_unescape(str(children[0])[1:-1]), _span(meta))

    def list(self, meta, children):
        return s.ListValue(tuple(children), _span(meta))

    def _expr(op):  # noqa: N805 - a factory for the arithmetic rules below
        def build(self, meta, children):
            return s.Expr(op, tuple(children), _span(meta))

        return build

    e_add = _expr("+")
    e_sub = _expr("-")
    e_mul = _expr("*")
    e_div = _expr("/")
    e_neg = _expr("neg")


def _int(token: object) -> int:
    """An INT token's value. One written with more than 100 digits counts as 10**100, over
    every limit (messages show it as ">= 1e15"): int() refuses more than 4,300 digits."""
    text = str(token)
    return int(text) if len(text) <= 100 else 10**100


def _unescape(body: str) -> str:
    """The text of a string literal: backslash escapes \\" and \\\\ resolved."""
    return re.sub(r"\\(.)", r"\1", body)


def parse_syntax(source: str, filename: str = "<spec>") -> s.ModelSyntax:
    try:
        tree = make_parser().parse(source)
    except lark.exceptions.UnexpectedInput as err:
        raise HcError([syntax_diagnostic(err, source)], filename, source) from None
    except RecursionError:
        raise HcError([Diagnostic("the spec is nested too deeply to parse")], filename,
                      source) from None
    try:
        return _ToSyntax().transform(tree)
    except (lark.exceptions.VisitError, RecursionError):  # lists nested thousands deep
        raise HcError([Diagnostic("the spec is nested too deeply to read")], filename,
                      source) from None
