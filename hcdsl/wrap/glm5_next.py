"""transformers' GLM-5-next text model (`Glm5NextTextModel`, model_type 'glm5_next_text'):
hidden states in its mHC, read out of the model as generator .hc text.

Glm5NextTextDecoderLayer.forward is DeepSeek-V4's (deepseek_v4.py): per sub-layer
`post, comb, x = attn_hc(H)`, `o = layer(input_layernorm(x))`, `H = post ⊗ o + combᵀ H`;
Glm5NextTextHyperConnection is DeepseekV4HyperConnection (the same fused fn/base/scale, split
by rows); the head (Glm5NextTextHyperHead) is the unweighted mean of the streams, then the
final norm: specs/families/glm5_mhc.hc with the model's numbers.

`Glm5NextTextModel` gives hidden states (no lm_head): the spec's head is an identity, so the
wrapped model maps tokens to the final norm's output (B, T, hidden), transformers'
`last_hidden_state`. `Glm5NextForConditionalGeneration` (text only: its language model and
lm_head; the vision tower is not part of the wrap) gives logits and generates. Extra inputs
made inside the adapters: the 2-D padding mask both attention kinds take (from hcdsl's mask),
and the indexer's top-k indices, which an indexed attention layer hands to the next one
(`prev_topk_indices`), held within one forward by the model's `ForwardContext`
(context.py, reset by the embedding). GLM-5-next uses no positional embedding (NoPE). While
decoding, the layers use the model's own cache (`DynamicCache(config=...)`: the linear
attention's recurrent and convolution states, the indexed attention's keys and indexer
keys) and the mask and positions the model's forward makes from the cache's length.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.frontend.printer import format_value
from hcdsl.wrap.context import Decodes, ForwardContext, PerToken, namespace
from hcdsl.wrap.deepseek_v4 import (
    _padded, carry_layers, coef_modules, hyper_connections, write_back_layers,
)
from hcdsl.wrap.recognise import Recognised, Sublayer, TapEmbed, one_norm

CONNECTION = "glm5_mhc"


class Context(ForwardContext):
    """GLM-5-next's per-forward inputs while decoding, as Glm5NextTextModel.forward makes
    them: the 2-D recurrent mask over the new tokens (all real without padding) and the
    positions after the cached ones."""

    def __init__(self, text_model: nn.Module) -> None:
        super().__init__(text_model.config, namespace(text_model))

    def prepare(self, embeds: torch.Tensor) -> dict[str, Any]:
        B, T = embeds.shape[:2]
        past = self.past()
        mask = self.ns.create_recurrent_attention_mask(
            config=self.config, inputs_embeds=embeds, attention_mask=None, cache=self.cache)
        if mask is None:
            mask = torch.ones(B, T, dtype=torch.bool, device=embeds.device)
        positions = (torch.arange(T, device=embeds.device) + past)[None]
        return {"mask": mask.bool(), "positions": positions}


def padding_2d(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """(B, T) bool, True = a real token, from hcdsl's (B, 1, T, T) mask (None: all real)."""
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return _padded(mask).any(dim=-2)[:, 0]


class Attention(Decodes):
    """Glm5NextTextAttention (indexed) or Glm5NextTextLinearAttention as an hcdsl layer."""

    def __init__(self, attn: nn.Module, linear: bool, context: Context) -> None:
        super().__init__(context)
        self.attn, self.linear = attn, linear

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        context, step = self.context, self.step()
        cache = None if step is None else context.cache
        pad = padding_2d(mask, x) if step is None else step["mask"]
        if self.linear:
            return self.attn(hidden_states=x, cache=cache, attention_mask=pad)
        extra = {} if step is None else {"position_ids": step["positions"]}
        out, _, topk = self.attn(hidden_states=x, attention_mask=pad, cache=cache,
                                 prev_topk_indices=context.topk, **extra)
        context.topk = topk
        return out


