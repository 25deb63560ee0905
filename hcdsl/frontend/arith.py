"""Arithmetic list items (`1 - g`) as the canonical expression text of hcdsl/lang/expr.py."""

from __future__ import annotations

from hcdsl.frontend import syntax as s
from hcdsl.lang.expr import Tree, render


def expr_tree(value: s.Value) -> Tree | None:
    """The tree of an item made of numbers, names and + - *; None for anything else."""
    if isinstance(value, s.Number):
        return float(value.value)
    if isinstance(value, s.Name):
        return value.value
    if isinstance(value, s.Expr):
        args = [expr_tree(a) for a in value.args]
        if any(a is None for a in args):
            return None
        return ("neg", args[0]) if value.op == "neg" else (value.op, args[0], args[1])
    return None


def expr_text(value: s.Value) -> str | None:
    tree = expr_tree(value)
    return None if tree is None else render(tree)
