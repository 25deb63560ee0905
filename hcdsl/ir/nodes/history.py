"""The weights of a depth-wise aggregate over a history of layer outputs (DenseFormer, MUDD,
attention residuals, DCA), made by a history generator (hcdsl/lang/history_generator.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, _expect, _fmt, quiet
from hcdsl.ir.types import Coef, Hidden, IRTypeError, Streams, Type
from hcdsl.lang.history_generator import HistoryGenerator, history_lines
from hcdsl.spec import Matrix


@dataclass(frozen=True)
class DenseCoef(Node):
    """A (sources x ways) of one aggregate. Ports: x, the generator's input (the newest
    history entry, normalised; or the stacked sources, normalised unless the norm runs per
    channel group), when the generator reads one; src, the stacked sources, when A has
    channel groups: then the node mixes them itself and returns the ways, H[ways x D]."""

    init: Matrix  # a at init (sources x ways)
    spec: HistoryGenerator
    width: int
    eps: float = quiet(1e-5)  # a grouped norm's eps (the model's)
    op: ClassVar[str] = "dense"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = True  # is_freezable: only static
    compute: ClassVar[bool] = False

    @property
    def sources(self) -> int:
        return len(self.init)

    @property
    def ways(self) -> int:
        return len(self.init[0])

    def grouped(self) -> bool:
        """A has channel groups (heads, or per-channel a): the node mixes the sources."""
        return self.spec.groups(self.width) > 1

    def ports(self) -> tuple[str, ...]:
        x = ("x",) if self.spec.input != "none" else ()
        return x + (("src",) if self.grouped() else ())

    def infer(self, ins: dict[str, Type]) -> Type:
        rows, cols = self.sources, self.ways
        if self.spec.input == "newest":
            t = _expect(self, ins, "x", Hidden)
            if t.width != self.width:
                raise IRTypeError(f"dense: generator expects h[{self.width}], got {t}")
        if self.spec.input == "sources":
            t = _expect(self, ins, "x", Streams)
            if (t.count, t.width) != (rows, self.width):
                raise IRTypeError(f"dense: generator over H[{rows}x{self.width}], got {t}")
        if self.grouped():
            t = _expect(self, ins, "src", Streams)
            if (t.count, t.width) != (rows, self.width):
                raise IRTypeError(f"dense: mixes H[{rows}x{self.width}], got {t}")
            return Streams(cols, self.width)
        return Coef(rows, cols, self.spec.dynamic)

    def is_freezable(self) -> bool:
        return not self.spec.dynamic and not self.grouped()

    def param_count(self) -> int:
        return self.spec.param_count(self.sources, self.ways, self.width)

    def describe(self) -> str:
        body = "; ".join(line.strip() for line in history_lines(self.spec)[1:-1])
        return f"dense(init={_fmt(self.init)}, width={self.width}; {body})"