def connection_text(n: int, norm_eps: float, hc_eps: float, iters: int) -> str:
    e, h = format_value(float(norm_eps)), format_value(float(hc_eps))
    mean = ", ".join([format_value(1.0 / n)] * n)
    return f"""# GLM-5-next's mHC (Glm5NextTextHyperConnection, Glm5NextTextHyperHead), read out of the model
connection {CONNECTION} {{
  streams = {n}
  readout = [{mean}]
  generator {{
    input = flat
    norm = rmsnorm(weight=none, eps={e})
    read = linear(act=sigmoid, scale=1, bias=0, add={h})
    write = linear(act=double_sigmoid, scale=1, bias=0)
    res = linear(scale=1, bias=0, constraint=sinkhorn(order=softmax_rows, iters={iters}, eps={h}))
  }}
}}
connect {CONNECTION}"""


def text_model(model: nn.Module) -> nn.Module:
    """The Glm5NextTextModel of a text model or of a Glm5NextForConditionalGeneration."""
    inner = getattr(getattr(model, "model", None), "language_model", None)
    return inner if inner is not None else model


def _layers(model: nn.Module) -> list[nn.Module]:
    text = text_model(model)
    return list(text.layers)[:text.config.num_hidden_layers]


def carry(model: nn.Module, wrapped: nn.Module) -> None:
    hcs = hyper_connections(_layers(model))
    coefs, _ = coef_modules(wrapped, len(hcs), readout=False)
    carry_layers(hcs, coefs, text_model(model).config.hc_mult)


def write_back(wrapped: nn.Module, model: nn.Module) -> None:
    """The wrapped model's connection weights into `model`'s HyperConnections."""
    hcs = hyper_connections(_layers(model))
    coefs, _ = coef_modules(wrapped, len(hcs), readout=False)
    write_back_layers(coefs, hcs)


def recognise(model: nn.Module) -> Recognised:
    """A Glm5NextTextModel (hidden states) or a Glm5NextForConditionalGeneration (its
    language model and lm_head: logits)."""
    head = getattr(model, "lm_head", None)
    text = text_model(model)
    cfg = text.config
    if not hasattr(text, "layers"):
        raise CompileError(f"hcdsl.wrap reads GLM-5-next's text model (Glm5NextTextModel) or "
                           f"Glm5NextForConditionalGeneration; got {type(model).__name__}")
    for k in ("attn_hc", "ffn_hc"):
        got = type(getattr(text.layers[0], k, None)).__name__
        if got != "Glm5NextTextHyperConnection":
            raise CompileError(f"hcdsl.wrap does not understand GLM-5-next block 0's {k}: "
                               f"{got} (it reads Glm5NextTextHyperConnection)")
    if type(getattr(text, "hc_head", None)).__name__ != "Glm5NextTextHyperHead":
        raise CompileError("hcdsl.wrap does not understand GLM-5-next's hc_head: "
                           f"{type(getattr(text, 'hc_head', None)).__name__}")
    context = Context(text)
    layers = _layers(model)
    blocks = [[Sublayer("attn", lay.input_layernorm,
                        Attention(lay.self_attn, lay.block_type == "linear_attention", context)),
               Sublayer("mlp", lay.post_attention_layernorm, PerToken(lay.mlp))]
              for lay in layers]
    norm = one_norm([(f"block {i} {s.role}", s.norm) for i, b in enumerate(blocks)
                     for s in b] + [("the final norm", text.norm)])
    kind = "glm5_next_text" if head is None else "glm5_next"
    return Recognised(
        what=f"{type(model).__name__} ({kind})", name="glm5_next", dim=cfg.hidden_size,
        norm=norm, blocks=blocks, vocab=text.embed_tokens.num_embeddings,
        embed=TapEmbed(text.embed_tokens, context), final_norm=text.norm,
        head=nn.Identity() if head is None else head,
        tied=head is not None and head.weight is text.embed_tokens.weight,
        connection=connection_text(cfg.hc_mult, cfg.rms_norm_eps, cfg.hc_eps,
                                   cfg.hc_sinkhorn_iters),
        carry=lambda wrapped: carry(model, wrapped))


__all__ = ["Attention", "Context", "carry", "connection_text", "recognise", "write_back"]
