"""The one way a stage registers its meaning of node kinds: a table keyed by payload class and
the decorator that fills it (`rule = registrar(FX, "FX")`, then `@rule(n.Add, n.Mix)`); the
built-in layer kinds' modules are one more such table, keyed by the kind's name. The tables
are joined in hcdsl/kinds.py; a kind registered twice in one table is a bug, reported when
the module is imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hcdsl.ir.nodes.base import Node

T = TypeVar("T")
K = TypeVar("K", type[Node], str)  # a node kind (payload class) or a layer kind (its name)


def registrar(table: dict[K, T], name: str) -> Callable[..., Callable[[T], T]]:
    """The decorator `register(*kinds)` that enters a function in `table` (called `name` in
    messages) under each kind; register(*kinds)(None) enters "no entry" explicitly."""

    def register(*kinds: K) -> Callable[[T], T]:
        def wrap(fn: T) -> T:
            for kind in kinds:
                if kind in table:
                    label = kind if isinstance(kind, str) else kind.__name__
                    raise ValueError(f"{name}: {label} registered twice")
                table[kind] = fn
            return fn

        return wrap

    return register
