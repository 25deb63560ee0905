"""The validated model: what a .hc file means, independent of how it was written.

Produced by hcdsl.frontend.validate, printed back to .hc by hcdsl.frontend.printer, desugared
to the primitive connection form by hcdsl.schemes.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict

Scalar = Union[bool, int, float, str]
Matrix = tuple[tuple[float, ...], ...]
# a matrix of a user-defined connection: numbers, or names of its learned `param`s
Template = tuple[tuple[Union[float, str], ...], ...]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NormSpec(Frozen):
    kind: Literal["layernorm", "rmsnorm"] = "layernorm"
    affine: bool = True
    eps: float = 1e-5


class LayerSpec(Frozen):
    name: str
    kind: str  # attention | mlp | layernorm | rmsnorm | opaque | a user-supplied name
    args: tuple[tuple[str, Scalar], ...] = ()
    extern: bool = False

    def arg(self, key: str, default: Scalar | None = None) -> Scalar | None:
        return dict(self.args).get(key, default)


class ConnectionSpec(Frozen):
    kind: str  # residual | parallel | hyper | ...: a preset name, desugared by hcdsl.schemes
    # preset options; a user-defined connection also has tuples (init weights, params)
    options: tuple[tuple[str, Union[Scalar, tuple[Any, ...]]], ...] = ()
    # literal per-layer matrices, 1-based layer index -> matrix, after resolving selectors
    matrices: tuple[tuple[int, Template], ...] = ()

    def option(self, key: str, default: Scalar | None = None) -> Scalar | None:
        return dict(self.options).get(key, default)


class HeadSpec(Frozen):
    tied: bool = False
    final_norm: bool = True


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

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def sequence(self) -> list[LayerSpec]:
        """The layers in execution order (layer k of the papers is sequence[k - 1])."""
        return [self.layer(name) for block in self.body for name in block]

    @property
    def blocks(self) -> list[list[int]]:
        """0-based layer indices grouped by block."""
        out, k = [], 0
        for block in self.body:
            out.append(list(range(k, k + len(block))))
            k += len(block)
        return out
