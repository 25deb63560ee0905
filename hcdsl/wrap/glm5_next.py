"""transformers' GLM-5-next text model (`Glm5NextTextModel`, model_type 'glm5_next_text'):
hidden states in its mHC, read out of the model as generator .hc text.

Glm5NextTextDecoderLayer.forward is DeepSeek-V4's (deepseek_v4.py): per sub-layer
`post, comb, x = attn_hc(H)`, `o = layer(input_layernorm(x))`, `H = post ⊗ o + combᵀ H`;
Glm5NextTextHyperConnection is DeepseekV4HyperConnection (the same fused fn/base/scale, split
by rows); the head (Glm5NextTextHyperHead) is the unweighted mean of the streams, then the
final norm: specs/families/glm5_mhc.hc with the model's numbers.

The model gives hidden states (no lm_head): the spec's head is an identity, so the wrapped
model maps tokens to the final norm's output (B, T, hidden), transformers'
`last_hidden_state`. Extra inputs made inside the adapters: the 2-D padding mask both
attention kinds take (from hcdsl's mask), and the indexer's top-k indices, which an indexed
attention layer hands to the next one (`prev_topk_indices`): a `ForwardTap` holds them
within one forward (reset by the embedding). GLM-5-next uses no positional embedding (NoPE).
"""

from __future__ import annotations

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.frontend.printer import format_value
from hcdsl.wrap.deepseek_v4 import (
    _padded, carry_layers, coef_modules, hyper_connections, write_back_layers,
)
from hcdsl.wrap.recognise import Recognised, Sublayer, TapEmbed, one_norm

CONNECTION = "glm5_mhc"


class ForwardTap(nn.Module):
    """What one layer hands the next within a forward: the indexer's top-k indices."""

    def __init__(self) -> None:
        super().__init__()
        self.topk: torch.Tensor | None = None

    def begin(self, tokens: torch.Tensor) -> None:  # a new forward: no layer has run
        self.topk = None


def padding_2d(mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """(B, T) bool, True = a real token, from hcdsl's (B, 1, T, T) mask (None: all real)."""
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return _padded(mask).any(dim=-2)[:, 0]


class Attention(nn.Module):
    """Glm5NextTextAttention (indexed) or Glm5NextTextLinearAttention as an hcdsl layer."""

    def __init__(self, attn: nn.Module, linear: bool, tap: ForwardTap) -> None:
        super().__init__()
        self.attn, self.linear = attn, linear
        self._tap = [tap]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pad = padding_2d(mask, x)
        if self.linear:
            return self.attn(hidden_states=x, cache=None, attention_mask=pad)
        tap = self._tap[0]
        out, _, topk = self.attn(hidden_states=x, attention_mask=pad, cache=None,
                                 prev_topk_indices=tap.topk)
        tap.topk = topk
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


def _layers(model: nn.Module) -> list[nn.Module]:
    return list(model.layers)[:model.config.num_hidden_layers]


def carry(model: nn.Module, wrapped: nn.Module) -> None:
    hcs = hyper_connections(_layers(model))
    coefs, _ = coef_modules(wrapped, len(hcs), readout=False)
    carry_layers(hcs, coefs, model.config.hc_mult)


def write_back(wrapped: nn.Module, model: nn.Module) -> None:
    """The wrapped model's connection weights into `model`'s HyperConnections."""
    hcs = hyper_connections(_layers(model))
    coefs, _ = coef_modules(wrapped, len(hcs), readout=False)
    write_back_layers(coefs, hcs)


def recognise(model: nn.Module) -> Recognised:
    cfg = model.config
    if not hasattr(model, "layers"):
        raise CompileError(f"hcdsl.wrap reads GLM-5-next's text model (Glm5NextTextModel); "
                           f"got {type(model).__name__}: pass its language model")
    for k in ("attn_hc", "ffn_hc"):
        got = type(getattr(model.layers[0], k, None)).__name__
        if got != "Glm5NextTextHyperConnection":
            raise CompileError(f"hcdsl.wrap does not understand GLM-5-next block 0's {k}: "
                               f"{got} (it reads Glm5NextTextHyperConnection)")
    if type(getattr(model, "hc_head", None)).__name__ != "Glm5NextTextHyperHead":
        raise CompileError("hcdsl.wrap does not understand GLM-5-next's hc_head: "
                           f"{type(getattr(model, 'hc_head', None)).__name__}")
    tap = ForwardTap()
    layers = _layers(model)
    blocks = [[Sublayer("attn", lay.input_layernorm,
                        Attention(lay.self_attn, lay.block_type == "linear_attention", tap)),
               Sublayer("mlp", lay.post_attention_layernorm, lay.mlp)] for lay in layers]
    norm = one_norm([(f"block {i} {s.role}", s.norm) for i, b in enumerate(blocks)
                     for s in b] + [("the final norm", model.norm)])
    return Recognised(
        what=f"{type(model).__name__} (glm5_next_text)", name="glm5_next", dim=cfg.hidden_size,
        norm=norm, blocks=blocks, vocab=model.embed_tokens.num_embeddings,
        embed=TapEmbed(model.embed_tokens, tap), final_norm=model.norm, head=nn.Identity(),
        connection=connection_text(cfg.hc_mult, cfg.rms_norm_eps, cfg.hc_eps,
                                   cfg.hc_sinkhorn_iters),
        carry=lambda wrapped: carry(model, wrapped))


__all__ = ["Attention", "ForwardTap", "carry", "connection_text", "recognise", "write_back"]
