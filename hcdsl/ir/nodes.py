"""IR node payloads: one frozen dataclass per operation, with its ports and type rule.

Ports name the incoming edges a node needs; `infer` maps input types to the output type and
raises IRTypeError with a message naming the node's operation when they disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from hcdsl.ir.types import (
    Coef, Hidden, IRTypeError, Logits, Multi, Streams, Tokens, Type, as_streams,
)

Matrix = tuple[tuple[float, ...], ...]


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


@dataclass(frozen=True)
class Input(Node):
    op: ClassVar[str] = "input"

    def infer(self, ins: dict[str, Type]) -> Type:
        return Tokens()


@dataclass(frozen=True)
class Embed(Node):
    vocab: int
    dim: int
    op: ClassVar[str] = "embed"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        _expect(self, ins, "x", Tokens)
        return Hidden(self.dim)


@dataclass(frozen=True)
class Split(Node):
    """h[d] -> H[parts x d/parts]: contiguous fractions (FC), or one stream (parts = 1)."""

    parts: int
    op: ClassVar[str] = "split"

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

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        if t.count != 1:
            raise IRTypeError(f"copy: expects one stream, got {t}")
        return Streams(self.n, t.width)


@dataclass(frozen=True)
class SumStreams(Node):
    """H[S x w] -> H[1 x w]: the sum of the streams (HC's readout)."""

    op: ClassVar[str] = "sumstreams"

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        return Streams(1, t.width)


@dataclass(frozen=True)
class ConstCoef(Node):
    """A fixed matrix, lowered to a buffer."""

    value: Matrix
    op: ClassVar[str] = "const"

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
    gain: str  # row | diag
    dynamic: bool
    tanh: bool
    scale_init: float
    norm: str  # layernorm | rmsnorm (dynamic only)
    norm_affine: bool
    norm_eps: float
    width: int
    op: ClassVar[str] = "learned"
    has_module: ClassVar[bool] = True

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


@dataclass(frozen=True)
class DenseCoef(Node):
    """Weights A (sources x ways) of a depth-wise aggregate: learned static, MUDD's dynamic
    generator (port x: the newest history entry) or a softmax over depth (port x: the
    stacked sources)."""

    init: Matrix
    generator: str  # static | mudd | softmax
    hidden: int
    width: int
    op: ClassVar[str] = "dense"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return () if self.generator == "static" else ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        rows, cols = len(self.init), len(self.init[0])
        if self.generator == "mudd":
            t = _expect(self, ins, "x", Hidden)
            if t.width != self.width:
                raise IRTypeError(f"dense: generator expects h[{self.width}], got {t}")
        if self.generator == "softmax":
            t = _expect(self, ins, "x", Streams)
            if (t.count, t.width) != (rows, self.width):
                raise IRTypeError(f"dense: softmax over H[{rows}x{self.width}], got {t}")
        return Coef(rows, cols, self.generator != "static")


@dataclass(frozen=True)
class ManifoldCoef(Node):
    """mHC: M = [[0, H_post], [H_preᵀ, H_resᵀ]] from the flattened RMS-normalised state."""

    n: int
    width: int
    iters: int
    init: str  # paper | identity
    alpha: float
    op: ClassVar[str] = "manifold"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        x = _expect(self, ins, "x", Streams)
        if (x.count, x.width) != (self.n, self.width):
            raise IRTypeError(f"manifold: expects H[{self.n}x{self.width}], got {x}")
        return Coef(self.n + 1, self.n + 1, True)


@dataclass(frozen=True)
class Layer(Node):
    """A layer of the body: built-in (attention, mlp, norms, opaque) or user-supplied."""

    name: str  # the spec's layer name
    kind: str
    args: tuple[tuple[str, object], ...]
    dim: int
    in_ports: tuple[str, ...]
    out_scale: float  # init std factor of its output projection
    extern: bool = False
    # internal values the layer also returns (attention: "v", its projected values); the
    # node's value is then (output, *taps), read with Tap nodes
    taps: tuple[str, ...] = quiet(())
    op: ClassVar[str] = "layer"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return self.in_ports

    def infer(self, ins: dict[str, Type]) -> Type:
        for p in self.in_ports:
            if p == "vmix":  # value residual weights (λ1, λ2)
                c = _expect(self, ins, p, Coef)
                if (c.rows, c.cols) != (1, 2):
                    raise IRTypeError(f"layer {self.name}: vmix expects M[1x2], got {c}")
                continue
            t = _expect(self, ins, p, Hidden)
            if t.width != self.dim:
                raise IRTypeError(f"layer {self.name}: port '{p}' expects h[{self.dim}], got {t}")
        if self.taps:
            return Multi((Hidden(self.dim),) + tuple(Hidden(self.dim) for _ in self.taps))
        return Hidden(self.dim)


@dataclass(frozen=True)
class Tap(Node):
    """Element `index` of a multi-output layer: 0 is its output, then its taps."""

    index: int
    op: ClassVar[str] = "tap"

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Multi)
        if not 0 <= self.index < len(t.items):
            raise IRTypeError(f"tap: index {self.index} of {t}")
        return t.items[self.index]


