"""Lark's parse errors -> one Diagnostic that says what is wrong, where, and what to do.

Lark reports the token where parsing stopped and the terminals it would have taken there.
For an unclosed bracket that token is often lines below the mistake, so we also scan the
text up to the error for brackets still open: a missing '}' is reported right after the
last thing the user wrote before it, naming the '{' that is still open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lark

from hcdsl.errors import Diagnostic, Span

# Friendly names for the grammar's terminals, used in "expected ..." hints.
_TOKEN_NAMES = {
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "EQUAL": "'='", "NAME": "a name", "INT": "an integer",
    "SIGNED_NUMBER": "a number", "ESCAPED_STRING": "a string", "$END": "the end of the file",
    "__ANON_0": "'..'",
}
_ITEM_STARTS = {"NAME", "LAYER", "BODY", "CONNECT", "HEAD"}
_CLOSER = {"{": "}", "[": "]", "(": ")"}
_CLOSER_TOKEN = {"{": "RBRACE", "[": "RSQB", "(": "RPAR"}


@dataclass(frozen=True)
class _Open:
    char: str
    line: int
    column: int
    context: str  # "the model block 'm'", "the options of 'attention'", ...


@dataclass(frozen=True)
class _Scan:
    opened: tuple[_Open, ...]  # brackets still open at the error, innermost last
    last_end: tuple[int, int] | None  # line, column just after the last token before it


def _scan(source: str, stop_line: int, stop_col: int) -> _Scan:
    """Brackets open before (stop_line, stop_col), ignoring comments and strings."""
    stack: list[_Open] = []
    last_end = None
    words: list[str] = []  # the last few words and symbols seen, for context
    line, col, i = 1, 1, 0
    while i < len(source) and (line, col) < (stop_line, stop_col):
        c = source[i]
        if c == "\n":
            line, col, i = line + 1, 1, i + 1
            continue
        if c == "#":
            while i < len(source) and source[i] != "\n":
                i, col = i + 1, col + 1
            continue
        if c.isspace():
            i, col = i + 1, col + 1
            continue
        if c == '"':
            m = re.compile(r'"(\\.|[^"\\\n])*"?').match(source, i)
            width = m.end() - i
        elif c.isalnum() or c == "_" or c in ".-+":
            m = re.compile(r"[A-Za-z0-9_.+\-]+").match(source, i)
            width = m.end() - i
        else:
            width = 1
        if c in _CLOSER:
            stack.append(_Open(c, line, col, _context(c, words)))
        elif c in _CLOSER.values() and stack and _CLOSER[stack[-1].char] == c:
            stack.pop()
        words = (words + [source[i:i + width]])[-3:]
        i, col = i + width, col + width
        last_end = (line, col)
    return _Scan(tuple(stack), last_end)


def _context(char: str, words: list[str]) -> str:
    """What an opening bracket opens, from the few words before it."""
    before = ([""] * 2 + words)[-2:]
    if char == "{":
        return f"the model '{before[1]}'" if before[0] == "model" else "the connect block"
    if char == "(":
        return f"the options of '{before[1]}'"
    if before == ["body", "="] or before[0] == "repeat":
        return "a body block"
    return "a list"


def _expected(names: set[str]) -> str:
    if names and _ITEM_STARTS <= names:
        rest = names - _ITEM_STARTS
        extra = [_TOKEN_NAMES.get(n, f"'{n.lower()}'") for n in sorted(rest)]
        return "a new item (`name = value`, `layer`, `body`, `connect`, `head`)" + (
            " or " + " or ".join(extra) if extra else "")
    pretty = sorted(_TOKEN_NAMES.get(n, f"'{n.lower()}'") for n in names)
    if len(pretty) > 1:
        return ", ".join(pretty[:-1]) + " or " + pretty[-1]
    return pretty[0] if pretty else "nothing more"


def _accepts(err: lark.exceptions.UnexpectedInput) -> set[str]:
    parser = getattr(err, "interactive_parser", None)
    try:
        return set(parser.accepts()) if parser is not None else set()
    except Exception:  # noqa: BLE001 - only a hint; lark's own expected set will do
        return set(getattr(err, "expected", None) or getattr(err, "allowed", None) or ())


def _describe(token: lark.Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "SIGNED_NUMBER" or token.type == "INT":
        return f"number '{token}'"
    if token.type == "ESCAPED_STRING":
        return f"string {token}"
    if token.type == "NAME":
        return f"name '{token}'"
    return f"'{token}'"


def _unclosed(scan: _Scan, accepts: set[str], token: lark.Token) -> _Open | None:
    """The bracket whose closer is missing: the innermost open one, if its closer fits here
    and the parse stopped on a later line (or at the end of the file)."""
    if not scan.opened:
        return None
    top = scan.opened[-1]
    if _CLOSER_TOKEN[top.char] not in accepts:
        return None
    if token.type == "$END" or scan.last_end is not None and token.line > scan.last_end[0]:
        return top
    return None


def syntax_diagnostic(err: lark.exceptions.UnexpectedInput, source: str) -> Diagnostic:
    """Turn a lark parse error into a diagnostic with a hint."""
    accepts = _accepts(err)
    if isinstance(err, lark.exceptions.UnexpectedToken):
        token = err.token
        if token.type == "$END":
            end = len(source) + 1
            scan = _scan(source, end, end)
        else:
            scan = _scan(source, token.line, token.column)
        missing = _unclosed(scan, accepts, token)
        after = scan.last_end or (1, 1)
        at_after = Span(after[0], after[1], after[0], after[1] + 1)
        if missing is not None:
            closer = _CLOSER[missing.char]
            before = ("the end of the file" if token.type == "$END"
                      else f"'{token}' on line {token.line}")
            return Diagnostic(
                f"missing '{closer}': the '{missing.char}' at {missing.line}:{missing.column} "
                f"that opens {missing.context} is not closed",
                at_after, f"add '{closer}' here, before {before}")
        if token.type == "$END":
            hint = f"expected {_expected(accepts)}; is the file truncated?"
            if scan.opened:
                hint += " Still open: " + ", ".join(
                    f"'{o.char}' at {o.line}:{o.column} ({o.context})"
                    for o in reversed(scan.opened))
            if not source.strip():
                return Diagnostic("the spec is empty", at_after,
                                  "a spec is one model: model NAME { dim = ... }")
            return Diagnostic("unexpected end of file", at_after, hint)
        span = Span(token.line, token.column, token.line,
                    token.column + max(len(str(token)), 1))
        if accepts == {"$END"}:
            return Diagnostic(f"unexpected {_describe(token)} after the end of the model",
                              span, "a file holds one model: remove this, or check for a "
                              "'}' closing the model too early")
        where = f" in {scan.opened[-1].context}" if scan.opened else ""
        hint = f"expected {_expected(accepts)}"
        if "COMMA" in accepts and token.type in ("NAME", "SIGNED_NUMBER", "INT", "LSQB"):
            hint += "; is a ',' missing?"
        return Diagnostic(f"unexpected {_describe(token)}{where}", span, hint)
    # UnexpectedCharacters (and, defensively, anything else lark raises)
    line, col = getattr(err, "line", 1) or 1, getattr(err, "column", 1) or 1
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    char = text[col - 1] if 0 < col <= len(text) else getattr(err, "char", "?")
    span = Span(line, col, line, col + 1)
    if char == '"':
        return Diagnostic("unterminated string", Span(line, col, line, len(text) + 1),
                          "close the string with '\"' on the same line")
    scan = _scan(source, line, col)
    where = f" in {scan.opened[-1].context}" if scan.opened else ""
    hint = (f"expected {_expected(accepts)}" if accepts else None)
    if not (char.isalnum() or char in "_{}[]()=,.#\"-+"):
        hint = (f"'{char}' is not part of the .hc language (names are letters, digits and "
                "'_'; comments start with '#')" + (f"; {hint}" if hint else ""))
    return Diagnostic(f"unexpected character '{char}'{where}", span, hint)
