"""transformers' Qwen4-exp (`Qwen4ExpForCausalLM`, model_type 'qwen4_exp_text'): its 4-stream
gated residual read out of the model as generator .hc text.

Qwen4ExpTextDecoderLayer.forward, per sub-layer, on the flat state H (B, T, n·C):

    x, H, w = gate(H)            x = mean_s a_s ⊙ z_s, z = grouped RMSNorm(H) (weight 1 + g),
                                 a = sigmoid(U silu(D z / n)), w = 2 sigmoid(W z / n)
    o = layer(x)                 no pre-norm of the layer's own
    H = H + w ⊗ o                (no residual mix)

then the mixer (the same gate without w) and lm_head, no final norm: the connection of
specs/families/qwen4_gated_residual.hc (prenorm = false) with the model's n, eps and rank.
Weights: hc_norm.weight -> the generator's norm weight, input_mix_weight_down / _up -> the
read's down / up, block_inject_weight -> the write's weight.

The layers take transformers' own masks, made inside the adapters with the model's mask
functions from the 2-D padding mask (derived from hcdsl's mask), and the multimodal rotary
tables of text positions 0..T-1. While decoding (hcdsl.generate) they use the model's own
cache (`DynamicCache(config=...)`: the gated delta net's convolution and recurrent states,
the attention's keys and values, the indexer's positions) and the positions, masks and
rotary tables Qwen4ExpTextModel.forward makes from the cache's length (`Context.prepare`).

Per-layer n-gram embeddings (ple_layer_ids) are refused: Qwen4ExpTextPLELayer reads the whole
state (a query per stream) and adds a different vector to each stream (per-stream gates and
a depthwise convolution over the n·C features). An hcdsl layer maps one (B, T, C) input,
formed by the connection's read, to one (B, T, C) output that the write spreads over the
streams with a weight each; a layer of the whole state is not a layer of the language.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.frontend.printer import format_value
from hcdsl.nn.modules import attr_name
from hcdsl.spec import NormSpec
from hcdsl.wrap.context import Decodes, ForwardContext, namespace
from hcdsl.wrap.glm5_next import padding_2d
from hcdsl.wrap.recognise import Recognised, Sublayer, TapEmbed

CONNECTION = "qwen4_gated_residual"


class Context(ForwardContext):
    """Qwen4-exp's per-forward inputs while decoding, as Qwen4ExpTextModel.forward makes
    them before its layers: text positions after the cached ones (x 4: text + the three
    multimodal axes), the indexer's running positions kept in its cache layer, the causal
    and the recurrent (convolution) masks, the rotary tables."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model.config, namespace(model.model))
        self._rotary = [model.model.rotary_emb]

    def prepare(self, embeds: torch.Tensor) -> dict[str, Any]:
        cfg, cache = self.config, self.cache
        B, T = embeds.shape[:2]
        pos = torch.arange(T, device=embeds.device) + self.past()
        pos = pos.view(1, 1, -1).expand(4, B, -1)
        text, positions = pos[0], pos[1:]
        if "indexed_attention" in cfg.layer_types:
            indexer = cache.layers[cfg.layer_types.index("indexed_attention")]
            if indexer.indexer_position_ids is not None:
                positions = torch.cat([indexer.indexer_position_ids, positions], dim=-1)
            indexer.indexer_position_ids = positions
        kw = dict(config=cfg, inputs_embeds=embeds, attention_mask=None, cache=cache,
                  position_ids=text, allow_is_causal_skip=False)
        # the causal mask only for attention layers: with linear-attention layers alone the
        # cache has no attention layer to size it (create_causal_mask raises ValueError:
        # "`get_mask_sizes` can only be called on Attention layers"; so does transformers'
        # own cached forward of such a config)
        mask = (self.ns.create_causal_mask(**kw) if "indexed_attention" in cfg.layer_types
                else None)
        return {"mask": mask, "conv": self.ns.create_recurrent_attention_mask(**kw),
                "pe": self._rotary[0](embeds, positions)}


class Layer(Decodes):
    """Qwen4ExpTextAttention (indexed, QSA) or Qwen4ExpTextGatedDeltaNet as an hcdsl layer."""

    def __init__(self, attn: nn.Module, linear: bool, rotary: nn.Module,
                 context: Context) -> None:
        super().__init__(context)
        self.attn, self.linear, self.rotary = attn, linear, rotary
        self.ns = namespace(attn)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        step = self.step()
        if step is not None:
            cache = self.context.cache
            if self.linear:
                return self.attn(x, cache=cache, attention_mask=step["conv"])
            return self.attn(x, step["pe"], attention_mask=step["mask"], cache=cache)[0]
        B, T = x.shape[:2]
        pad = None if mask is None else padding_2d(mask, x).long()
        kw = dict(config=self.context.config, inputs_embeds=x, attention_mask=pad, cache=None,
                  position_ids=torch.arange(T, device=x.device)[None].expand(B, T),
                  allow_is_causal_skip=False)
        if self.linear:
            conv = self.ns.create_recurrent_attention_mask(**kw)
            return self.attn(x, cache=None, attention_mask=conv)
        positions = torch.arange(T, device=x.device).view(1, 1, T).expand(3, B, T)
        pe = self.rotary(x, positions)
        return self.attn(x, pe, attention_mask=self.ns.create_causal_mask(**kw), cache=None)[0]


