"""Built-in layers, short and obvious. Shapes: x (B, T, d). Init: N(0, 0.02), output
projections N(0, 0.02 * out_scale) (HC §4 scales them by 1/sqrt(n))."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.nn.kv import DecodeState, KVCache

STD = 0.02


def make_norm(kind: str, width: int, affine: bool, eps: float) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(width, eps=eps, elementwise_affine=affine, bias=affine)
    if kind == "rmsnorm":
        return nn.RMSNorm(width, eps=eps, elementwise_affine=affine)
    raise ValueError(f"unknown norm kind {kind!r}")


def _linear(n_in: int, n_out: int, bias: bool, std: float) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nn.init.normal_(lin.weight, std=std)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


def rotate(x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """RoPE on (B, H, T, hd): rotate pairs (x1, x2) by position-dependent angles; positions
    (T,) default to 0..T-1 (a decoding step passes where its tokens stand)."""
    T, hd = x.shape[-2], x.shape[-1]
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
    if positions is None:
        positions = torch.arange(T, device=x.device)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    """Causal self-attention; q, k and v come in on separate ports (MUDD feeds them apart)."""

    def __init__(self, dim: int, heads: int, bias: bool = False, rope: bool = True,
                 out_scale: float = 1.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.heads, self.rope, self.dropout = heads, rope, dropout
        self.return_values = False  # also return the projected values (a value-residual tap)
        self.kv_cache: KVCache | None = None  # set while decoding (hcdsl/nn/decode.py)
        self.q_proj = _linear(dim, dim, bias, STD)
        self.k_proj = _linear(dim, dim, bias, STD)
        self.v_proj = _linear(dim, dim, bias, STD)
        self.out_proj = _linear(dim, dim, bias, STD * out_scale)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                vres: torch.Tensor | None = None, vmix: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """vres, vmix: value residual, V = vmix[0, 0] vres + vmix[0, 1] v_proj(v).
        mask: None (causal), or a boolean (B, 1, T, T) mask, True where query t may attend
        to key s (hcdsl.nn.io.attention_mask makes it, causal included)."""
        values = self.v_proj(v)  # (B, T, d)
        if vres is not None and vmix is not None:
            values = vmix[0, 0] * vres + vmix[0, 1] * values
        out = self.attend(self.q_proj(q), self.k_proj(k), values, mask)
        return (out, values) if self.return_values else out

    def in_projections(self) -> list[nn.Linear]:
        """The projections of its inputs (q, k, v), for a fused input matmul."""
        return [self.q_proj, self.k_proj, self.v_proj]

    def attend(self, q: torch.Tensor, k: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor | None = None) -> torch.Tensor:
        """Everything after the input projections: heads, RoPE, attention (causal, or as
        mask allows), out_proj."""
        B, T, d = q.shape
        split = lambda t: t.view(B, T, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, vh = split(q), split(k), split(values)
        if self.kv_cache is not None:  # decoding: these T tokens follow the cached ones
            return self._attend_cached(q, k, vh, self.kv_cache)
        if self.rope:
            q, k = rotate(q), rotate(k)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, vh, attn_mask=mask, dropout_p=drop,
                                           is_causal=mask is None)  # (B, H, T, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, d))

    def _attend_cached(self, q: torch.Tensor, k: torch.Tensor, vh: torch.Tensor,
                       cache: KVCache) -> torch.Tensor:
        """(B, H, T, hd) heads of T new tokens at cache.positions(T): their keys and values go
        into the cache, each query attends to every cached key up to its own position."""
        B, H, T, hd = q.shape
        at = cache.positions(T)
        if self.rope:
            q, k = rotate(q, at), rotate(k, at)
        keys, values, allowed = cache.store(k, vh, at)
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
        return self.out_proj(y.transpose(1, 2).reshape(B, T, H * hd))

    def finish(self, projected: list[torch.Tensor],
               mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.attend(*projected, mask=mask)


class MLP(nn.Module):
    """gelu: W2 gelu(W1 x); swiglu: W2 (silu(W1 x) * W3 x)."""

    def __init__(self, dim: int, hidden: int | None = None, act: str = "gelu",
                 bias: bool = False, out_scale: float = 1.0) -> None:
        super().__init__()
        hidden = hidden or 4 * dim
        self.act = act
        self.fc1 = _linear(dim, hidden, bias, STD)
        self.gate = _linear(dim, hidden, bias, STD) if act == "swiglu" else None
        self.fc2 = _linear(hidden, dim, bias, STD * out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish([p(x) for p in self.in_projections()])

    def in_projections(self) -> list[nn.Linear]:
        """The projections of its input (W1, and W3 for swiglu), for a fused input matmul."""
        return [self.fc1] + ([self.gate] if self.gate is not None else [])

    def finish(self, projected: list[torch.Tensor]) -> torch.Tensor:
        """Everything after the input projections: the activation (gated) and W2."""
        if self.gate is not None:
            return self.fc2(F.silu(projected[0]) * projected[1])
        return self.fc2(F.gelu(projected[0]))


class Opaque(nn.Module):
    """An uninterpreted layer T. Proofs treat it symbolically; to run, a fixed small MLP."""

    def __init__(self, dim: int, hidden: int | None = None, out_scale: float = 1.0) -> None:
        super().__init__()
        self.fc1 = _linear(dim, hidden or dim, True, STD)
        self.fc2 = _linear(hidden or dim, dim, True, STD * out_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


class NormLayer(nn.Module):
    """A norm used as a body layer."""

    def __init__(self, kind: str, dim: int, affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.norm = make_norm(kind, dim, affine, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class Embedding(nn.Module):
    """Token embeddings; with positions > 0 also a learned table of absolute positions
    (GPT-2's wpe), added: h0 = E[token_t] + P[t]."""

    def __init__(self, vocab: int, dim: int, positions: int = 0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(vocab, dim) * STD)
        self.positions = nn.Parameter(torch.randn(positions, dim) * STD) if positions else None
        self.decoding: DecodeState | None = None  # set while decoding (hcdsl/nn/decode.py)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = F.embedding(tokens, self.weight)
        if self.positions is None:
            return h
        T = tokens.shape[-1]
        if self.decoding is not None:  # the table rows where these tokens stand
            return h + self.positions[self.decoding.positions(T)]
        if T > self.positions.shape[0]:
            raise CompileError(f"a sequence of {T} tokens is longer than the learned position "
                               f"table (context = {self.positions.shape[0]})")
        return h + self.positions[:T]


class Unembed(nn.Module):
    """Logits = h Wᵀ; tied: W is the embedding's weight (one parameter, two users)."""

    def __init__(self, vocab: int, dim: int, tied_to: Embedding | None = None) -> None:
        super().__init__()
        if tied_to is not None:
            self.weight = tied_to.weight
        else:
            self.weight = nn.Parameter(torch.randn(vocab, dim) * STD)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(h, self.weight)
