"""transformers' DeepSeek-V4 (`DeepseekV4ForCausalLM`, model_type 'deepseek_v4'): its
manifold-constrained hyper-connections read out of the model as generator .hc text.

DeepseekV4DecoderLayer.forward, per sub-layer (attention, then the MoE), on the hc_mult
streams H (B, T, n, C):

    post, comb, x = attn_hc(H)           x = sum_s pre_s H_s        (DeepseekV4HyperConnection)
    o = self_attn(input_layernorm(x))                                (the layer's pre-norm)
    H = post ⊗ o + combᵀ H

and the model: H_0 = n copies of the embedding, h = hc_head(H_L), final norm, lm_head. So the
block's norms are its layers' pre-norms (T := T∘Norm, as hcdsl.wrap keeps them) and the
connection is the generator spec of specs/families/deepseek_v4_mhc.hc (mHC, arXiv
2512.24880 §4.2) with the model's n, rms_norm_eps, hc_eps and Sinkhorn iterations.
transformers' fused `fn` ((2n + n²) x nC), `base` and `scale` (3) are split by rows into the
spec's read, write and res projections (carry below); the head's hc_fn, hc_base, hc_scale
are the readout's.

Extra inputs of the layers are made inside the adapters: positions 0..T-1, both rotary
tables ('main' and 'compress'), the sliding-window causal mask with hcdsl's padding mask;
hash-routed MoE layers (mlp_layer_types 'hash_moe') route by token id: the embedding adapter
hands the input ids to them through the model's `ForwardContext` (context.py; set on every
forward, read in the same forward). While decoding (hcdsl.generate) the attention layers
use the model's own cache (`DynamicCache(config=...)`: sliding-window keys and the CSA/HCA
compressor states) and the positions, rotary tables and mask the model's forward makes from
the cache's length (`Context.prepare`); each step runs on the new tokens alone.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.frontend.printer import format_value
from hcdsl.nn.modules import attr_name
from hcdsl.wrap.context import Decodes, ForwardContext, namespace
from hcdsl.wrap.recognise import Recognised, Sublayer, TapEmbed, one_norm

CONNECTION = "deepseek_v4_mhc"


class Context(ForwardContext):
    """DeepSeek-V4's per-forward inputs while decoding, as DeepseekV4Model.forward makes
    them before its layers: positions after the cached ones, the sliding-window causal mask
    over cache and new tokens, both rotary tables."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model.config, namespace(model.model))
        self._rotary = [model.model.rotary_emb]

    def prepare(self, embeds: torch.Tensor) -> dict[str, Any]:
        T = embeds.shape[1]
        positions = (torch.arange(T, device=embeds.device) + self.past())[None]
        mask = self.ns.create_sliding_window_causal_mask(
            config=self.config, inputs_embeds=embeds, attention_mask=None, cache=self.cache,
            position_ids=positions)
        pe = {kind: self._rotary[0](embeds, position_ids=positions, layer_type=kind)
              for kind in ("main", "compress")}
        return {"positions": positions, "mask": mask, "pe": pe}


class Attention(Decodes):
    """DeepseekV4Attention as an hcdsl layer: x (B, T, C) -> (B, T, C), with the rotary
    tables, positions and the sliding-window causal mask made from x (and hcdsl's mask);
    while decoding, the model's cache and the context's inputs."""

    def __init__(self, attn: nn.Module, rotary: nn.Module, context: Context) -> None:
        super().__init__(context)
        self.attn, self.rotary = attn, rotary
        self.window = attn.config.sliding_window

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        step = self.step()
        if step is not None:
            return self.attn(hidden_states=x, position_embeddings=step["pe"],
                             position_ids=step["positions"], attention_mask=step["mask"],
                             cache=self.context.cache)[0]
        T = x.shape[1]
        positions = torch.arange(T, device=x.device)[None]
        pe = {kind: self.rotary(x, position_ids=positions, layer_type=kind)
              for kind in ("main", "compress")}
        i = torch.arange(T, device=x.device)
        allowed = (i[None, :] <= i[:, None])[None, None] if mask is None else _padded(mask)
        if self.window is not None:
            allowed = allowed & (i[None, :] > i[:, None] - self.window)[None, None]
        allowed = allowed.expand(x.shape[0], 1, T, T)  # compressed layers cat (B, ...) to it
        hf_mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(
            ~allowed, torch.finfo(x.dtype).min)
        return self.attn(hidden_states=x, position_embeddings=pe, position_ids=positions,
                         attention_mask=hf_mask)[0]


