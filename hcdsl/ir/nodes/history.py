"""The weights of a depth-wise aggregate over a history of layer outputs (DenseFormer, MUDD,
attention residuals, DCA), made by a history generator (hcdsl/lang/history_generator.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from hcdsl.ir.nodes.base import Node, _expect, _fmt, quiet
from hcdsl.ir.types import Coef, Hidden, IRTypeError, Streams, Type
from hcdsl.lang.history_generator import (
    HistAct, HistInput, HistNorm, HistoryGenerator, HistProj, HistStatic, ProjKind, StaticInit,
)
from hcdsl.spec import Matrix


@dataclass(frozen=True)
class DenseCoef(Node):
    """A (sources x ways) of one aggregate. Ports: x, the generator's input (the newest
    history entry, normalised; or the stacked sources, normalised unless the norm runs per
    channel group), when the generator reads one; src, the stacked sources, when A has
    channel groups: then the node mixes them itself and returns the ways, H[ways x D]."""

    # the generator's record (hcdsl/lang/history_generator.py), field by field so that
    # `hcdsl show --ir` reads like the spec and parses back
    init: Matrix  # a at init (sources x ways)
    input: HistInput
    norm: Literal["none", "rmsnorm"]
    proj: ProjKind
    act: HistAct
    static: Literal["none", "source", "channel"]
    width: int
    norm_weight: Literal["none", "scale"] = quiet("none")
    rank: int = quiet(0)
    mid: HistAct = quiet("gelu")
    heads: int = quiet(1)
    static_init: StaticInit = quiet("newest")
    eps: float = quiet(1e-5)  # a grouped norm's eps (the model's)
    op: ClassVar[str] = "dense"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = True  # is_freezable: only static
    compute: ClassVar[bool] = False

    @classmethod
    def of(cls, init: Matrix, gen: HistoryGenerator, width: int,
           eps: float = 1e-5) -> "DenseCoef":
        p = gen.proj
        return cls(init, gen.input, "none" if gen.norm is None else "rmsnorm", p.kind,
                   gen.act, "none" if gen.static is None else gen.static.per, width,
                   norm_weight="none" if gen.norm is None else gen.norm.weight,
                   rank=p.rank, mid=p.mid, heads=p.heads,
                   static_init="newest" if gen.static is None else gen.static.init, eps=eps)

    @property
    def spec(self) -> HistoryGenerator:
        """The generator's record (MUDD's rank resolved)."""
        return HistoryGenerator(
            input=self.input,
            norm=None if self.norm == "none" else HistNorm(weight=self.norm_weight),
            proj=HistProj(kind=self.proj, rank=self.rank, mid=self.mid, heads=self.heads),
            act=self.act,
            static=None if self.static == "none" else HistStatic(per=self.static,
                                                                 init=self.static_init))

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