@dataclass(frozen=True)
class TemplateCoef(Node):
    """M with entries that are numbers or named learned scalars (user-defined schemes).
    params: (name, init, bound) with bound none | unit (sigmoid) | double (2 sigmoid)."""

    template: tuple[tuple[object, ...], ...]
    params: tuple[tuple[str, float, str], ...]
    op: ClassVar[str] = "template"
    has_module: ClassVar[bool] = True

    def infer(self, ins: dict[str, Type]) -> Type:
        return Coef(len(self.template), len(self.template[0]), False)


@dataclass(frozen=True)
class NormStreams(Node):
    """Normalise some streams of a state (each over its width), pass the others through."""

    kind: str
    affine: bool
    eps: float
    width: int
    count: int
    which: tuple[int, ...]
    op: ClassVar[str] = "normstreams"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        if (t.count, t.width) != (self.count, self.width):
            raise IRTypeError(f"normstreams: expects H[{self.count}x{self.width}], got {t}")
        return t


@dataclass(frozen=True)
class LowRank(Node):
    """y_s = B A x_s for every stream s (LAuReL-LR), A: r x w, B: w x r, B = 0 at init."""

    width: int
    rank: int
    op: ClassVar[str] = "lowrank"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Streams)
        if t.width != self.width:
            raise IRTypeError(f"lowrank over {self.width} got {t}")
        return t


@dataclass(frozen=True)
class Norm(Node):
    kind: str
    affine: bool
    eps: float
    width: int
    scale_init: float = quiet(1.0)  # init of the affine scale (MUDD's PostDANorm: 1e-3)
    op: ClassVar[str] = "norm"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)) or t.width != self.width:
            raise IRTypeError(f"norm over {self.width} got {t}")
        return t


@dataclass(frozen=True)
class InvStd(Node):
    """x / std(x) over the width (centred std, no eps): the data-dependent scalar weight
    1/sqrt(σ_h² + σ_T² + 2σ_hT) of HC Eq. 16 applied to h + T(h)."""

    width: int
    op: ClassVar[str] = "invstd"

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)) or t.width != self.width:
            raise IRTypeError(f"invstd over {self.width} got {t}")
        return t


@dataclass(frozen=True)
class Add(Node):
    arity: int
    op: ClassVar[str] = "add"

    def ports(self) -> tuple[str, ...]:
        return tuple(f"s{i}" for i in range(self.arity))

    def infer(self, ins: dict[str, Type]) -> Type:
        types = {ins[p] for p in self.ports()}
        if len(types) != 1:
            raise IRTypeError(f"add: operands of different types {sorted(map(str, types))}")
        return types.pop()


@dataclass(frozen=True)
class Unembed(Node):
    vocab: int
    dim: int
    tied: bool
    op: ClassVar[str] = "unembed"
    has_module: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Hidden)
        if t.width != self.dim:
            raise IRTypeError(f"unembed expects h[{self.dim}], got {t}")
        return Logits(self.vocab)


@dataclass(frozen=True)
class Output(Node):
    op: ClassVar[str] = "output"

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        return _expect(self, ins, "x", Logits)
