"""Nodes that reshape, stack, mix and add states: no parameters of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, _expect
from hcdsl.ir.types import Coef, Hidden, IRTypeError, Streams, Type, as_streams


@dataclass(frozen=True)
class Split(Node):
    """h[d] -> H[parts x d/parts]: contiguous fractions (FC), or one stream (parts = 1)."""

    parts: int
    op: ClassVar[str] = "split"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Hidden)
        if t.width % self.parts:
            raise IRTypeError(f"split: width {t.width} is not divisible by {self.parts}")
        return Streams(self.parts, t.width // self.parts)


@dataclass(frozen=True)
class Merge(Node):
    """H[S x w] -> h[S*w]: concatenate the streams (a single stream: drop the axis)."""

    op: ClassVar[str] = "merge"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        return Hidden(t.count * t.width)


@dataclass(frozen=True)
class Stack(Node):
    """Concatenate along the stream axis: [O_1; ...; O_F; H]."""

    arity: int
    op: ClassVar[str] = "stack"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return tuple(f"s{i}" for i in range(self.arity))

    def infer(self, ins: dict[str, Type]) -> Type:
        parts = [as_streams(ins[p]) for p in self.ports()]
        widths = {p.width for p in parts}
        if len(widths) != 1:
            raise IRTypeError(f"stack: streams of different widths {sorted(widths)}")
        return Streams(sum(p.count for p in parts), parts[0].width)


@dataclass(frozen=True)
class Mix(Node):
    """y = M[rows, cols]ᵀ x over the stream axis: y_c = sum_s M[s, c] x_s."""

    rows: tuple[int, int]  # [start, stop) of M's rows used (must match x's stream count)
    cols: tuple[int, int]  # [start, stop) of M's columns: one output stream per column
    op: ClassVar[str] = "mix"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x", "coef")

    def infer(self, ins: dict[str, Type]) -> Type:
        x = as_streams(ins["x"]) if not isinstance(ins["x"], Streams) else ins["x"]
        m = _expect(self, ins, "coef", Coef)
        r0, r1 = self.rows
        c0, c1 = self.cols
        if not (0 <= r0 < r1 <= m.rows and 0 <= c0 < c1 <= m.cols):
            raise IRTypeError(f"mix: slice rows {self.rows} cols {self.cols} outside {m}")
        if r1 - r0 != x.count:
            raise IRTypeError(f"mix: {r1 - r0} coefficient rows for {x.count} streams")
        return Streams(c1 - c0, x.width)


@dataclass(frozen=True)
class Copy(Node):
    """H[1 x w] -> H[n x w]: n copies of one stream (H^0 of HC)."""

    n: int
    op: ClassVar[str] = "copy"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        if t.count != 1:
            raise IRTypeError(f"copy: expects one stream, got {t}")
        return Streams(self.n, t.width)


@dataclass(frozen=True)
class Take(Node):
    """H[S x w] -> H[(stop - start) x w]: streams start..stop-1 (a view, no copy)."""

    start: int
    stop: int
    op: ClassVar[str] = "take"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False  # cse leaves it alone (merging equal takes changes IRs)
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        if not 0 <= self.start < self.stop <= t.count:
            raise IRTypeError(f"take: streams {self.start}..{self.stop} of {t}")
        return Streams(self.stop - self.start, t.width)


@dataclass(frozen=True)
class SumStreams(Node):
    """H[S x w] -> H[1 x w]: the sum of the streams (HC's readout)."""

    op: ClassVar[str] = "sumstreams"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        return Streams(1, t.width)


@dataclass(frozen=True)
class Add(Node):
    arity: int
    op: ClassVar[str] = "add"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return tuple(f"s{i}" for i in range(self.arity))

    def infer(self, ins: dict[str, Type]) -> Type:
        types = {ins[p] for p in self.ports()}
        if len(types) != 1:
            raise IRTypeError(f"add: operands of different types {sorted(map(str, types))}")
        return types.pop()
