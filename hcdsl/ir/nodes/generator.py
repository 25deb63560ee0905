"""A user-written generator (`generator { ... }` in a connection block): the per-token weights
of a step's matrix M, or the readout, from the state H (hcdsl/lang/generator.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from hcdsl.ir.nodes.base import Node, _expect
from hcdsl.ir.types import Coef, Hidden, IRTypeError, Multi, Streams, Type
from hcdsl.lang.generator import Generator, generator_lines
from hcdsl.schemes.primitive import GeneratorNames


@dataclass(frozen=True)
class GeneratorCoef(Node):
    """role step: M[(1+n) x (1+n)] per token (M[2m x 2m] for a split state of m fractions,
    FC), or (x, M) when the generator computes the read
    itself (per-channel weights, or weights on the normalised state); role readout: h."""

    spec: Generator
    n: int
    width: int
    role: Literal["step", "readout"]
    # where its module keeps the parameters (hcdsl/nn/preset_params.py): each output's own,
    # or a desugared preset's names (hc, mhc); the computation is the record's either way
    names: GeneratorNames = "outputs"
    op: ClassVar[str] = "generator"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False  # holds parameters
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False  # token-dependent: no single value to freeze
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        x = _expect(self, ins, "x", Streams)
        if (x.count, x.width) != (self.n, self.width):
            raise IRTypeError(f"generator: expects H[{self.n}x{self.width}], got {x}")
        if self.role == "readout":
            return Hidden(self.width)
        r = self.spec.fractions  # a split state (FC): m read columns, OUT = diag over m
        m = Coef(self.n + r, self.n + r, True)
        if self.spec.channel_write():
            return Multi((Hidden(self.width), m, Streams(self.n, self.width)))
        return Multi((Hidden(self.width), m)) if self.spec.inline_read() else m

    def param_count(self) -> int:
        return self.spec.param_count(self.n, self.width)

    def describe(self) -> str:
        body = "; ".join(line.strip() for line in generator_lines(self.spec)[1:-1])
        names = f", names={self.names}" if self.names != "outputs" else ""
        split = f", fractions={self.spec.fractions}" if self.spec.fractions != 1 else ""
        return (f"generator(role={self.role}, n={self.n}, width={self.width}{split}{names}; "
                f"{body})")


@dataclass(frozen=True)
class ChannelWrite(Node):
    """The layer output o written with per-stream, per-channel weights: H'_t = w_t ⊙ o
    (a generator's `write = ...(per=channel)`); the rest of the write adds RESᵀ H."""

    op: ClassVar[str] = "channel_write"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False  # not offered to cse (as when it was added); w ⊙ o is pure in meaning
    free: ClassVar[bool] = False  # it computes (not a view)
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("o", "w")

    def infer(self, ins: dict[str, Type]) -> Type:
        o, w = ins["o"], _expect(self, ins, "w", Streams)
        width = o.width if isinstance(o, (Hidden, Streams)) else None
        if width != w.width or isinstance(o, Streams) and o.count != 1:
            raise IRTypeError(f"channel_write: output {o} for weights {w}")
        return w