def _padded(allowed: torch.Tensor) -> torch.Tensor:
    """hcdsl's mask lets a query with no key (a padding token's) attend to itself; in
    transformers that query sees no key (only the attention sink), and its output reaches
    real tokens through the compressed layers' compressor (which reads every position). Undo
    it: a row allowing only its own key, a key no later row allows, is a padding row (the
    last row is taken as a real token's: a sequence of padding only is the one case read
    differently)."""
    T = allowed.shape[-1]
    eye = torch.eye(T, dtype=torch.bool, device=allowed.device)
    later = torch.ones(T, T, dtype=torch.bool, device=allowed.device).tril(-1)  # t > s
    only_self = (allowed.sum(-1) == 1) & allowed.diagonal(dim1=-2, dim2=-1)
    seen_later = (allowed & later).any(dim=-2)  # key s allowed by some row t > s
    last = torch.arange(T, device=allowed.device) == T - 1
    pad = only_self & ~seen_later & ~last
    return allowed & ~(pad[..., :, None] & eye)


class MoE(nn.Module):
    """DeepseekV4SparseMoeBlock as an hcdsl layer; a hash-routed one reads the token ids
    of the current forward from the context (set by the embedding). Token by token: it
    decodes without a cache (mixes_time, hcdsl/nn/decode.py)."""

    mixes_time = False

    def __init__(self, mlp: nn.Module, context: ForwardContext) -> None:
        super().__init__()
        self.mlp = mlp
        self._context = [context]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.mlp.is_hash:
            return self.mlp(x)
        ids = self._context[0].tokens
        if ids is None:  # before any forward: hcdsl's extern probe at wrap time only
            ids = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        elif ids.shape != x.shape[:2]:
            raise CompileError(
                f"a hash-routed MoE layer of DeepSeek-V4 routes by token id: it got hidden "
                f"states {tuple(x.shape)} and tokens {tuple(ids.shape)}; run the wrapped "
                "model on tokens")
        return self.mlp(x, input_ids=ids)


def connection_text(n: int, norm_eps: float, hc_eps: float, iters: int) -> str:
    """The model's own connection: specs/families/deepseek_v4_mhc.hc with its numbers."""
    e, h = format_value(float(norm_eps)), format_value(float(hc_eps))
    return f"""# DeepSeek-V4's mHC (DeepseekV4HyperConnection, DeepseekV4HyperHead), read out of the model
connection {CONNECTION} {{
  streams = {n}
  generator {{
    input = flat
    norm = rmsnorm(weight=none, eps={e})
    read = linear(act=sigmoid, scale=1, bias=0, add={h})
    write = linear(act=double_sigmoid, scale=1, bias=0)
    res = linear(scale=1, bias=0, constraint=sinkhorn(order=softmax_rows, iters={iters}, eps={h}))
  }}
  generator readout {{
    input = flat
    norm = rmsnorm(weight=none, eps={e})
    readout = linear(act=sigmoid, scale=1, bias=0, add={h})
  }}
}}
connect {CONNECTION}"""


def _hcs(model: nn.Module) -> list[nn.Module]:
    """Every sub-layer's HyperConnection in layer order: attn_hc0, ffn_hc0, attn_hc1, ..."""
    return hyper_connections(model.model.layers[:model.config.num_hidden_layers])


def hyper_connections(layers: list[nn.Module]) -> list[nn.Module]:
    return [hc for lay in layers for hc in (lay.attn_hc, lay.ffn_hc)]


def coef_modules(wrapped: nn.Module, layers: int,
                 readout: bool = True) -> tuple[list[nn.Module], nn.Module | None]:
    """The wrapped model's generator modules: L1.coef ... L{layers}.coef and readout.gen."""
    return ([wrapped.get_submodule(attr_name(f"L{k}.coef")) for k in range(1, layers + 1)],
            wrapped.get_submodule(attr_name("readout.gen")) if readout else None)


