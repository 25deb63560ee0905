"""The model's own nodes: input, embedding, layers and their taps, norms, the head, output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hcdsl.ir.nodes.base import Node, _expect, quiet
from hcdsl.ir.types import Coef, Hidden, IRTypeError, Logits, Multi, Streams, Tokens, Type
from hcdsl.lang.catalog import NormKind, layer_params, norm_params


@dataclass(frozen=True)
class Input(Node):
    """The model's input: tokens, or (width > 0) hidden states h[width] (`input = hidden`:
    a body mapping hidden states to hidden states, with no embedding and no head)."""

    width: int = quiet(0)
    op: ClassVar[str] = "input"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def infer(self, ins: dict[str, Type]) -> Type:
        return Hidden(self.width) if self.width else Tokens()


@dataclass(frozen=True)
class Embed(Node):
    vocab: int
    dim: int
    positions: int = quiet(0)  # > 0: a learned table of absolute positions (`pos = learned`)
    op: ClassVar[str] = "embed"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        _expect(self, ins, "x", Tokens)
        return Hidden(self.dim)

    def param_count(self) -> int:
        return (self.vocab + self.positions) * self.dim


@dataclass(frozen=True)
class Dropout(Node):
    """Dropout with rate p while training, the identity in eval mode (and in proofs)."""

    p: float
    op: ClassVar[str] = "dropout"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)):
            raise IRTypeError(f"dropout expects a hidden vector or streams, got {t}")
        return t


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
    dropout: float = quiet(0.0)  # attention: dropout on the attention weights while training
    # internal values the layer also returns (attention: "v", its projected values); the
    # node's value is then (output, *taps), read with Tap nodes
    taps: tuple[str, ...] = quiet(())
    op: ClassVar[str] = "layer"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = False  # also given the mask; its input kept as a hidden state
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

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

    def param_count(self) -> int | None:
        return None if self.extern else layer_params(self.kind, self.args, self.dim)


@dataclass(frozen=True)
class ParallelLayers(Node):
    """Layers that read one value, run with one input matmul (a parallel block's fused QKV
    and up-projection); the value is (output of each layer), read with Tap nodes. The
    parameters stay the layers' own (their node ids name the modules)."""

    ids: tuple[str, ...]  # the layers' node ids
    layers: tuple[Layer, ...]
    op: ClassVar[str] = "parallel_layers"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = False  # as a layer
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Hidden)
        if any(layer.dim != t.width for layer in self.layers):
            raise IRTypeError(f"parallel_layers: layers of width "
                              f"{[layer.dim for layer in self.layers]} read {t}")
        return Multi(tuple(Hidden(layer.dim) for layer in self.layers))

    def param_count(self) -> int:
        return 0  # the layers' own parameters, counted with them

    def describe(self) -> str:  # the layers are dumped at their own nodes' ids
        kinds = ", ".join(layer.kind for layer in self.layers)
        return f"{self.op}(ids=[{', '.join(self.ids)}], kinds=[{kinds}])"


@dataclass(frozen=True)
class Tap(Node):
    """Element `index` of a multi-output layer: 0 is its output, then its taps."""

    index: int
    op: ClassVar[str] = "tap"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False  # the layers' own work (compute): never merged
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Multi)
        if not 0 <= self.index < len(t.items):
            raise IRTypeError(f"tap: index {self.index} of {t}")
        return t.items[self.index]


@dataclass(frozen=True)
class Norm(Node):
    kind: NormKind
    affine: bool
    eps: float
    width: int
    scale_init: float = quiet(1.0)  # init of the affine scale (MUDD's PostDANorm: 1e-3)
    op: ClassVar[str] = "norm"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = True  # is_pure: only without its own gain and bias
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = False

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)) or t.width != self.width:
            raise IRTypeError(f"norm over {self.width} got {t}")
        return t

    def is_pure(self) -> bool:  # its own gain and bias: a function of its own
        return not self.affine

    def param_count(self) -> int:
        return norm_params(self.kind, self.affine, self.width)


@dataclass(frozen=True)
class NormStreams(Node):
    """Normalise some streams of a state (each over its width), pass the others through."""

    kind: NormKind
    affine: bool
    eps: float
    width: int
    count: int
    which: tuple[int, ...]
    op: ClassVar[str] = "normstreams"
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
        t = _expect(self, ins, "x", Streams)
        if (t.count, t.width) != (self.count, self.width):
            raise IRTypeError(f"normstreams: expects H[{self.count}x{self.width}], got {t}")
        return t

    def param_count(self) -> int:
        return norm_params(self.kind, self.affine, self.width)


@dataclass(frozen=True)
class InvStd(Node):
    """x / std(x) over the width (centred std, no eps): the data-dependent scalar weight
    1/sqrt(σ_h² + σ_T² + 2σ_hT) of HC Eq. 16 applied to h + T(h)."""

    width: int
    op: ClassVar[str] = "invstd"
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
        t = ins["x"]
        if not isinstance(t, (Hidden, Streams)) or t.width != self.width:
            raise IRTypeError(f"invstd over {self.width} got {t}")
        return t


@dataclass(frozen=True)
class LowRank(Node):
    """y_s = B A x_s for every stream s (LAuReL-LR), A: r x w, B: w x r, B = 0 at init;
    full: y_s = W x_s with one learned w x w matrix W = 0 at init (rank is then w)."""

    width: int
    rank: int
    full: bool = quiet(False)
    op: ClassVar[str] = "lowrank"
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
        t = _expect(self, ins, "x", Streams)
        if t.width != self.width:
            raise IRTypeError(f"lowrank over {self.width} got {t}")
        return t

    def param_count(self) -> int:
        return self.width * self.width if self.full else 2 * self.rank * self.width  # W; A, B


@dataclass(frozen=True)
class Unembed(Node):
    vocab: int
    dim: int
    tied: bool
    op: ClassVar[str] = "unembed"
    has_module: ClassVar[bool] = True
    builds_module: ClassVar[bool] = True
    calls_module: ClassVar[bool] = True
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = False
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = _expect(self, ins, "x", Hidden)
        if t.width != self.dim:
            raise IRTypeError(f"unembed expects h[{self.dim}], got {t}")
        return Logits(self.vocab)

    def param_count(self) -> int:
        return 0 if self.tied else self.vocab * self.dim


@dataclass(frozen=True)
class Output(Node):
    op: ClassVar[str] = "output"
    has_module: ClassVar[bool] = False
    builds_module: ClassVar[bool] = False
    calls_module: ClassVar[bool] = False
    pure: ClassVar[bool] = False
    free: ClassVar[bool] = True
    freezable: ClassVar[bool] = False
    compute: ClassVar[bool] = True

    def ports(self) -> tuple[str, ...]:
        return ("x",)

    def infer(self, ins: dict[str, Type]) -> Type:
        t = ins["x"]
        if not isinstance(t, (Logits, Hidden)):
            raise IRTypeError(f"output: expects logits (or hidden states), got {t}")
        return t

