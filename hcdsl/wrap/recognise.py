"""What hcdsl.wrap finds in a model: its residual blocks, each a list of sub-layers with their
pre-norms, and (for a language model) the embedding, final norm and head around them.

A sub-layer is what the connection connects: T := T∘Norm, a pre-norm and a module mapping
(batch, time, dim) to (batch, time, dim). The recognisers are small and per architecture
(hf.py: transformers decoders; blocks.py: a ModuleList of blocks following a protocol);
anything else is a CompileError that names what was not recognised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.spec import NormSpec


@dataclass
class Sublayer:
    role: str  # a short name for the spec: attn, mlp, layer
    norm: nn.Module  # its pre-norm
    module: nn.Module  # (batch, time, dim) on each port -> (batch, time, dim)
    ports: tuple[str, ...] = ("x",)


@dataclass
class Recognised:
    what: str  # for messages: "LlamaForCausalLM (llama)", "ModuleList of 4 blocks"
    name: str  # the spec's model name
    dim: int
    norm: NormSpec  # every pre-norm's (and the final norm's) kind, affine, eps
    blocks: list[list[Sublayer]]
    # a language model: tokens -> logits; vocab 0: a body, hidden states -> hidden states
    vocab: int = 0
    embed: nn.Module | None = None
    positions: int = 0  # learned absolute positions (GPT-2's wpe): the table size
    final_norm: nn.Module | None = None
    head: nn.Module | None = None
    tied: bool = False
    embed_dropout: float = 0.0
    # a model whose connection is not Pre-Norm (multistream.py): its own connection as .hc
    # text (`connection NAME { ... }` and `connect NAME`), the default of hcdsl.wrap(model),
    # and carry(wrapped) copying the connection's weights into the wrapped model's modules
    connection: str = ""
    carry: Callable[[nn.Module], None] | None = None


def norm_spec(module: nn.Module) -> NormSpec | None:
    """The .hc norm a module computes, or None if it is not a norm hcdsl knows:
    nn.LayerNorm (with or without affine; with a gain it needs a bias too), nn.RMSNorm, and
    RMSNorms of transformers and the like (a class named *RMSNorm with a `weight` and an
    `eps` or `variance_epsilon`: x / sqrt(mean(x²) + eps) * weight)."""
    if isinstance(module, nn.LayerNorm):
        if module.elementwise_affine and module.bias is None:
            return None  # a gain without a bias: not hcdsl's layernorm(affine=true)
        return NormSpec(kind="layernorm", affine=module.elementwise_affine, eps=module.eps)
    if isinstance(module, nn.RMSNorm):
        eps = module.eps if module.eps is not None else torch.finfo(torch.float32).eps
        return NormSpec(kind="rmsnorm", affine=module.elementwise_affine, eps=eps)
    eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
    weight = getattr(module, "weight", None)
    if type(module).__name__.endswith("RMSNorm") and isinstance(eps, float) and \
            isinstance(weight, torch.Tensor) and weight.dim() == 1:
        return NormSpec(kind="rmsnorm", affine=True, eps=eps)
    return None


def one_norm(norms: list[tuple[str, nn.Module]]) -> NormSpec:
    """The NormSpec every listed norm shares (a spec states one norm); an error naming the
    first that hcdsl does not know or that differs."""
    first: NormSpec | None = None
    for where, module in norms:
        spec = norm_spec(module)
        if spec is None:
            raise CompileError(
                f"hcdsl.wrap does not recognise the norm of {where}: {type(module).__name__} "
                "(it knows nn.LayerNorm, nn.RMSNorm and *RMSNorm modules with a weight and "
                "an eps)")
        if first is not None and spec != first:
            raise CompileError(f"the norm of {where} ({spec.kind}, eps {spec.eps:g}, affine "
                               f"{spec.affine}) differs from the first ({first.kind}, eps "
                               f"{first.eps:g}, affine {first.affine}): a spec has one norm")
        first = first or spec
    if first is None:
        raise CompileError("hcdsl.wrap found no blocks")
    return first


class Embed(nn.Module):
    """tokens -> token embeddings, plus learned absolute positions 0..T-1 (GPT-2's wpe)."""

    def __init__(self, tokens: nn.Embedding, positions: nn.Embedding | None = None) -> None:
        super().__init__()
        self.tokens, self.positions = tokens, positions

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tokens(tokens)
        if self.positions is None:
            return h
        T = tokens.shape[-1]
        if T > self.positions.num_embeddings:
            raise CompileError(f"a sequence of {T} tokens is longer than the model's "
                               f"{self.positions.num_embeddings} learned positions")
        return h + self.positions(torch.arange(T, device=tokens.device))


class TapEmbed(nn.Module):
    """tokens -> embeddings, telling a tap that a new forward begins (`tap.begin(tokens,
    embeddings)`, before any layer runs): what the wrapped layers share within one forward
    (DeepSeek-V4's hash-routed experts read the tokens; GLM-5-next's indexer passes its
    top-k to the next layer; while decoding, the model's cache and the positions and masks
    of these tokens: hcdsl/wrap/context.py)."""

    def __init__(self, tokens: nn.Embedding, tap: nn.Module | None) -> None:
        super().__init__()
        self.tokens = tokens
        self._tap = [tap]  # a list: the tap is not a submodule (no state_dict entry)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.tokens(tokens)
        tap = self._tap[0]
        if tap is not None:
            tap.begin(tokens, h)
        return h