def carry_layers(hcs: list[nn.Module], coefs: list[nn.Module], n: int) -> None:
    """Each HyperConnection's fused fn/base/scale into a generator's read/write/res, by rows
    (pre n, post n, comb n²); the generator kept in float32."""
    rows = (slice(0, n), slice(n, 2 * n), slice(2 * n, 2 * n + n * n))
    with torch.no_grad():
        for hc, coef in zip(hcs, coefs):
            coef.float()
            for k, (role, r) in enumerate(zip(("read", "write", "res"), rows)):
                out = coef.outs[role]
                out.weight.copy_(hc.fn[r])
                out.bias.copy_(hc.base[r].reshape(out.bias.shape))
                out.scale.copy_(hc.scale[k])


def write_back_layers(coefs: list[nn.Module], hcs: list[nn.Module]) -> None:
    """The inverse of carry_layers."""
    roles = ("read", "write", "res")
    with torch.no_grad():
        for hc, coef in zip(hcs, coefs):
            o = coef.outs
            hc.fn.copy_(torch.cat([o[r].weight for r in roles]))
            hc.base.copy_(torch.cat([o[r].bias.reshape(-1) for r in roles]))
            hc.scale.copy_(torch.stack([o[r].scale.reshape(()) for r in roles]))


def carry(model: nn.Module, wrapped: nn.Module) -> None:
    """transformers' fused fn/base/scale into the spec's per-output read/write/res (by rows:
    pre n, post n, comb n²), the head's into the readout; kept in float32 as transformers
    keeps them (_keep_in_fp32_modules_strict)."""
    hcs, head = _hcs(model), model.model.hc_head
    coefs, readout = coef_modules(wrapped, len(hcs))
    carry_layers(hcs, coefs, model.config.hc_mult)
    with torch.no_grad():
        readout.float()
        out = readout.outs["readout"]
        out.weight.copy_(head.hc_fn)
        out.bias.copy_(head.hc_base)
        out.scale.copy_(head.hc_scale.reshape(()))


def write_back(wrapped: nn.Module, model: nn.Module) -> None:
    """The wrapped model's connection weights into `model`'s HyperConnections and head (the
    inverse of carry); the layers, norms, embedding and head are `model`'s own modules when
    wrapped with inplace=True, or copied by the caller from the state_dict otherwise."""
    hcs, head = _hcs(model), model.model.hc_head
    coefs, readout = coef_modules(wrapped, len(hcs))
    write_back_layers(coefs, hcs)
    with torch.no_grad():
        out = readout.outs["readout"]
        head.hc_fn.copy_(out.weight)
        head.hc_base.copy_(out.bias)
        head.hc_scale.copy_(out.scale.reshape(1))


def recognise(model: nn.Module) -> Recognised:
    cfg, base = model.config, model.model
    for k in ("attn_hc", "ffn_hc"):
        got = type(getattr(base.layers[0], k, None)).__name__
        if got != "DeepseekV4HyperConnection":
            raise CompileError(f"hcdsl.wrap does not understand DeepSeek-V4 block 0's {k}: "
                               f"{got} (it reads DeepseekV4HyperConnection)")
    if type(getattr(base, "hc_head", None)).__name__ != "DeepseekV4HyperHead":
        raise CompileError(f"hcdsl.wrap does not understand DeepSeek-V4's hc_head: "
                           f"{type(getattr(base, 'hc_head', None)).__name__} (it reads "
                           "DeepseekV4HyperHead)")
    layers = list(base.layers)[:cfg.num_hidden_layers]
    context = Context(model)
    blocks = [[Sublayer("attn", lay.input_layernorm,
                        Attention(lay.self_attn, base.rotary_emb, context)),
               Sublayer("moe", lay.post_attention_layernorm, MoE(lay.mlp, context))]
              for lay in layers]
    norm = one_norm([(f"block {i} {s.role}", s.norm) for i, b in enumerate(blocks)
                     for s in b] + [("the final norm", base.norm)])
    return Recognised(
        what=f"{type(model).__name__} (deepseek_v4)", name="deepseek_v4", dim=cfg.hidden_size,
        norm=norm, blocks=blocks, vocab=base.embed_tokens.num_embeddings,
        embed=TapEmbed(base.embed_tokens, context), final_norm=base.norm, head=model.lm_head,
        tied=model.lm_head.weight is base.embed_tokens.weight,
        connection=connection_text(cfg.hc_mult, cfg.rms_norm_eps, cfg.hc_eps,
                                   cfg.hc_sinkhorn_iters),
        carry=lambda wrapped: carry(model, wrapped))


__all__ = ["Attention", "Context", "MoE", "TapEmbed", "carry", "connection_text",
           "recognise", "write_back"]
