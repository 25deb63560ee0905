"""The base of every IR node payload: ports, type rule, a readable description, and how many
parameters the node's module holds (counted from shapes, without torch)."""

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


@dataclass(frozen=True)
class Node:
    op: ClassVar[str] = "node"
    has_module: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ()

    def infer(self, ins: dict[str, Type]) -> Type:  # pragma: no cover - abstract
        raise NotImplementedError

    def param_count(self) -> int | None:
        """Parameters of the node's module (None: known only once built, e.g. extern)."""
        return 0

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
