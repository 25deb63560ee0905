"""Nodes that make a step's mixing matrix M: constant, learned (HC, FC) and
user-defined templates (dynamic HC and mHC are generators: hcdsl/ir/nodes/generator.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, _expect, quiet
from hcdsl.ir.types import Coef, IRTypeError, Streams, Type
from hcdsl.lang.catalog import NormKind, norm_params
from hcdsl.lang.connections import Bound
from hcdsl.schemes.primitive import Gain
from hcdsl.spec import Matrix


@dataclass(frozen=True)
class ConstCoef(Node):
    """A fixed matrix, lowered to a buffer."""

    value: Matrix
    op: ClassVar[str] = "const"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = False  # its buffer is read directly (fx: get_attr)
    pure: ClassVar[bool] = True
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def infer(self, ins: dict[str, Type]) -> Type:
        return Coef(len(self.value), len(self.value[0]), False)


@dataclass(frozen=True)
class LearnedCoef(Node):
    """M = [[0, OUT], [READ, RES]] with learned static entries and an optional dynamic part.

    OUT holds one gain per new stream: a row (HC: B) or a diagonal (FC: diag(B)). Dynamic:
    gain_s += s_gain act(norm(H_s) w_gain), [READ|RES]_s += s_mix act(norm(H_s) W_mix).
    """

    init: Matrix
    fractions: int  # F: rows of M that weight layer outputs
    gain: Gain
    dynamic: bool
    tanh: bool
    scale_init: float
    norm: NormKind  # (dynamic only)
    norm_affine: bool
    norm_eps: float
    width: int
    op: ClassVar[str] = "learned"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = True  # is_freezable: only static
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",) if self.dynamic else ()

    def infer(self, ins: dict[str, Type]) -> Type:
        rows, cols = len(self.init), len(self.init[0])
        if self.dynamic:
            x = _expect(self, ins, "x", Streams)
            if x.count != rows - self.fractions or x.width != self.width:
                raise IRTypeError(f"learned: generator for {rows - self.fractions} streams "
                                  f"of width {self.width} got {x}")
        return Coef(rows, cols, self.dynamic)

    def is_freezable(self) -> bool:
        return not self.dynamic

    def param_count(self) -> int:
        rows, cols = len(self.init), len(self.init[0])
        streams = rows - self.fractions
        gains = streams  # one per new stream: a row (HC's B) or the diagonal (FC)
        count = gains + streams * cols  # B and [A_m | A_r]
        if self.dynamic:  # norm, W_β, [W_m | W_r], s_β, s_α
            count += norm_params(self.norm, self.norm_affine, self.width)
            count += self.width + self.width * cols + 2
        return count


@dataclass(frozen=True)
class TemplateCoef(Node):
    """M with entries that are numbers or named learned scalars (user-defined schemes).
    params: (name, init, bound) with bound none | unit (sigmoid) | double (2 sigmoid)."""

    template: tuple[tuple[object, ...], ...]
    params: tuple[tuple[str, float, Bound], ...]
    # tied params owned by an earlier node: (name, owner node id, init, bound); the module
    # reads the owner's scalar, and only the owner counts it
    shared: tuple[tuple[str, str, float, Bound], ...] = quiet(())
    op: ClassVar[str] = "template"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = True
    compute: ClassVar[bool] = False

    def infer(self, ins: dict[str, Type]) -> Type:
        return Coef(len(self.template), len(self.template[0]), False)

    def param_count(self) -> int:
        return len(self.params)
