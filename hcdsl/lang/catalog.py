"""The built-in layer kinds, one LayerKind record each (LAYERS): the options it takes
(validated with pydantic), its input ports, how many parameters it holds (so `hcdsl stats`
counts without building a module), what it keeps for backward (hcdsl.memory), and its
traits (fusable, attends, feed-forward). Its module is torch's: hcdsl/nn/modules.py
registers one factory per kind by name (LAYER_MODULES; a test checks every kind has one).

A layer's options are normalised when the spec is validated: every option carries its value,
defaults filled in (`mlp` and `mlp(hidden=256)` at dim 64 are the same layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hcdsl.lang.limits import at_most

NormKind = Literal["layernorm", "rmsnorm"]  # the norms: the model's `norm`, layers, IR nodes


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def normalised(self, dim: int) -> "_Args":
        """The options with what depends on the model's width filled in."""
        return self

    def param_count(self, dim: int) -> int:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def kept(self, dim: int, seq: int) -> int:  # pragma: no cover - every layer overrides it
        """Elements per token the layer keeps inside for backward (hcdsl.memory)."""
        raise NotImplementedError


class AttentionArgs(_Args):
    """Causal multi-head self-attention with separate q/k/v input ports and RoPE."""

    heads: int = Field(ge=1, **at_most("heads"))
    bias: bool = False
    rope: bool = True

    def param_count(self, dim: int) -> int:  # q, k, v, out: d x d (+ d)
        return 4 * (dim * dim + (dim if self.bias else 0))

    def kept(self, dim: int, seq: int) -> int:  # q, k, v, output; scores and probabilities
        return 6 * dim + 2 * self.heads * seq


class MlpArgs(_Args):
    """Two-layer feed-forward network: gelu, or swiglu (gated, three matrices)."""

    hidden: int | None = Field(default=None, ge=1, description="default 4 x dim",
                                **at_most("hidden"))
    act: Literal["gelu", "swiglu"] = "gelu"
    bias: bool = False

    def normalised(self, dim: int) -> "MlpArgs":
        return self if self.hidden is not None else self.model_copy(update={"hidden": 4 * dim})

    def param_count(self, dim: int) -> int:
        h = self.hidden or 4 * dim
        mats = 3 if self.act == "swiglu" else 2
        biases = (h * (mats - 1) + dim) if self.bias else 0
        return mats * dim * h + biases

    def kept(self, dim: int, seq: int) -> int:
        return 3 * (self.hidden or 4 * dim)


class NormArgs(_Args):
    """A normalisation layer (also the model's `norm` setting)."""

    affine: bool = True
    eps: float = Field(default=1e-5, gt=0, le=1.0)

    def kept(self, dim: int, seq: int) -> int:
        return 2 * dim


class OpaqueArgs(_Args):
    """An uninterpreted layer: proofs hold for any function; when run, a fixed small MLP."""

    hidden: int | None = Field(default=None, ge=1, description="default dim",
                                **at_most("hidden"))

    def normalised(self, dim: int) -> "OpaqueArgs":
        return self if self.hidden is not None else self.model_copy(update={"hidden": dim})

    def param_count(self, dim: int) -> int:  # two linear maps with biases
        h = self.hidden or dim
        return dim * h + h + h * dim + dim

    def kept(self, dim: int, seq: int) -> int:  # (hidden is filled in when normalised)
        return 2 * (self.hidden or 4 * dim)


class DropoutArgs(_Args):
    """`dropout = rates(embed=.., attn=.., branch=.., coef=..)`: rates in [0, 1)."""

    embed: float = Field(default=0.0, ge=0.0, lt=1.0)
    attn: float = Field(default=0.0, ge=0.0, lt=1.0)
    branch: float = Field(default=0.0, ge=0.0, lt=1.0)
    coef: float = Field(default=0.0, ge=0.0, lt=1.0)


class HeadArgs(_Args):
    """The model's head: final norm and unembedding."""

    tied: bool = False
    final_norm: bool = True


def norm_params(kind: NormKind, affine: bool, width: int) -> int:
    """LayerNorm: gain and bias; RMSNorm: gain; without affine: none."""
    if not affine:
        return 0
    return 2 * width if kind == "layernorm" else width


class LayerNormArgs(NormArgs):
    def param_count(self, dim: int) -> int:
        return norm_params("layernorm", self.affine, dim)


class RmsNormArgs(NormArgs):
    def param_count(self, dim: int) -> int:
        return norm_params("rmsnorm", self.affine, dim)


