"""The one way a stage registers its meaning of node kinds: a table keyed by payload class and
the decorator that fills it (`rule = registrar(FX)`, then `@rule(n.Add, n.Mix)`). The tables
are joined in hcdsl/kinds.py; a kind registered twice in one table is a bug, reported when
the module is imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hcdsl.ir.nodes.base import Node

T = TypeVar("T")


def registrar(table: dict[type[Node], T], name: str) -> Callable[..., Callable[[T], T]]:
    """The decorator `register(*kinds)` that enters a function in `table` (called `name` in
    messages) under each kind; register(*kinds)(None) enters "no entry" explicitly."""

    def register(*kinds: type[Node]) -> Callable[[T], T]:
        def wrap(fn: T) -> T:
            for kind in kinds:
                if kind in table:
                    raise ValueError(f"{name}: {kind.__name__} registered twice")
                table[kind] = fn
            return fn

        return wrap

    return register
