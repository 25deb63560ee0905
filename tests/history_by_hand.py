"""Multi-Head Attention Residuals and DeepCrossAttention by hand: plain torch (float64) forwards
of the equations on their docs/families pages (attnres_multihead.md, dca.md) that also record
each aggregate's weights, and the unfolded matrix C^(0) those weights make (HC arXiv
2409.19606 Eqs. 20-23: C0[k, j] = weight of T^j's output in layer k's input, j = 0 the
embedding, k = L + 1 the readout), averaged as `hcdsl unfold` documents it: a weight that
differs per channel group (or per channel) is averaged over the channels (each group counted
by its width), then over the tokens.

Written from the equations, not from hcdsl's modules: only the parameters are read from the
model (by their state_dict names), so the tests that use this compare two computations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5


def rms(x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS)
    return y if g is None else y * g


def mh_attnres(m: torch.nn.Module, toks: torch.Tensor, heads: int, layers: int) \
        -> tuple[torch.Tensor, list[torch.Tensor], np.ndarray]:
    """h_l[g] = sum_i softmax_i(w_l[g] · RMSNorm(v_i[g]) ⊙ γ_l[g]) v_i[g] over v_0 = embedding
    and the earlier layer outputs (layer 1 reads the embedding alone). Returns the logits,
    every read's α (B, T, sources, heads), and C^(0) ((L+2) x (L+2)): row l = α averaged over
    the heads (equal widths D/H), then over the tokens."""
    mod = lambda name: getattr(m, name)  # noqa: E731
    dim = mod("embed").weight.shape[1]
    c = dim // heads
    v = [mod("embed")(toks)]
    h = v[0]
    alphas: list[torch.Tensor] = []
    C0 = np.zeros((layers + 2, layers + 2))
    C0[1, 0] = 1.0
    for l in range(1, layers + 2):
        if l > 1:
            coef = mod(f"A{l - 1}_coef")
            V = torch.stack(v, dim=2)  # (B, T, S, D)
            B, T, S, _ = V.shape
            Vg = V.reshape(B, T, S, heads, c)
            K = rms(Vg, coef.norm_weight.reshape(heads, c))  # per-group RMSNorm, own scale
            logits = (K * coef.query.reshape(heads, c)).sum(-1)  # (B, T, S, heads)
            alpha = torch.softmax(logits, dim=2)  # over the sources, per group
            alphas.append(alpha)
            h = (alpha.unsqueeze(-1) * Vg).sum(2).reshape(B, T, dim)
            C0[l, :S] = alpha.mean(dim=3).mean(dim=(0, 1)).numpy()
        if l == layers + 1:
            break
        kind = "attn" if l % 2 else "ffn"
        x = mod(f"L{l}_norm")(h)
        f = mod(f"L{l}_{kind}")
        v.append(f(x, x, x) if kind == "attn" else f(x))
    return mod("head")(mod("final_norm")(h)), alphas, C0


def grn(coef: torch.nn.Module, norm: torch.nn.Module, G: torch.Tensor) \
        -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """GRN-v3 (arXiv 2502.06785), one output per column of w:
    out_c = sum_j (b_{j,c} + ReLU(w_c · RMSNorm(g_j))) ⊙ g_j. Returns the outputs and the
    weights (B, T, S, D) of each."""
    N = rms(G, norm.weight)  # (B, T, S, D)
    outs, weights = [], []
    for c in range(coef.w1.shape[1]):
        weight = coef.static[:, c, :] + F.relu(N @ coef.w1[:, c]).unsqueeze(-1)
        weights.append(weight)
        outs.append((weight * G).sum(2))
    return outs, weights


def dca(m: torch.nn.Module, toks: torch.Tensor, blocks: int) \
        -> tuple[torch.Tensor, list[list[torch.Tensor]], np.ndarray]:
    """G = [g_0 = embedding]; per block i: q, k, v = GRN-v3(G); a = Attn(N_q(q), N_k(k),
    N_v(v)); f = FFN(N(a + q)); G gains a + f. Output: head(N(GRN-v3(G))). Returns the
    logits, every GRN's weights, and C^(0) of the layer inputs the model's layers read first
    (the attention's q; the FFN's a + q) and of the readout, each weight averaged over the
    channels, then over the tokens. In sources T^0..T^L: g_0 = T^0, g_i = T^(2i-1) + T^(2i)."""
    mod = lambda name: getattr(m, name)  # noqa: E731
    L = 2 * blocks
    unit = np.eye(L + 2)
    G = [mod("embed")(toks)]
    g_coef = [unit[0]]  # each history entry as coefficients over T^0..T^(L+1)
    recorded: list[list[torch.Tensor]] = []
    C0 = np.zeros((L + 2, L + 2))

    def combination(w: torch.Tensor) -> np.ndarray:  # Σ_j mean(w_j) g_j
        omega = w.mean(dim=-1).mean(dim=(0, 1)).numpy()  # (S,): channels, then tokens
        return sum(o * g for o, g in zip(omega, g_coef))

    for i in range(blocks):
        (q, k, v), ws = grn(mod(f"A{i}_coef"), mod(f"A{i}_key_norm"), torch.stack(G, dim=2))
        recorded.append(ws)
        la, lf = 2 * i + 1, 2 * i + 2
        a = mod(f"L{la}_attn")(mod(f"L{la}_norm_q")(q), mod(f"L{la}_norm_k")(k),
                               mod(f"L{la}_norm_v")(v))
        f = mod(f"L{lf}_ffn")(mod(f"L{lf}_norm")(a + q))
        C0[la] = combination(ws[0])
        C0[lf] = unit[la] + C0[la]
        G.append(a + f)
        g_coef.append(unit[la] + unit[lf])
    (out,), ws = grn(mod(f"A{blocks}_coef"), mod(f"A{blocks}_key_norm"), torch.stack(G, dim=2))
    recorded.append(ws)
    C0[L + 1] = combination(ws[0])
    return mod("head")(mod("final_norm")(out)), recorded, C0