@dataclass(frozen=True)
class LayerKind:
    """Everything the torch-free stages know of one built-in layer kind."""

    name: str
    options: type[_Args]  # its options; their param_count(dim) and kept(dim, seq)
    ports: tuple[str, ...]  # its input ports (a user-supplied layer declares its own)
    short: str | None  # its label in the arrangement picture (None: the name's first 6)
    # reads one value with one input matmul beside its siblings (fuse-parallel-inputs:
    # attention's q, k, v and the MLP's up-projection)
    fusable: bool
    # mixes positions through attention weights: takes the `dropout attn` rate, exposes its
    # projected values to a value residual, drawn highlighted in the pictures
    attends: bool
    # a feed-forward network whose `hidden` width MUDD's FFN growth scales (arXiv 2502.12170
    # Eq. 9)
    feed_forward: bool

    def args(self, args: tuple[tuple[str, object], ...]) -> _Args:
        """The typed options from normalised (key, value) pairs."""
        return self.options.model_validate(dict(args))

    def param_count(self, args: tuple[tuple[str, object], ...], dim: int) -> int:
        return self.args(args).param_count(dim)


def _kind(name: str, options: type[_Args], ports: tuple[str, ...] = ("x",),
          short: str | None = None, fusable: bool = False, attends: bool = False,
          feed_forward: bool = False) -> LayerKind:
    return LayerKind(name, options, ports, short, fusable, attends, feed_forward)


# every built-in layer kind, in the order the language lists them
LAYERS: dict[str, LayerKind] = {k.name: k for k in (
    _kind("attention", AttentionArgs, ports=("q", "k", "v"), short="attn", fusable=True,
          attends=True),
    _kind("mlp", MlpArgs, short="mlp", fusable=True, feed_forward=True),
    _kind("layernorm", LayerNormArgs),
    _kind("rmsnorm", RmsNormArgs),
    _kind("opaque", OpaqueArgs, short="T"),
)}

# views of LAYERS: the options of each kind; the input ports of those that have more than x
LAYER_KINDS: dict[str, type[_Args]] = {name: k.options for name, k in LAYERS.items()}
LAYER_PORTS: dict[str, tuple[str, ...]] = {
    name: k.ports for name, k in LAYERS.items() if k.ports != ("x",)}


def layer_kind(kind: str, extern: bool = False) -> LayerKind | None:
    """The record of a built-in layer kind; None for a user-supplied (extern) layer."""
    return None if extern else LAYERS.get(kind)


def attends(kind: str, extern: bool = False) -> bool:
    """A built-in layer that mixes positions through attention weights (LayerKind.attends);
    an extern layer never counts as one, whatever it does."""
    record = layer_kind(kind, extern)
    return record is not None and record.attends


def ports_of(kind: str) -> tuple[str, ...]:
    record = LAYERS.get(kind)
    return record.ports if record is not None else ("x",)


# an extern layer's ports: `ports=qkv` is q, k, v (the ports MUDD's four ways feed);
# `ports=[a, b]` names them; vres and vmix are the value residual's
PORT_SHORTHANDS: dict[str, tuple[str, ...]] = {"qkv": ("q", "k", "v"), "x": ("x",)}
RESERVED_PORTS = ("vres", "vmix")
MAX_PORTS = 16


def check_ports(ports: object) -> tuple[tuple[str, ...], str | None]:
    """(ports, None) for a valid declaration (a shorthand name, or a list or tuple of port
    names), else ((), what is wrong)."""
    if isinstance(ports, str):
        ports = PORT_SHORTHANDS.get(ports, (ports,))
    if not isinstance(ports, (list, tuple)) or not ports:
        return (), "ports are a list of names, e.g. [q, k, v], or the shorthand qkv"
    if not all(isinstance(p, str) and p.isidentifier() for p in ports):
        return (), f"every port is a name, got {list(ports)}"
    if len(set(ports)) != len(ports):
        return (), f"port names repeat in {list(ports)}"
    if len(ports) > MAX_PORTS:
        return (), f"at most {MAX_PORTS} ports, got {len(ports)}"
    bad = [p for p in ports if p in RESERVED_PORTS]
    if bad:
        return (), f"'{bad[0]}' is reserved for the value residual"
    return tuple(ports), None


def layer_args(kind: str, args: tuple[tuple[str, object], ...]) -> _Args:
    """The typed options of a built-in layer from its normalised (key, value) pairs."""
    return LAYERS[kind].args(args)


def layer_params(kind: str, args: tuple[tuple[str, object], ...], dim: int) -> int:
    """Parameters of a built-in layer of width dim (what hcdsl.nn builds, counted)."""
    return LAYERS[kind].param_count(args, dim)
