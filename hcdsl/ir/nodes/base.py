"""The base of every IR node payload: ports, type rule, a readable description, how many
parameters the node's module holds (counted from shapes, without torch), and the kind's
traits: what the later stages need to know of it, declared by every payload class in its own
body (tests/ir/test_kind_tables.py names the class and trait when one is missing)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from hcdsl.ir.types import IRTypeError, Type


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


# trait -> what it means; every payload class sets each one (a ClassVar[bool]) in its body.
# The tables that were once written by hand are views of them (hcdsl.ir.nodes.having).
TRAITS: dict[str, str] = {
    "has_module": "holds parameters: a module (MODULES), a value at init (AT_INIT), and its "
                  "param_count is checked against the module",
    "builds_module": "has a module in MODULES: parameters, or buffers only (a constant)",
    "calls_module": "its value is its module called on its ports and nothing else: both "
                    "backends lower it as that call",
    "pure": "equal nodes on equal inputs are one value: cse merges them (is_pure() may "
            "refuse one node, e.g. a norm with its own gain)",
    "free": "a view: it moves no memory (hcdsl.traffic counts nothing for it)",
    "freezable": "a coefficient whose trained value can become a constant (freeze; "
                 "is_freezable() decides per node)",
    "compute": "the layers' own work (input, embedding, layers, their taps and dropout, the "
               "head, output), not the connection's (hcdsl.ir.regions)",
}


@dataclass(frozen=True)
class Node:
    op: ClassVar[str] = "node"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ()

    def infer(self, ins: dict[str, Type]) -> Type:  # pragma: no cover - abstract
        raise NotImplementedError

    def param_count(self) -> int | None:
        """Parameters of the node's module (None: known only once built, e.g. extern)."""
        return 0

    def is_pure(self) -> bool:
        """This node is pure (the kind's trait; a kind may refuse some of its nodes)."""
        return self.pure

    def is_freezable(self) -> bool:
        """This coefficient's value does not depend on the tokens (the kind's trait; a kind
        may refuse some of its nodes)."""
        return self.freezable

    def describe(self) -> str:
        parts = [
            f"{f.name}={_fmt(getattr(self, f.name))}" for f in fields(self)
            if not (f.metadata.get("quiet") and getattr(self, f.name) == f.default)
        ]
        return f"{self.op}({', '.join(parts)})"


def quiet(default: object) -> object:
    """A field left out of the dump while it has its default (options most nodes lack)."""
    return field(default=default, metadata={"quiet": True})


def _expect(node: Node, ins: dict[str, Type], port: str, kind: type) -> Type:
    t = ins[port]
    if not isinstance(t, kind):
        raise IRTypeError(f"{node.op}: port '{port}' expects {kind.__name__}, got {t}")
    return t
