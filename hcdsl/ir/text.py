"""The IR as text and back: `parse(text) -> IR` reads what `dump` (hcdsl/ir/dump.py) and
`dump_exact` write, and `same(a, b)` / `differences(a, b)` define when two IRs are equal.

The text, one node a line in a topological order, after a header naming the model:

    ir NAME  # N nodes
    ID = OP(FIELD=VALUE, ...) (PORT=PRODUCER, ...) -> TYPE

A VALUE is a number, True/False, a bare word, a "quoted string", a list [V, ...], or a
nested payload OP(FIELD=VALUE, ...). Every payload field is read by its declared type (an
int field reads 2, a float field reads 2 as 2.0, a str field reads any word), and a quiet
field the line leaves out takes its default. TYPE is checked, not trusted: the node's type
is inferred from its inputs, and a line whose written type differs is an error. Full-line
comments start with `//`; blank lines are skipped.

`dump` is the readable form of the goldens and `hcdsl show --ir`; it leaves out two things:
the layers of a `parallel_layers` node (only their kinds) and, where a field holds any
scalar (a layer's args, a template's entries), whether 1 was the float 1.0 and whether True
was a word. `dump_exact` writes the same lines but complete: a parallel node's layers in
full, such floats with their point, such words quoted. So

    parse(dump_exact(ir)) is the same IR (strictly: equal payloads of equal types, the same
    node ids, the same edges and ports, the same name), and
    parse(dump(ir)) == ir payload by payload (Python equality: 1 == 1.0) whenever ir has no
    parallel_layers node (its short line is refused with a hint) and no name or string value
    that needs quotes (spaces, commas, brackets: an extern layer's option may hold any).
"""

from __future__ import annotations

import dataclasses
import re
import typing

import pydantic
from dataclasses import fields
from functools import lru_cache

from hcdsl.errors import Diagnostic, HcError, Span
from hcdsl.frontend.generator import read_generator_text
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.types import IRTypeError
from hcdsl.lang.expr import parse as parse_expr, render
from hcdsl.schemes.primitive import GeneratorNames

KIND_BY_OP: dict[str, type[n.Node]] = {k.op: k for k in n.KINDS}


class IRParseError(HcError):
    """A mistake in IR text, located at its line and column (rendered like a spec error)."""


# -- writing ------------------------------------------------------------------------------
def dump_exact(ir: IR) -> str:
    """`dump`'s text, complete: parse() gives back exactly this IR (module doc)."""
    types = ir.types()
    name = ir.name if _ATOM.fullmatch(ir.name) else _quote(ir.name)
    lines = [f"ir {name}  # {len(ir)} nodes"]
    for v in ir.order():
        ins = ", ".join(f"{p}={u}" for p, u in ir.inputs(v).items())
        lines.append(f"{v} = {describe_exact(ir.payload(v))} ({ins}) -> {types[v]}")
    return "\n".join(lines) + "\n"


def describe_exact(payload: n.Node) -> str:
    """payload.describe(), with every field written so that it reads back exactly (a
    generator's readable line is exact: its settings read back into the same record)."""
    if isinstance(payload, n.GeneratorCoef):
        return payload.describe()
    hints = _hints(type(payload))
    parts = [
        f"{f.name}={_value(getattr(payload, f.name), hints[f.name])}" for f in fields(payload)
        if not (f.metadata.get("quiet") and getattr(payload, f.name) == f.default)
    ]
    return f"{payload.op}({', '.join(parts)})"


_ATOM = re.compile(r'[^\s()\[\],="]+')
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?|[-+]?(inf|nan)")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _value(value: object, hint: object) -> str:
    if isinstance(value, n.Node):
        return describe_exact(value)
    if isinstance(value, pydantic.BaseModel):  # a record (a generator): its JSON, quoted
        return _quote(value.model_dump_json())
    if isinstance(value, tuple):
        items = zip(value, _item_hints(hint, len(value)))
        return "[" + ", ".join(_value(v, h) for v, h in items) + "]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if hint is float and value.is_integer():
            return str(int(value))  # as dump writes it: the field's type says float
        return repr(value)  # 1.0 where any scalar may stand: the point says it is a float
    if isinstance(value, str):
        if _ATOM.fullmatch(value) and not value.startswith("->") and (
                hint is str or _scalar(value) == value):
            return value
        return _quote(value)
    return str(value)


def _scalar(word: str) -> object:
    """A bare word where any scalar may stand: True/False, an int, a float, else the word."""
    if word in ("True", "False"):
        return word == "True"
    if _INT.fullmatch(word):
        return int(word)
    if _FLOAT.fullmatch(word):
        return float(word)
    return word


