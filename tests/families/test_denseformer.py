"""DenseFormer (arXiv 2402.02622): fx == reference, Y_i = sum_j α_ij X_j recomputed here in
plain torch, identity init == the plain Transformer, gradients, parameter counts.
See docs/families/denseformer.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import assert_same, perturb
import hcdsl
from hcdsl.schemes.dense import dilated
from hcdsl.spec import ConnectionSpec
from hcdsl.counts import count_params
from helpers import attn_ffn, model_text

FAMILIES = Path(__file__).resolve().parents[2] / "specs" / "families"
TINY = sorted(FAMILIES.glob("denseformer_*.hc"))
VOCAB = 256


def spec(connect: str, blocks: int) -> str:
    return model_text(connect, name="dwa_eq", dim=64, vocab=VOCAB,
                      layers=attn_ffn(4, "mlp(hidden=256)"), body=f"repeat {blocks} [attn, ffn]")


def tokens(seed: int, shape: tuple[int, int] = (2, 9)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("path", TINY, ids=lambda p: p.stem)
def test_fx_equals_reference_with_random_parameters(path: Path) -> None:
    """Randomised first (α = identity has non-zero gradients anyway); every parameter must
    then get a non-zero gradient."""
    fx_model = hcdsl.compile(path, backend="fx", seed=0)
    ref = hcdsl.compile(path, backend="reference", seed=1)
    perturb(fx_model, seed=3)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(0), nonzero=True)


def denseformer_by_hand(m: torch.nn.Module, toks: torch.Tensor, blocks: int, k: int,
                        p: int) -> torch.Tensor:
    """Y_i = sum_{j <= i, j = i mod k} α_ij X_j after blocks i with i % p == 0; otherwise
    the next block reads X_i; X_{i+1} = Block_{i+1}(Y_i), a Pre-Norm block; output Y_L
    (X_L when L % p != 0, as the authors' code)."""
    mod = lambda name: getattr(m, name)  # noqa: E731
    X = [mod("embed")(toks)]
    y = X[0]
    for i in range(1, blocks + 1):
        a, f = 2 * i - 1, 2 * i
        h = y + mod(f"L{a}_attn")(*[mod(f"L{a}_norm")(y)] * 3)
        X.append(h + mod(f"L{f}_ffn")(mod(f"L{f}_norm")(h)))
        if i % p == 0:
            alpha = mod(f"A{i}_coef").static[:, 0]  # α_i over the dilated sources
            src = [j for j in range(i + 1) if (i - j) % k == 0]
            assert alpha.shape[0] == len(src)
            y = sum(alpha[n] * X[j] for n, j in enumerate(src))
        else:
            y = X[i]
    return mod("head")(mod("final_norm")(y))


KP = [(1, 1), (2, 1), (4, 1), (4, 5), (1, 3)]


@pytest.mark.parametrize("k,p", KP, ids=[f"{k}x{p}" for k, p in KP])
def test_random_parameters_match_the_papers_equation(k: int, p: int) -> None:
    blocks = 10 if p == 5 else 7  # 7 % 3 != 0: the last block has no DWA, output X_L
    m = hcdsl.compile(spec(f"denseformer(k={k}, p={p})", blocks), seed=4)
    perturb(m, seed=5)
    toks = tokens(2)
    with torch.no_grad():
        diff = (m(toks) - denseformer_by_hand(m, toks, blocks, k, p)).abs().max().item()
    assert diff <= 1e-5


@pytest.mark.parametrize("k,p", KP, ids=[f"{k}x{p}" for k, p in KP])
def test_identity_init_equals_the_plain_transformer(k: int, p: int) -> None:
    blocks = 10  # p = 5 puts DWAs after blocks 5 and 10; p = 3 leaves block 10 without one
    pre = hcdsl.compile(spec("residual", blocks), seed=1)
    dense = hcdsl.compile(spec(f"denseformer(k={k}, p={p})", blocks), seed=2)
    theirs = dense.state_dict()
    shared = {n: v for n, v in pre.state_dict().items() if n in theirs}
    assert len(shared) == len(pre.state_dict())  # every Pre-Norm weight, by name
    dense.load_state_dict(shared, strict=False)
    toks = tokens(3, (3, 11))
    with torch.no_grad():
        diff = (pre(toks) - dense(toks)).abs().max().item()
    assert diff <= 1e-6, f"{k}x{p}: max |DenseFormer - Transformer| = {diff:.3g}"


def test_extra_parameters_are_the_alphas() -> None:
    # one α per source of each DWA: sum over DWAs after blocks i (i % p == 0) of i // k + 1
    for k, p, blocks in [(1, 1, 12), (4, 5, 12), (2, 3, 7)]:
        model = hcdsl.parse(spec(f"denseformer(k={k}, p={p})", blocks))
        base = model.model_copy(update={"connection": ConnectionSpec(kind="residual")})
        want = sum(len(dilated(i, k)) for i in range(p, blocks + 1, p))
        assert want == sum(i // k + 1 for i in range(1, blocks + 1) if i % p == 0)
        assert count_params(model) - count_params(base) == want
