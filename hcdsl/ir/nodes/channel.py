"""Per-channel gains of user-defined connections: a matrix entry over `vector` params."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, quiet
from hcdsl.ir.types import Hidden, IRTypeError, Streams, Type
from hcdsl.lang.connections import Bound


@dataclass(frozen=True)
class ChannelGain(Node):
    """y_s = e ⊙ x_s for every stream s of x, where e is a matrix entry over vector params
    (a name, or arithmetic over vector names and numbers: `1 - g`, `g / (g + h)`), evaluated
    channel by channel. params: the vectors this node holds, (name, init, bound), stored raw
    as `raw_<name>`; shared: vectors held by an earlier node, (name, owner, init, bound)."""

    entry: str
    width: int
    params: tuple[tuple[str, float, Bound], ...]
    shared: tuple[tuple[str, str, float, Bound], ...] = quiet(())
    op: ClassVar[str] = "gain"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)) or t.width != self.width:
            raise IRTypeError(f"gain: a vector of {self.width} channels on {t}")
        return t

    def param_count(self) -> int:
        return self.width * len(self.params)