@lru_cache(maxsize=None)
def _hints(kind: type) -> dict[str, object]:
    return typing.get_type_hints(kind)


def _item_hints(hint: object, count: int) -> list[object]:
    """The element types of a tuple type, for a tuple of `count` items."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return [args[0]] * count
        if len(args) == count:
            return list(args)
    return [object] * count


# -- reading ------------------------------------------------------------------------------
@dataclasses.dataclass
class _Tok:
    kind: str  # atom | str | punct
    text: str  # the atom or the string's value, or the punctuation
    line: int
    col: int  # 1-based
    end: int  # 1-based, exclusive


@dataclasses.dataclass
class _Val:
    kind: str  # atom | str | list | call
    tok: _Tok
    items: list = dataclasses.field(default_factory=list)  # list items; call: (name tok, _Val)


class _Reader:
    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename

    def fail(self, message: str, line: int, col: int, end: int | None = None,
             hint: str | None = None) -> typing.NoReturn:
        span = Span(line, col, line, end if end is not None else col + 1)
        raise IRParseError([Diagnostic(message, span, hint)], self.filename, self.text)

    def fail_at(self, tok: _Tok, message: str, hint: str | None = None) -> typing.NoReturn:
        self.fail(message, tok.line, tok.col, tok.end, hint)

    # tokens of one line
    def tokens(self, line: str, no: int, start: int) -> list[_Tok]:
        out, i = [], start
        while i < len(line):
            c = line[i]
            if c.isspace():
                i += 1
            elif c in "()[],=":
                out.append(_Tok("punct", c, no, i + 1, i + 2))
                i += 1
            elif c == '"':
                j, chars = i + 1, []
                while j < len(line) and line[j] != '"':
                    if line[j] == "\\" and j + 1 < len(line):
                        chars.append({"n": "\n"}.get(line[j + 1], line[j + 1]))
                        j += 2
                    else:
                        chars.append(line[j])
                        j += 1
                if j >= len(line):
                    self.fail("unterminated string", no, i + 1, len(line) + 1,
                              'close it with " (write \\" for a quote inside)')
                out.append(_Tok("str", "".join(chars), no, i + 1, j + 2))
                i = j + 1
            else:
                m = _ATOM.match(line, i)
                if line.startswith("->", i):
                    out.append(_Tok("punct", "->", no, i + 1, i + 3))
                    i += 2
                    continue
                out.append(_Tok("atom", m.group(), no, i + 1, m.end() + 1))
                i = m.end()
        return out


class _Line:
    """A cursor over one line's tokens."""

    def __init__(self, reader: _Reader, toks: list[_Tok], no: int, text: str) -> None:
        self.r, self.toks, self.i, self.no, self.text = reader, toks, 0, no, text

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, what: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            self.r.fail(f"expected {what}, found the end of the line", self.no,
                        len(self.text) + 1, hint=_LINE_HINT)
        self.i += 1
        return tok

    def expect(self, punct: str, what: str | None = None) -> _Tok:
        tok = self.next(f"'{punct}'")
        if tok.kind != "punct" or tok.text != punct:
            self.r.fail_at(tok, f"expected '{punct}'{' ' + what if what else ''}, found "
                                f"'{tok.text}'", _LINE_HINT)
        return tok

    def atom(self, what: str) -> _Tok:
        tok = self.next(what)
        if tok.kind != "atom":
            self.r.fail_at(tok, f"expected {what}, found '{tok.text}'", _LINE_HINT)
        return tok

    def at(self, punct: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == punct

    def value(self) -> _Val:
        tok = self.next("a value")
        if tok.kind == "str":
            return _Val("str", tok)
        if tok.kind == "punct" and tok.text == "[":
            items: list[_Val] = []
            while not self.at("]"):
                start = self.i
                items.append(self.arithmetic(start) if self.at("(") else self.value())
                if not self.at("]") and not self.at(","):  # `1 - g` as the short dump writes it
                    items[-1] = self.arithmetic(start)
                if not self.at("]"):
                    self.expect(",", "between list items")
            self.expect("]")
            return _Val("list", tok, items)
        if tok.kind != "atom":
            self.r.fail_at(tok, f"expected a value, found '{tok.text}'",
                           "a value is a number, True/False, a word, a \"string\", a list "
                           "[...] or a payload op(field=value, ...)")
        if self.at("(") and tok.text in KIND_BY_OP:  # a nested payload
            return _Val("call", tok, self.call_fields())
        return _Val("atom", tok)

    def arithmetic(self, start: int) -> _Val:
        """A list item written as arithmetic (a template entry `1 - 0.1 * f1`, `a / (a + b)`,
        unquoted in the short dump): the tokens up to the item's end, as the canonical text
        of hcdsl.lang.expr; unchanged when they are not arithmetic (the caller then reports
        what follows)."""
        j, depth = start, 0
        while j < len(self.toks):
            t = self.toks[j]
            if t.kind == "punct" and t.text in "([":
                depth += 1
            elif t.kind == "punct" and t.text in ")]" and depth:
                depth -= 1
            elif t.kind == "punct" and t.text in ",]" and not depth:
                break
            j += 1
        part = self.toks[start:j]
        try:
            text = render(parse_expr(" ".join(t.text for t in part)))
        except (ValueError, IndexError):
            self.i = start
            return self.value()
        self.i = j
        return _Val("str", _Tok("str", text, part[0].line, part[0].col, part[-1].end))

    def call_fields(self) -> list[tuple[_Tok, _Val]]:
        self.expect("(")
        out: list[tuple[_Tok, _Val]] = []
        while not self.at(")"):
            name = self.atom("a field name")
            self.expect("=", f"after the field name '{name.text}'")
            out.append((name, self.value()))
            if not self.at(")"):
                self.expect(",", "between fields")
        self.expect(")")
        return out


_LINE_HINT = "a node line reads: ID = OP(FIELD=VALUE, ...) (PORT=PRODUCER, ...) -> TYPE"


def _build(r: _Reader, op: _Tok, items: list[tuple[_Tok, _Val]]) -> n.Node:
    """The payload OP(fields), each field read by its declared type."""
    kind = KIND_BY_OP.get(op.text)
    if kind is None:
        r.fail_at(op, f"unknown operation '{op.text}'",
                  f"operations are: {', '.join(sorted(KIND_BY_OP))}")
    hints, given = _hints(kind), {}
    declared = {f.name: f for f in fields(kind)}
    for name, val in items:
        if name.text not in declared:
            if kind is n.ParallelLayers and name.text == "kinds":
                r.fail_at(name, "this parallel_layers line names its layers' kinds only "
                                "(the short form `dump` writes)",
                          "write the IR with hcdsl.ir.text.dump_exact: it gives the layers "
                          "in full (layers=[layer(...), ...])")
            r.fail_at(name, f"{op.text} has no field '{name.text}'",
                      f"its fields are: {', '.join(declared) or 'none'}")
        if name.text in given:
            r.fail_at(name, f"field '{name.text}' given twice")
        given[name.text] = _coerce(r, val, hints[name.text], f"{op.text}.{name.text}")
    missing = [f for f in declared.values() if f.name not in given
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        r.fail_at(op, f"{op.text} lacks the field{'s' if len(missing) > 1 else ''} "
                      f"{', '.join(f.name for f in missing)}",
                  f"give every field: {', '.join(declared)}")
    return kind(**given)


def _coerce(r: _Reader, val: _Val, hint: object, where: str) -> object:
    tok = val.tok

    def wrong(what: str) -> typing.NoReturn:
        r.fail_at(tok, f"{where} expects {what}, found '{tok.text}'")

    if typing.get_origin(hint) is typing.Union:
        for option in typing.get_args(hint):
            try:
                return _coerce(r, val, option, where)
            except IRParseError:
                continue
        wrong(str(hint))
    if isinstance(hint, type) and issubclass(hint, pydantic.BaseModel):
        if val.kind != "str":
            wrong(f"a quoted {hint.__name__} record (JSON)")
        try:
            return hint.model_validate_json(tok.text)
        except pydantic.ValidationError as exc:
            r.fail_at(tok, f"{where}: not a {hint.__name__} record: "
                           f"{exc.errors()[0]['msg']}")
    if typing.get_origin(hint) is typing.Literal:  # a field with a fixed set of words
        allowed = typing.get_args(hint)
        if val.kind not in ("atom", "str") or tok.text not in allowed:
            r.fail_at(tok, f"{where} expects one of {', '.join(map(str, allowed))}, "
                           f"found '{tok.text}'")
        return tok.text
    if typing.get_origin(hint) is tuple or hint is tuple:
        if val.kind != "list":
            wrong("a list [...]")
        hints = _item_hints(hint, len(val.items))
        args = typing.get_args(hint)
        if args and args[-1] is not Ellipsis and len(args) != len(val.items):
            wrong(f"a list of {len(args)} items")
        return tuple(_coerce(r, v, h, where) for v, h in zip(val.items, hints))
    if isinstance(hint, type) and issubclass(hint, n.Node):
        if val.kind != "call":
            wrong(f"a payload {hint.op}(...)")
        got = _build(r, tok, val.items)
        if not isinstance(got, hint):
            wrong(f"a payload {hint.op}(...)")
        return got
    if val.kind in ("list", "call"):
        wrong("a scalar" if hint is object else getattr(hint, "__name__", str(hint)))
    if val.kind == "str":
        if hint in (str, object):
            return tok.text
        wrong(getattr(hint, "__name__", str(hint)))
    word = tok.text
    if hint is str:
        return word
    if hint is bool:
        if word not in ("True", "False"):
            wrong("True or False")
        return word == "True"
    if hint is int:
        if not _INT.fullmatch(word):
            wrong("an integer")
        return int(word)
    if hint is float:
        if not _FLOAT.fullmatch(word):
            wrong("a number")
        return float(word)
    if hint is object:
        return _scalar(word)
    wrong(str(hint))  # pragma: no cover - a payload field of a type this reader lacks


_GEN_HEAD = re.compile(r"role=(step|readout), n=(\d+), width=(\d+)(?:, fractions=(\d+))?"
                       r"(?:, names=(\w+))?")


def _generator(r: _Reader, op: _Tok, line: str) -> tuple[n.GeneratorCoef, int]:
    """A generator written as `dump` writes it, `generator(role=R, n=N, width=C[, names=X];
    SETTING; ...)`, read with the language's own generator reader; and the index in `line`
    where its inputs start."""
    depth, i = 0, op.end - 1  # op.end is 1-based: the index just after the op
    start = i
    while i < len(line):
        depth += {"(": 1, ")": -1}.get(line[i], 0)
        i += 1
        if depth == 0:
            break
    if depth != 0 or line[start] != "(":
        r.fail_at(op, "a generator line needs its settings in one pair of parentheses",
                  _LINE_HINT)
    head, *settings = line[start + 1:i - 1].split(";")
    m = _GEN_HEAD.fullmatch(head.strip())
    if m is None:
        r.fail_at(op, f"expected `generator(role=step|readout, n=N, width=C[, fractions=M]"
                      f"[, names=X]; "
                      f"...)`, found `{head.strip()}`", _LINE_HINT)
    role, count, width, names = m.group(1), int(m.group(2)), int(m.group(3)), m.group(5)
    fractions = int(m.group(4) or 1)
    if names is not None and names not in typing.get_args(GeneratorNames):
        r.fail_at(op, f"generator: names={names} is not one of "
                      f"{', '.join(typing.get_args(GeneratorNames))}", _LINE_HINT)
    try:
        rec = read_generator_text([x.strip() for x in settings], count,
                                  "readout" if role == "readout" else "", fractions)
    except HcError as err:
        r.fail_at(op, "the generator's settings do not read: " + "; ".join(
            d.message for d in err.diagnostics), "write them as in a spec's generator block")
    try:
        return n.GeneratorCoef(rec, count, width, role, names or "outputs"), i
    except (TypeError, ValueError) as err:
        r.fail_at(op, f"generator: {err}", _LINE_HINT)


def parse(text: str, filename: str = "<ir>") -> IR:
    """IR text (as dump or dump_exact write it) -> the IR; a mistake is an IRParseError
    naming the line and column, with a hint."""
    r = _Reader(text, filename)
    lines = text.splitlines()
    header, body = None, []
    for no, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        if header is None:
            header = (no, line)
        else:
            body.append((no, line))
    if header is None:
        r.fail("no IR here: the text is empty", 1, 1,
               hint="IR text starts with a line `ir NAME  # N nodes`")
    no, line = header
    m = re.fullmatch(r'\s*ir\s+("(?:[^"\\]|\\.)*"|\S+)(?:\s+#\s*(\d+)\s+nodes?)?\s*', line)
    if not m:
        r.fail("expected the header `ir NAME  # N nodes`", no, 1, len(line) + 1,
               hint='IR text starts with a line `ir NAME  # N nodes` (a NAME with spaces '
                    'in "quotes")')
    name = m.group(1)
    if name.startswith('"'):
        name = r.tokens(name, no, 0)[0].text
    ir = IR(name)
    count = (int(m.group(2)), no, m.start(2) + 1, m.end(2) + 1) if m.group(2) else None

    where: dict[str, tuple[_Tok, _Tok | None]] = {}  # node id -> its id token, type token
    edges: list[tuple[_Tok, str, _Tok]] = []  # (port token, consumer, producer token)
    for no, line in body:
        cur = _Line(r, r.tokens(line, no, 0), no, line)
        node = cur.atom("a node id")
        cur.expect("=", f"after the node id '{node.text}'")
        op = cur.atom("an operation")
        if op.text == n.GeneratorCoef.op and ";" in line:  # the readable form: its settings
            payload, end = _generator(r, op, line)
            cur = _Line(r, r.tokens(line, no, end), no, line)
        else:
            payload = _build(r, op, cur.call_fields())
        if node.text in where:
            r.fail_at(node, f"node id '{node.text}' defined twice",
                      f"it was first defined on line {where[node.text][0].line}")
        ir.add(node.text, payload)
        cur.expect("(", "before the node's inputs (PORT=PRODUCER, ...)")
        ports: set[str] = set()
        while not cur.at(")"):
            port = cur.atom("a port name")
            cur.expect("=", f"after the port '{port.text}'")
            src = cur.atom("a producer's node id")
            if port.text in ports:
                r.fail_at(port, f"port '{port.text}' wired twice")
            ports.add(port.text)
            edges.append((port, node.text, src))
            if not cur.at(")"):
                cur.expect(",", "between inputs")
        cur.expect(")")
        type_tok = None
        if cur.peek() is not None:
            arrow = cur.expect("->", "before the node's type")
            written = line[arrow.end - 1:].strip()
            if not written:
                r.fail("expected the node's type after '->'", no, arrow.end, hint=_LINE_HINT)
            col = line.index(written, arrow.end - 1) + 1
            type_tok = _Tok("atom", written, no, col, col + len(written))
        where[node.text] = (node, type_tok)
    for port, dst, src in edges:
        if src.text not in where:
            r.fail_at(src, f"node '{dst}' reads '{src.text}', which no line defines")
        ir.connect(src.text, dst, port.text)
    if count is not None and count[0] != len(ir):
        r.fail(f"the header says {count[0]} nodes, the text has {len(ir)}", *count[1:])
    for v, (node, type_tok) in where.items():
        payload = ir.payload(v)
        want, have = set(payload.ports()), set(ir.inputs(v))
        if want != have:
            r.fail_at(node, f"node '{v}' ({payload.op}) is wired on ports {sorted(have)}, "
                            f"its operation reads {sorted(want)}")
    types = {}
    for v in ir.order():  # producers first: the first node whose inputs do not fit is named
        node, type_tok = where[v]
        try:
            got = types[v] = ir.payload(v).infer({p: types[u] for p, u in ir.inputs(v).items()})
        except IRTypeError as exc:
            r.fail_at(node, f"node '{v}': {exc}", "its inputs do not fit its operation")
        if type_tok is not None and str(got) != type_tok.text:
            r.fail_at(type_tok, f"node '{v}' is written as {type_tok.text} but its inputs "
                                f"make it {got}", "the type after '->' is checked, not trusted")
    return ir


# -- equality -----------------------------------------------------------------------------
def differences(a: IR, b: IR, limit: int = 10) -> list[str]:
    """How two IRs differ (empty: the same IR): the name, the node ids, each node's payload
    (equal fields of equal Python types: 1 is not 1.0), and each node's inputs by port."""
    out: list[str] = []
    if a.name != b.name:
        out.append(f"name: {a.name!r} != {b.name!r}")
    na, nb = set(a.g.nodes), set(b.g.nodes)
    if na - nb:
        out.append(f"only in the first: {sorted(na - nb)}")
    if nb - na:
        out.append(f"only in the second: {sorted(nb - na)}")
    for v in sorted(na & nb):
        pa, pb = a.payload(v), b.payload(v)
        if not _strict(pa, pb):
            out.append(f"{v}: {describe_exact(pa)} != {describe_exact(pb)}")
        ea = sorted((port, u) for u, keys in a.g._pred[v].items() for port in keys)
        eb = sorted((port, u) for u, keys in b.g._pred[v].items() for port in keys)
        if ea != eb:
            out.append(f"{v}: inputs {ea} != {eb}")
        if len(out) >= limit:
            break
    return out


def same(a: IR, b: IR) -> bool:
    """The one IR equality (see differences)."""
    return not differences(a, b, limit=1)


def _strict(x: object, y: object) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, tuple):
        return len(x) == len(y) and all(_strict(u, v) for u, v in zip(x, y))
    if dataclasses.is_dataclass(x):
        return all(_strict(getattr(x, f.name), getattr(y, f.name)) for f in fields(x))
    return x == y or (x != x and y != y)  # NaN equals NaN here
