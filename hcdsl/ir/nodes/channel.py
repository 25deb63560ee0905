"""Per-channel gains of user-defined connections: a `vector` param used as a matrix entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, quiet
from hcdsl.ir.types import Hidden, IRTypeError, Streams, Type
from hcdsl.lang.connections import Bound


@dataclass(frozen=True)
class ChannelGain(Node):
    """y_s = bound(g) ⊙ x_s for every stream s of x: a learned vector g of the stream width
    (stored raw, before its bound, as the module's `raw_<name>`); a tied one (or one used
    twice in a layer) reads the vector of its `owner` node and holds none itself."""

    name: str
    width: int
    init: float  # every channel starts at this value (after the bound)
    bound: Bound
    owner: str = quiet("")
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
        return 0 if self.owner else self.width
