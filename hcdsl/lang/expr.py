"""Arithmetic in a connection's matrix entries: `1 - g`, `0.5 * g`, `g * h + 0.25`, `-(a + b)`,
`a / (a + b)`.

A template entry is a number, a param name, or the canonical text of an expression over
numbers and param names with + - * / and unary minus (no calls: a spec cannot execute code).
The text is what the printer writes and the IR dump shows; every consumer (the module, the
value at init, the prover) evaluates it with its own numbers through `evaluate`, which only
adds, subtracts, multiplies and divides the values it is given (times the divisor's
reciprocal: a tensor's `reciprocal()`, a prover coefficient's `inverse()`, else 1 / it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Union

Tree = Union[float, str, tuple]  # number | name | ("+"|"-"|"*"|"/", a, b) | ("neg", a)
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|"
                    r"([A-Za-z_][A-Za-z0-9_]*)|(.))")
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def is_expression(entry: object) -> bool:
    """A template entry that is an expression (not a number, not a bare name)."""
    return isinstance(entry, str) and not entry.isidentifier()


def _tokens(text: str) -> list[tuple[str, str]]:
    out = []
    for m in _TOKEN.finditer(text):
        num, name, op = m.groups()
        if num is not None:
            out.append(("num", num))
        elif name is not None:
            out.append(("name", name))
        elif op is not None and op.strip():
            out.append(("op", op))
    return out


def parse(text: str) -> Tree:
    """The tree of an expression text (as `render` writes it)."""
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom() -> Tree:
        kind, val = take()
        if kind == "num":
            return float(val)
        if kind == "name":
            return val
        if val == "-":
            return ("neg", atom())
        if val == "(":
            inner = expr(0)
            take()  # ")"
            return inner
        raise ValueError(f"bad expression: {text!r}")

    def expr(min_prec: int) -> Tree:
        left = atom()
        while (t := peek()) is not None and t[0] == "op" and _PREC.get(t[1], -1) >= min_prec:
            op = take()[1]
            right = expr(_PREC[op] + 1)
            left = (op, left, right)
        return left

    tree = expr(0)
    if pos != len(toks):
        raise ValueError(f"bad expression: {text!r}")
    return tree


def render(tree: Tree, parent: int = 0) -> str:
    """Canonical text: numbers as written by repr (integers without .0), spaces around binary
    operators, parentheses only where precedence needs them."""
    if isinstance(tree, float):
        return str(int(tree)) if tree.is_integer() and abs(tree) < 1e15 else repr(tree)
    if isinstance(tree, str):
        return tree
    if tree[0] == "neg":
        return "-" + render(tree[1], 3)
    op, a, b = tree
    prec = _PREC[op]
    # left-associative: the right operand of - (and of a same-precedence op) needs brackets
    text = f"{render(a, prec)} {op} {render(b, prec + 1)}"
    return f"({text})" if prec < parent else text


def names(entry: object) -> set[str]:
    """The param names an entry uses."""
    if not isinstance(entry, str):
        return set()
    if not is_expression(entry):
        return {entry}
    return {val for kind, val in _tokens(entry) if kind == "name"}


def _reciprocal(b: Any) -> Any:
    """1 / b: a tensor's reciprocal(), a prover coefficient's inverse(), or 1 / a number."""
    if hasattr(b, "reciprocal"):
        return b.reciprocal()
    if hasattr(b, "inverse"):
        return b.inverse()
    return 1 / b


def evaluate(entry: object, env: Mapping[str, Any], num: Callable[[float], Any]) -> Any:
    """The entry's value: numbers through `num`, names from `env`, + - * of those values."""
    if not isinstance(entry, str):
        return num(float(entry))
    if not is_expression(entry):
        return env[entry]

    def ev(t: Tree) -> Any:
        if isinstance(t, float):
            return num(t)
        if isinstance(t, str):
            return env[t]
        if t[0] == "neg":
            return -ev(t[1])
        a, b = ev(t[1]), ev(t[2])
        if t[0] == "/":
            return a * _reciprocal(b)
        return a + b if t[0] == "+" else a + (-b) if t[0] == "-" else a * b

    return ev(parse(entry))
