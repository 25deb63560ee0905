"""Attention Residuals (Kimi Team, arXiv 2603.15031), full (per-layer) form:
h_l = sum_i softmax_i(w_l · RMSNorm(v_i)) v_i over v_0 = embedding and every earlier layer
output v_i = f_i(Norm(h_i)). fx == reference, the equation recomputed here, uniform weights at
init (w_l = 0), gradients, parameter counts. See docs/families/attnres.md.
"""

from __future__ import annotations

from pathlib import Path

import torch

from helpers import assert_same, perturb
import hcdsl
from hcdsl.spec import ConnectionSpec
from hcdsl.counts import count_params

FAMILIES = Path(__file__).resolve().parents[2] / "specs" / "families"
TINY = FAMILIES / "attnres_tiny.hc"
VOCAB, LAYERS, EPS = 256, 8, 1e-5


def tokens(seed: int, shape: tuple[int, int] = (2, 9)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def test_fx_equals_reference_with_random_parameters_and_every_gradient() -> None:
    """Randomised first: at init w_l = 0, so the key norms' scales get zero gradient
    (∂(w · (g ⊙ k))/∂g = w ⊙ k = 0), a legitimate zero of the init."""
    fx_model = hcdsl.compile(TINY, backend="fx", seed=0)
    ref = hcdsl.compile(TINY, backend="reference", seed=1)
    perturb(fx_model, seed=3)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(0), nonzero=True)


def attnres_by_hand(m: torch.nn.Module, toks: torch.Tensor) -> torch.Tensor:
    mod = lambda name: getattr(m, name)  # noqa: E731
    v = [mod("embed")(toks)]  # v_0 = h_1 = the embedding
    h = v[0]  # layer 1 reads the embedding alone (a softmax over one source is 1)
    for l in range(1, LAYERS + 2):
        if l > 1:
            coef = mod(f"A{l - 1}_coef")
            g = mod(f"A{l - 1}_key_norm").weight
            V = torch.stack(v, dim=-2)  # (B, T, l, d)
            K = V * torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + EPS) * g  # RMSNorm(v_i)
            alpha = torch.softmax(K @ coef.query, dim=-1)  # softmax_i(w_l · k_i)
            h = (alpha.unsqueeze(-1) * V).sum(-2)
        if l == LAYERS + 1:
            break
        layer = next(c for n, c in m.named_children() if n.startswith(f"L{l}_")
                     and not n.endswith("norm"))
        x = mod(f"L{l}_norm")(h)
        v.append(layer(x, x, x) if l % 2 else layer(x))  # v_l = f_l(Norm(h_l))
    return mod("head")(mod("final_norm")(h))


def test_random_parameters_match_the_equation() -> None:
    m = hcdsl.compile(TINY, seed=4)
    perturb(m, seed=5)
    toks = tokens(2)
    with torch.no_grad():
        assert (m(toks) - attnres_by_hand(m, toks)).abs().max().item() <= 1e-5


def test_weights_are_uniform_at_init() -> None:
    """No identity init: w_l = 0 makes every depth softmax uniform, α_i = 1 / (sources)."""
    m = hcdsl.compile(TINY, seed=6)
    seen: dict[str, torch.Tensor] = {}
    for name, child in m.named_children():
        if name.endswith("_coef"):
            child.register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, o))
    with torch.no_grad():
        m(tokens(1))
    assert len(seen) == LAYERS  # A1 .. A8: the reads of layers 2..8 and the output
    for name, alpha in seen.items():
        sources = int(name[1:].split("_")[0]) + 1
        assert alpha.shape[-2:] == (sources, 1)
        assert torch.allclose(alpha, torch.full_like(alpha, 1.0 / sources), atol=0, rtol=1e-6)
    # ... and with the uniform weights the equation still holds
    with torch.no_grad():
        assert (m(tokens(1)) - attnres_by_hand(m, tokens(1))).abs().max().item() <= 1e-5


def test_extra_parameters_are_a_query_and_a_key_norm_per_read() -> None:
    model = hcdsl.parse(TINY)
    base = model.model_copy(update={"connection": ConnectionSpec(kind="residual")})
    reads = LAYERS  # layers 2..8 and the output; layer 1 reads the embedding alone
    assert count_params(model) - count_params(base) == reads * 2 * 64


def block_attnres_by_hand(m: torch.nn.Module, toks: torch.Tensor) -> torch.Tensor:
    """Block AttnRes: blocks b_0 = embedding, b_n = sum of block n's raw layer outputs; layer
    l of block n reads softmax_i(w_l · RMSNorm(s_i)) s_i over [b_0 .. b_{n-1}, partial sum]
    (the partial sum joins once the block has an output); the output reads b_0 .. b_N."""
    mod = lambda name: getattr(m, name)  # noqa: E731

    def attend(label: str, sources: list[torch.Tensor]) -> torch.Tensor:
        if len(sources) == 1:
            return sources[0]
        V = torch.stack(sources, dim=-2)
        g = mod(f"{label}_key_norm").weight
        K = V * torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + EPS) * g
        alpha = torch.softmax(K @ mod(f"{label}_coef").query, dim=-1)
        return (alpha.unsqueeze(-1) * V).sum(-2)

    blocks = [mod("embed")(toks)]
    layer = 0
    for _ in range(LAYERS // 2):
        partial = None
        for kind in ("attn", "ffn"):
            layer += 1
            h = attend(f"L{layer}_read", blocks + ([partial] if partial is not None else []))
            x = mod(f"L{layer}_norm")(h)
            f = mod(f"L{layer}_{kind}")
            v = f(x, x, x) if kind == "attn" else f(x)
            partial = v if partial is None else partial + v
        blocks.append(partial)
    return mod("head")(mod("final_norm")(attend(f"A{LAYERS // 2}", blocks)))


def test_block_attnres_matches_the_equation() -> None:
    text = TINY.read_text().replace("connect attnres", "connect attnres(block)")
    m = hcdsl.compile(text, seed=7)
    perturb(m, seed=8)
    ref = hcdsl.compile(text, backend="reference", seed=7)
    ref.load_state_dict(m.state_dict())
    toks = tokens(3)
    with torch.no_grad():
        assert (m(toks) - block_attnres_by_hand(m, toks)).abs().max().item() <= 1e-5
        assert (m(toks) - ref(toks)).abs().max().item() <= 1e-5


def test_block_granularity_is_the_papers_block_attnres() -> None:
    text = TINY.read_text().replace("connect attnres", "connect attnres(block)")
    m = hcdsl.compile(text, seed=0)
    names = {n for n, _ in m.named_children()}
    # the paper: one pseudo-query per layer (8), not per block (4) + output
    assert sum(n.endswith("_coef") for n in names) == LAYERS
