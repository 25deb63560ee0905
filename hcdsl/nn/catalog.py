"""The built-in layers and the options each takes (validated with pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttentionArgs(_Args):
    """Causal multi-head self-attention with separate q/k/v input ports and RoPE."""

    heads: int = Field(ge=1)
    bias: bool = False
    rope: bool = True


class MlpArgs(_Args):
    """Two-layer feed-forward network: gelu, or swiglu (gated, three matrices)."""

    hidden: int | None = Field(default=None, ge=1, description="default 4 x dim")
    act: Literal["gelu", "swiglu"] = "gelu"
    bias: bool = False


class NormArgs(_Args):
    """A normalisation layer (also the model's `norm` setting)."""

    affine: bool = True
    eps: float = Field(default=1e-5, gt=0)


class OpaqueArgs(_Args):
    """An uninterpreted layer: proofs hold for any function; when run, a fixed small MLP."""

    hidden: int | None = Field(default=None, ge=1, description="default dim")


class HeadArgs(_Args):
    """The model's head: final norm and unembedding."""

    tied: bool = False
    final_norm: bool = True


LAYER_KINDS: dict[str, type[_Args]] = {
    "attention": AttentionArgs,
    "mlp": MlpArgs,
    "layernorm": NormArgs,
    "rmsnorm": NormArgs,
    "opaque": OpaqueArgs,
}

# the input ports of each built-in layer kind; user-supplied layers take one port, x
LAYER_PORTS: dict[str, tuple[str, ...]] = {"attention": ("q", "k", "v")}


def ports_of(kind: str) -> tuple[str, ...]:
    return LAYER_PORTS.get(kind, ("x",))
