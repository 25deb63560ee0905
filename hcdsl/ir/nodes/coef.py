"""Nodes that make a step's mixing matrix M: constant, learned (HC, FC) and
user-defined templates (dynamic HC and mHC are generators: hcdsl/ir/nodes/generator.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, quiet
from hcdsl.ir.types import Coef, IRTypeError, Type
from hcdsl.lang.catalog import NormKind
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
    """M = [[0, OUT], [READ, RES]] with learned static entries (static HC/FC).

    OUT holds one gain per new stream: a row (HC: B) or a diagonal (FC: diag(B)). The dynamic
    forms are generators (GeneratorCoef); `dynamic` is always False and, with tanh, scale_init
    and the norm fields, is kept only so the IR dumps (and their goldens) read as before.
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
        return ()

    def infer(self, ins: dict[str, Type]) -> Type:
        rows, cols = len(self.init), len(self.init[0])
        if self.dynamic:
            raise IRTypeError("learned: dynamic weights are a generator node, not 'learned'")
        return Coef(rows, cols, False)

    def is_freezable(self) -> bool:
        return not self.dynamic

    def param_count(self) -> int:
        rows, cols = len(self.init), len(self.init[0])
        streams = rows - self.fractions
        gains = streams  # one per new stream: a row (HC's B) or the diagonal (FC)
        return gains + streams * cols  # B and [A_m | A_r]


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