class MoE(nn.Module):
    mixes_time = False  # token by token: decodes without a cache (hcdsl/nn/decode.py)

    def __init__(self, mlp: nn.Module) -> None:
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(x)
        return out[0] if isinstance(out, tuple) else out


def connection_text(n: int, eps: float, rank: int) -> str:
    e = format_value(float(eps))
    gate = (f"lowrank(rank={rank}, mid=silu, mid_div={n}, act=sigmoid, per=channel, "
            "source=normed, combine=mean)")
    return f"""# Qwen4-exp's gated residual (Qwen4ExpTextGatedResidual), read out of the model
connection {CONNECTION} {{
  streams = {n}
  prenorm = false
  generator {{
    input = flat
    norm = rmsnorm(weight=offset, eps={e}, groups=streams)
    read = {gate}
    write = linear(act=double_sigmoid, div={n})
  }}
  generator readout {{
    input = flat
    norm = rmsnorm(weight=offset, eps={e}, groups=streams)
    readout = {gate}
  }}
}}
connect {CONNECTION}"""


def _gates(model: nn.Module) -> tuple[list[nn.Module], nn.Module]:
    base = model.model
    layers = list(base.layers)[:model.config.num_hidden_layers]
    return ([g for lay in layers for g in (lay.attn_hyper_connection,
                                           lay.mlp_hyper_connection)],
            base.hyper_connection_mixer)


def _pairs(model: nn.Module, wrapped: nn.Module):  # noqa: ANN202
    gates, mixer = _gates(model)
    coefs = [wrapped.get_submodule(attr_name(f"L{k}.coef")) for k in range(1, len(gates) + 1)]
    return list(zip(gates, coefs, ["read"] * len(gates))) + [
        (mixer, wrapped.get_submodule(attr_name("readout.gen")), "readout")]


def carry(model: nn.Module, wrapped: nn.Module) -> None:
    with torch.no_grad():
        for gate, coef, role in _pairs(model, wrapped):
            coef.norm.weight.copy_(gate.hc_norm.weight)
            coef.outs[role].down.copy_(gate.input_mix_weight_down.weight)
            coef.outs[role].up.copy_(gate.input_mix_weight_up.weight)
            if gate.block_inject_weight is not None:
                coef.outs["write"].weight.copy_(gate.block_inject_weight.weight)


def write_back(wrapped: nn.Module, model: nn.Module) -> None:
    with torch.no_grad():
        for gate, coef, role in _pairs(model, wrapped):
            gate.hc_norm.weight.copy_(coef.norm.weight)
            gate.input_mix_weight_down.weight.copy_(coef.outs[role].down)
            gate.input_mix_weight_up.weight.copy_(coef.outs[role].up)
            if gate.block_inject_weight is not None:
                gate.block_inject_weight.weight.copy_(coef.outs["write"].weight)


def recognise(model: nn.Module) -> Recognised:
    cfg, base = model.config, model.model
    if cfg.ple_layer_ids:
        raise CompileError(
            f"hcdsl.wrap cannot read Qwen4-exp's connection with per-layer n-gram embeddings "
            f"(ple_layer_ids = {list(cfg.ple_layer_ids)}): Qwen4ExpTextPLELayer reads the "
            "whole state and adds a different vector to each stream, which no hcdsl layer "
            "does (a layer maps the connection's read, one (batch, time, dim) input, to one "
            "output the write spreads over the streams); wrap a model without ple_layer_ids")
    layers = list(base.layers)[:cfg.num_hidden_layers]
    for k in ("attn_hyper_connection", "mlp_hyper_connection"):
        got = type(getattr(layers[0], k, None)).__name__
        if got != "Qwen4ExpTextGatedResidual":
            raise CompileError(f"hcdsl.wrap does not understand Qwen4-exp block 0's {k}: "
                               f"{got} (it reads Qwen4ExpTextGatedResidual)")
    context = Context(model)
    blocks = []
    for lay in layers:
        linear = lay.layer_type == "linear_attention"
        attn = lay.linear_attn if linear else lay.self_attn
        blocks.append([Sublayer("attn", None, Layer(attn, linear, base.rotary_emb, context)),  # type: ignore[arg-type]
                       Sublayer("moe", None, MoE(lay.mlp))])  # type: ignore[arg-type]
    return Recognised(
        what=f"{type(model).__name__} (qwen4_exp_text)", name="qwen4_exp",
        dim=cfg.hidden_size, norm=NormSpec(kind="rmsnorm", affine=True, eps=cfg.rms_norm_eps),
        blocks=blocks, vocab=base.embed_tokens.num_embeddings, embed=TapEmbed(base.embed_tokens, context),
        final_norm=None, head=model.lm_head,
        tied=model.lm_head.weight is base.embed_tokens.weight,
        connection=connection_text(cfg.hc_count, cfg.rms_norm_eps, cfg.hc_lowrank),
        carry=lambda wrapped: carry(model, wrapped))


__all__ = ["Context", "Layer", "MoE", "carry", "connection_text", "recognise", "write_back"]
