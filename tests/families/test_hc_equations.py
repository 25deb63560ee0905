"""Hyper-Connections with random parameters == the paper's equations, computed here.

The oracle below is written from the formulas (HC arXiv 2409.19606, Eqs. 2 and 10-13, and
Algorithm 1), in plain torch, without hcdsl's mixing code: it reads only the compiled
module's parameters (by state_dict name) and calls its layer submodules as T.

    H^0 = n copies of h^0
    H̄ = norm(H)                               per stream, over d
    B(H)   = s_β tanh(H̄ W_β)ᵀ + B              (1 x n)
    A_m(H) = s_α tanh(H̄ W_m) + A_m             (n x 1)
    A_r(H) = s_α tanh(H̄ W_r) + A_r             (n x n)
    Ĥ = Bᵀ T(A_mᵀ H) + A_rᵀ H                   T = the layer after its pre-norm
    logits = unembed(norm(Σ_rows H^L))
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import run_recording as recording
import hcdsl
from hcdsl.nn.modules import attr_name
from helpers import model_text

pytestmark = pytest.mark.usefixtures("one_thread")

DIM, VOCAB, EPS = 16, 32, 1e-5
LAYERS = ["attn", "ffn", "attn", "ffn"]  # body = repeat 2 [attn, ffn]


def hc_spec(n: int, dynamic: bool, tanh: bool) -> str:
    opts = f"n={n}, {'dynamic' if dynamic else 'static'}" + ("" if tanh else ", tanh=false")
    return model_text(f"hyper({opts})", name="hc_eq", dim=DIM, vocab=VOCAB)


def randomise(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Move every connection parameter and norm away from its init; return the state."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    out = {}
    for name, t in sd.items():
        r = torch.randn(t.shape, generator=g, dtype=t.dtype)
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith(("static_gain", "static_mix")):
            t = t + 0.3 * r
        elif leaf in ("w_gain", "w_mix"):
            t = 0.3 * r
        elif leaf in ("s_gain", "s_mix"):
            t = 0.5 * r
        elif "norm" in name and leaf == "weight":
            t = 1.0 + 0.2 * r
        elif "norm" in name and leaf == "bias":
            t = 0.1 * r
        out[name] = t
    model.load_state_dict(out)
    return out


def oracle(model: torch.nn.Module, sd: dict[str, torch.Tensor], n: int, dynamic: bool,
           tanh: bool, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    act = torch.tanh if tanh else (lambda t: t)
    h0 = F.embedding(tokens, sd["embed.weight"])  # (B, T, d)
    H = torch.stack([h0] * n, dim=-2)  # H^0: n copies, (B, T, n, d)
    states = []
    for k, name in enumerate(LAYERS, start=1):
        c = f"L{k}_coef."
        B = sd[c + "static_gain"]  # (n,)
        A_m = sd[c + "static_mix"][:, 0]  # (n,)
        A_r = sd[c + "static_mix"][:, 1:]  # (n, n)
        if dynamic:  # Eqs. 10-13
            Hbar = F.layer_norm(H, (DIM,), sd[c + "norm.weight"], sd[c + "norm.bias"], EPS)
            W_beta, W_m, W_r = sd[c + "w_gain"], sd[c + "w_mix"][:, 0], sd[c + "w_mix"][:, 1:]
            B = sd[c + "s_gain"] * act(Hbar @ W_beta) + B  # (B, T, n)
            A_m = sd[c + "s_mix"] * act(Hbar @ W_m) + A_m  # (B, T, n)
            A_r = sd[c + "s_mix"] * act(Hbar @ W_r) + A_r  # (B, T, n, n)
        h_in = (A_m.unsqueeze(-2) @ H).squeeze(-2)  # A_mᵀ H, (B, T, d)
        x = F.layer_norm(h_in, (DIM,), sd[f"L{k}_norm.weight"], sd[f"L{k}_norm.bias"], EPS)
        layer = getattr(model, f"L{k}_{name}")
        y = layer(x, x, x) if name == "attn" else layer(x)  # T(h_in), (B, T, d)
        H = B.unsqueeze(-1) * y.unsqueeze(-2) + A_r.transpose(-1, -2) @ H  # Eq. 2 / Eq. 5
        states.append(H)
    h = H.sum(dim=-2)  # Σ rows
    h = F.layer_norm(h, (DIM,), sd["final_norm.weight"], sd["final_norm.bias"], EPS)
    return h @ sd["head.weight"].T, states


def run_recording(model: torch.nn.Module, backend: str, tokens: torch.Tensor):
    """Logits and every intermediate value, keyed by sanitised lower-case node name."""
    logits, seen = recording(model, tokens)
    return logits, {attr_name(v).lower(): x for v, x in seen.items()}


CASES = [(n, dyn, tanh) for n in (1, 2, 3, 4) for dyn in (False, True)
         for tanh in ((True, False) if dyn else (True,))]


@pytest.mark.parametrize("backend", ["fx", "reference"])
@pytest.mark.parametrize("n,dynamic,tanh", CASES,
                         ids=[f"n{n}-{'dhc' if d else 'shc'}{'' if t else '-notanh'}"
                              for n, d, t in CASES])
def test_hc_matches_equations(n: int, dynamic: bool, tanh: bool, backend: str) -> None:
    torch.manual_seed(0)
    model = hcdsl.compile(hc_spec(n, dynamic, tanh), backend=backend, seed=n)
    sd = randomise(model, seed=100 + n)
    tokens = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        want_logits, want_states = oracle(model, sd, n, dynamic, tanh, tokens)
        got_logits, seen = run_recording(model, backend, tokens)
    assert (got_logits - want_logits).abs().max().item() <= 1e-5
    for k, want in enumerate(want_states, start=1):
        got = seen[f"l{k}_write"].reshape(want.shape)
        diff = (got - want).abs().max().item()
        assert diff <= 1e-5, f"state after layer {k}: max abs diff {diff:.3g}"
    # the randomisation really moved the model away from init (else the test proves little)
    assert sd["L1_coef.static_mix"].ne(torch.tensor(hcdsl_init_mix(n))).any()


def hcdsl_init_mix(n: int) -> list[list[float]]:
    """[A_m | A_r] of layer 1 at Eq. 14's init: e_0 and I_n."""
    return [[1.0 if i == 0 else 0.0] + [1.0 if j == i else 0.0 for j in range(n)]
            for i in range(n)]


def test_static_and_dynamic_differ_once_w_is_nonzero() -> None:
    """Sanity of the oracle itself: the dynamic term is not silently ignored."""
    model = hcdsl.compile(hc_spec(2, True, True), seed=0)
    sd = randomise(model, seed=1)
    tokens = torch.randint(0, VOCAB, (1, 5))
    with torch.no_grad():
        dyn, _ = oracle(model, sd, 2, True, True, tokens)
        stat, _ = oracle(model, sd, 2, False, True, tokens)
    assert (dyn - stat).abs().max() > 1e-3
