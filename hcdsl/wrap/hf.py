"""Hugging Face `transformers` decoders, recognised by `config.model_type`: GPT-2, and the
Llama family (Llama, Qwen2, Mistral: the same decoder layer).

Each block becomes two hcdsl layers, its attention and its MLP, each with the block's
pre-norm (T := T∘Norm: input_layernorm / ln_1 before the attention, post_attention_layernorm
/ ln_2 before the MLP). The token embedding (and GPT-2's learned positions), the final norm
and lm_head become the IR's embed, final.norm and head. The attention's per-forward context
is made inside its adapter from the input's shape (rotary cos/sin, positions 0..T-1) and
from the mask hcdsl passes every layer that takes one, so nothing is stored between calls
and torch.compile(fullgraph=True) traces the model as one graph.

transformers is imported by nothing here: the modules are found through the model's
attributes, and the helpers of its modeling file (apply_rotary_pos_emb, the attention
functions) through the module the attention class was defined in.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.spec import NormSpec
from hcdsl.wrap.recognise import Embed, Recognised, Sublayer, one_norm

LLAMA_LIKE = ("llama", "qwen2", "mistral")
# their own connection read out (deepseek_v4.py, glm5_next.py, qwen4_exp.py)
MULTISTREAM = ("deepseek_v4", "glm5_next_text", "glm5_next", "qwen4_exp_text")
SUPPORTED = ("gpt2", *LLAMA_LIKE, *MULTISTREAM)
QKV = ("q", "k", "v")


def _attention_functions(attn: nn.Module) -> tuple[Any, Any]:
    """(the modeling file's namespace, the attention function for the configured
    implementation), looked up as the attention module itself does."""
    ns = sys.modules[type(attn).__module__]
    impl = attn.config._attn_implementation
    if impl == "eager":
        return ns, ns.eager_attention_forward
    return ns, ns.ALL_ATTENTION_FUNCTIONS[impl]


class Attention(nn.Module):
    """A transformers self-attention module as an hcdsl layer with ports q, k and v.

    When the three ports carry one tensor (every stream connection), the module's own
    forward runs; when they differ (MUDD's Q, K and V ways), the same weights project each
    port separately (GPT-2's fused c_attn by column blocks) and the model's attention
    function combines them. mask: hcdsl's boolean (B, 1, T, T) mask or None (causal)."""

    ports = QKV

    def __init__(self, attn: nn.Module, style: str, rotary: nn.Module | None = None,
                 window: int | None = None) -> None:
        super().__init__()
        self.attn, self.style, self.rotary = attn, style, rotary
        self.window = window  # a sliding window: keys s > t - window (Mistral, Qwen2)
        impl = attn.config._attn_implementation
        if impl not in ("sdpa", "eager"):
            raise CompileError(f"hcdsl.wrap runs attention implementations 'sdpa' and "
                               f"'eager'; this model uses '{impl}': build it with "
                               "attn_implementation='sdpa'")
        self.impl = impl

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        hf_mask = self._hf_mask(mask, q)
        pe = self._rotary(q)
        if q is k and k is v:
            if self.style == "gpt2":
                return self.attn(q, attention_mask=hf_mask)[0]
            return self.attn(hidden_states=q, position_embeddings=pe,
                             attention_mask=hf_mask)[0]
        return self._separate(q, k, v, hf_mask, pe)

    def _rotary(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.rotary is None:
            return None
        positions = torch.arange(x.shape[1], device=x.device)[None]
        return self.rotary(x, positions)

    def _hf_mask(self, mask: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        """The additive float mask transformers' attention functions add to the scores
        (None: causal, which only sdpa infers by itself)."""
        window = self.window
        if mask is None and self.impl == "sdpa" and window is None:
            return None
        T = x.shape[1]
        i = torch.arange(T, device=x.device)
        allowed = (i[None, :] <= i[:, None])[None, None] if mask is None else mask
        if window is not None:  # keys within the window: s > t - window
            allowed = allowed & (i[None, :] > i[:, None] - window)[None, None]
        return torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(
            ~allowed, torch.finfo(x.dtype).min)

    def _separate(self, xq: torch.Tensor, xk: torch.Tensor, xv: torch.Tensor,
                  hf_mask: torch.Tensor | None,
                  pe: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        a = self.attn
        B, T, _ = xq.shape
        ns, fn = _attention_functions(a)
        heads = (B, T, -1, a.head_dim)
        if self.style == "gpt2":
            w, b, d = a.c_attn.weight, a.c_attn.bias, a.split_size  # Conv1D: x @ w + b
            q, k, v = (torch.addmm(b[i * d:(i + 1) * d], x.reshape(-1, x.shape[-1]),
                                   w[:, i * d:(i + 1) * d]).view(heads).transpose(1, 2)
                       for i, x in enumerate((xq, xk, xv)))
            if self.impl == "eager" and a.reorder_and_upcast_attn:
                out, _ = a._upcast_and_reordered_attn(q, k, v, hf_mask)
            else:
                out, _ = fn(a, q, k, v, hf_mask, scaling=_gpt2_scaling(a),
                            dropout=a.attn_dropout.p if a.training else 0.0)
            out = a.c_proj(out.reshape(B, T, -1).contiguous())
            return a.resid_dropout(out)
        q = a.q_proj(xq).view(heads).transpose(1, 2)
        k = a.k_proj(xk).view(heads).transpose(1, 2)
        v = a.v_proj(xv).view(heads).transpose(1, 2)
        assert pe is not None
        q, k = ns.apply_rotary_pos_emb(q, k, *pe)
        extra = {} if self.window is None else {"sliding_window": self.window}
        out, _ = fn(a, q, k, v, hf_mask, scaling=a.scaling,
                    dropout=a.attention_dropout if a.training else 0.0, **extra)
        return a.o_proj(out.reshape(B, T, -1).contiguous())


def _gpt2_scaling(a: nn.Module) -> float:
    """GPT-2's score scale: 1/sqrt(head_dim) (scale_attn_weights), / (layer + 1) with
    scale_attn_by_inverse_layer_idx; transformers 5 stores it as `scaling`."""
    if hasattr(a, "scaling"):
        return float(a.scaling)
    scale = a.head_dim ** -0.5 if a.scale_attn_weights else 1.0
    return scale / (a.layer_idx + 1) if a.scale_attn_by_inverse_layer_idx else scale


def _config(model: nn.Module) -> Any:
    return getattr(model, "config", None)


def model_type(model: nn.Module) -> str | None:
    cfg = _config(model)
    kind = getattr(cfg, "model_type", None)
    return kind if isinstance(kind, str) else None


def recognise_hf(model: nn.Module) -> Recognised:
    """The blocks of a supported transformers causal LM (CompileError naming what is not
    recognised otherwise)."""
    kind = model_type(model)
    name = type(model).__name__
    if kind not in SUPPORTED:
        raise CompileError(
            f"hcdsl.wrap does not recognise the transformers model {name} (model_type "
            f"'{kind}'): it wraps {', '.join(SUPPORTED)}; for other models pass their blocks "
            "as an nn.ModuleList (docs/wrap.md)")
    if kind in ("glm5_next_text", "glm5_next"):  # text model: hidden states; the other: logits
        from hcdsl.wrap import glm5_next  # noqa: PLC0415 - only for that model
        return glm5_next.recognise(model)
    if kind == "qwen4_exp_text" and getattr(model, "lm_head", None) is not None:
        from hcdsl.wrap import qwen4_exp  # noqa: PLC0415 - only for that model
        return qwen4_exp.recognise(model)
    if getattr(model, "lm_head", None) is None:
        raise CompileError(f"hcdsl.wrap takes a causal language model with an lm_head (e.g. "
                           f"{'GPT2LMHeadModel' if kind == 'gpt2' else 'LlamaForCausalLM'}); "
                           f"got {name}")
    if kind == "deepseek_v4":
        from hcdsl.wrap import deepseek_v4  # noqa: PLC0415 - only for that model
        return deepseek_v4.recognise(model)
    return _gpt2(model) if kind == "gpt2" else _llama(model, kind)


def _gpt2(model: nn.Module) -> Recognised:
    cfg, tr = model.config, model.transformer
    if getattr(cfg, "add_cross_attention", False):
        raise CompileError("hcdsl.wrap: GPT-2 with cross-attention is not a decoder-only "
                           "stack of residual blocks")
    blocks = [[Sublayer("attn", blk.ln_1, Attention(blk.attn, "gpt2"), QKV),
               Sublayer("mlp", blk.ln_2, blk.mlp)] for blk in tr.h]
    norm = _norm(blocks, tr.ln_f)
    return Recognised(
        what=f"{type(model).__name__} (gpt2)", name="gpt2", dim=cfg.n_embd, norm=norm,
        blocks=blocks, vocab=tr.wte.num_embeddings, embed=Embed(tr.wte, tr.wpe),
        positions=tr.wpe.num_embeddings, final_norm=tr.ln_f, head=model.lm_head,
        tied=model.lm_head.weight is tr.wte.weight, embed_dropout=float(tr.drop.p))


def _llama(model: nn.Module, kind: str) -> Recognised:
    cfg, base = model.config, model.model
    rotary = base.rotary_emb
    layers = list(base.layers)[:cfg.num_hidden_layers]
    blocks = [[Sublayer("attn", lay.input_layernorm,
                        Attention(lay.self_attn, "llama", rotary, _window(lay.self_attn, kind)),
                        QKV),
               Sublayer("mlp", lay.post_attention_layernorm, lay.mlp)] for lay in layers]
    norm = _norm(blocks, base.norm)
    return Recognised(
        what=f"{type(model).__name__} ({kind})", name=kind, dim=cfg.hidden_size, norm=norm,
        blocks=blocks, vocab=base.embed_tokens.num_embeddings, embed=Embed(base.embed_tokens),
        final_norm=base.norm, head=model.lm_head,
        tied=model.lm_head.weight is base.embed_tokens.weight)


def _window(attn: nn.Module, kind: str) -> int | None:
    """The attention's sliding window, as its model applies it: Mistral's config for every
    layer, Qwen2's per layer (its sliding_attention layers), none for Llama."""
    if kind == "mistral":
        return getattr(attn.config, "sliding_window", None)
    return getattr(attn, "sliding_window", None)


def _norm(blocks: list[list[Sublayer]], final: nn.Module) -> NormSpec:
    return one_norm([(f"block {i} {s.role}", s.norm) for i, b in enumerate(blocks)
                     for s in b] + [("the final norm", final)])


__all__ = ["Attention", "Embed", "SUPPORTED", "model_type", "recognise_hf"]
