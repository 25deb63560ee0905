"""The validated model: what a .hc file means, independent of how it was written.

Produced by hcdsl.frontend.validate, printed back to .hc by hcdsl.frontend.printer, desugared
to the primitive connection form by hcdsl.schemes. Options are carried typed: a layer's as
its normalised (key, value) pairs (every default filled in), a connection's as the preset's
options object (hcdsl.lang.connections).
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict

from hcdsl.lang.catalog import NormKind, ports_of
from hcdsl.lang.connections import ResidualOptions

Scalar = Union[bool, int, float, str]
Matrix = tuple[tuple[float, ...], ...]
# a matrix of a user-defined connection: numbers, or names of its learned `param`s
Template = tuple[tuple[Union[float, str], ...], ...]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NormSpec(Frozen):
    kind: NormKind = "layernorm"
    affine: bool = True
    eps: float = 1e-5


class LayerSpec(Frozen):
    name: str
    kind: str  # attention | mlp | layernorm | rmsnorm | opaque | a user-supplied name
    # built-in: every option of the kind, defaults filled in; extern: as written
    args: tuple[tuple[str, Scalar], ...] = ()
    extern: bool = False
    # extern: its input ports, from the spec (`ports=qkv`) or the factory (`ports = (...)`);
    # empty: one port, x. Built-in kinds have fixed ports (hcdsl.lang.catalog.LAYER_PORTS)
    ports: tuple[str, ...] = ()

    def arg(self, key: str, default: Scalar | None = None) -> Scalar | None:
        return dict(self.args).get(key, default)

    @property
    def in_ports(self) -> tuple[str, ...]:
        """The layer's input ports: attention q, k, v; an extern layer its declared ones."""
        if self.extern:
            return self.ports or ("x",)
        return ports_of(self.kind)


class ConnectionSpec(Frozen):
    kind: str  # residual | parallel | hyper | ... | custom: a preset of hcdsl.lang.connections
    options: Any = ResidualOptions()  # the preset's options object (typed, validated)
    # literal per-layer matrices, 1-based layer index -> matrix, after resolving selectors
    matrices: tuple[tuple[int, Template], ...] = ()


class HeadSpec(Frozen):
    tied: bool = False
    final_norm: bool = True


class DropoutSpec(Frozen):
    """Dropout rates while training (all 0: off). embed: on the embedding (or the input
    hidden states); attn: on the attention weights of built-in attention layers; branch: on
    every layer's output before the connection writes it; coef: on the state a connection's
    dynamic weights are computed from (the input of HC's/FC's/mHC's/MUDD's projections)."""

    embed: float = 0.0
    attn: float = 0.0
    branch: float = 0.0
    coef: float = 0.0


class ModelSpec(Frozen):
    name: str
    dim: int
    vocab: int
    context: int | None = None
    norm: NormSpec = NormSpec()
    layers: tuple[LayerSpec, ...]
    body: tuple[tuple[str, ...], ...]  # blocks of layer names, in order
    connection: ConnectionSpec = ConnectionSpec(kind="residual")
    head: HeadSpec = HeadSpec()
    # tokens: embedding -> body -> head (logits); hidden: a body from hidden states (B, T,
    # dim) to hidden states, no embedding, no head, no vocabulary (vocab = 0)
    input: Literal["tokens", "hidden"] = "tokens"
    pos: Literal["none", "learned"] = "none"  # learned: absolute positions, `context` of them
    dropout: DropoutSpec = DropoutSpec()

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def sequence(self) -> list[LayerSpec]:
        """The layers in execution order (layer k of the papers is sequence[k - 1])."""
        by_name = {spec.name: spec for spec in self.layers}
        return [by_name[name] for block in self.body for name in block]

    @property
    def blocks(self) -> list[list[int]]:
        """0-based layer indices grouped by block."""
        out, k = [], 0
        for block in self.body:
            out.append(list(range(k, k + len(block))))
            k += len(block)
        return out
