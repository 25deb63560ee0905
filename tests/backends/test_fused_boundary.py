"""The fused layer boundary of dynamic connections (hcdsl/nn/boundary.py, lowered by
backends/fx.py): H' = RESᵀH + post·o in one pass and the read mixing only its own columns.
It keys on the state ops around a per-token coefficient, so it applies to mHC's preset
(ManifoldCoef), to a `generator` (GeneratorCoef) and to dynamic HC, and never to a static
connection. Same function, same parameters: the unfused lowering is the reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.backends import fx as fx_backend
from hcdsl.backends import segments
from hcdsl.compiler import Compilation
from hcdsl.nn.boundary import boundary_write, find
from tests.helpers import model_text

SPECS = Path(__file__).resolve().parents[2] / "specs"
DYNAMIC = {  # spec -> the fused boundaries it must have (one per layer)
    "mHC preset": (SPECS / "families/mhc_tiny_paper4.hc", 4),
    "generator (DeepSeek-V4 mHC)": (SPECS / "families/deepseek_v4_mhc.hc", 4),
    "generator (KromHC)": (SPECS / "families/kromhc.hc", None),
    "DHC": (SPECS / "tiny_dhc4.hc", None),
    "mHC n=1": (model_text("mhc(n=1)"), 4),  # one stream: every block of M is 1 x 1
}


def build(spec: Path | str, fuse: bool, **kw: object) -> torch.nn.Module:
    old = fx_backend.FUSE_BOUNDARY
    fx_backend.FUSE_BOUNDARY = fuse  # segments' and regions' builders read it too
    try:
        return hcdsl.compile(spec, seed=0, **kw)
    finally:
        fx_backend.FUSE_BOUNDARY = old


def tokens_for(model: torch.nn.Module, batch: int = 2, seq: int = 12) -> torch.Tensor:
    vocab = model.embed.weight.shape[0]  # type: ignore[union-attr]
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(DYNAMIC))
def test_fused_equals_unfused(name: str) -> None:
    path, count = DYNAMIC[name]
    fused, plain = build(path, True), build(path, False)
    calls = fused.code.count("boundary_write(")
    assert calls == (count or calls) and calls >= 2, fused.code
    assert "boundary_write" not in plain.code
    sd_f, sd_p = fused.state_dict(), plain.state_dict()
    assert list(sd_f) == list(sd_p)
    assert all(torch.equal(sd_f[k], sd_p[k]) for k in sd_f)
    tok = tokens_for(fused)
    torch.testing.assert_close(fused(tok), plain(tok), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["mHC preset", "generator (DeepSeek-V4 mHC)", "DHC"])
def test_float64_gradients_equal(name: str) -> None:
    path, _ = DYNAMIC[name]
    fused = build(path, True, dtype=torch.float64)
    plain = build(path, False, dtype=torch.float64)
    tok = tokens_for(fused)
    probe = torch.randn(fused(tok).shape, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(2))
    (fused(tok) * probe).sum().backward()
    (plain(tok) * probe).sum().backward()
    grads_p = dict(plain.named_parameters())
    for k, p in fused.named_parameters():
        torch.testing.assert_close(p.grad, grads_p[k].grad, rtol=1e-10, atol=1e-12, msg=k)


@pytest.mark.parametrize("dynamic", [True, False])
def test_boundary_write_gradcheck(dynamic: bool) -> None:
    """RESᵀH + post·o against its definition, and its float64 gradient (eager: baddbmm)."""
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=g).requires_grad_()

    h, o = r(2, 3, 4, 5), r(2, 3, 5)
    res, post = (r(2, 3, 4, 4), r(2, 3, 4)) if dynamic else (r(4, 4), r(4))
    spec = "btsw,btsc->btcw" if dynamic else "btsw,sc->btcw"  # the mix's definition
    want = torch.einsum(spec, h, res) + post.unsqueeze(-1) * o.unsqueeze(-2)
    torch.testing.assert_close(boundary_write(h, o, res, post), want, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(boundary_write, (h, o, res, post))
    o1 = o.detach().unsqueeze(-2).requires_grad_()  # the layer output as one stream
    torch.testing.assert_close(boundary_write(h, o1, res, post), want, rtol=0, atol=1e-12)


def test_model_gradcheck_tiny() -> None:
    """float64 gradcheck of a tiny fused mHC model through its coefficients' projection."""
    model = build(model_text("mhc(n=2)", dim=4, vocab=8, body="[attn, ffn]",
                             layers=(("attn", "attention(heads=1)"),
                                     ("ffn", "mlp(hidden=8)"))), True, dtype=torch.float64)
    assert model.code.count("boundary_write(") == 2
    tok = torch.tensor([[1, 5, 2]])
    params = dict(model.named_parameters())
    name = next(k for k in params if "phi" in k)

    def f(phi: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, {**params, name: phi}, (tok,))

    assert torch.autograd.gradcheck(f, (params[name].detach().clone().requires_grad_(),))


@pytest.mark.parametrize("connect", ["hyper(n=4, static)", "residual", "mudd"])
def test_not_fused_without_a_dynamic_coefficient(connect: str) -> None:
    text = model_text(connect, layers=(("attn", "attention(heads=2)"),
                                       ("ffn", "mlp(hidden=32)")))
    assert find(Compilation.load(text).ir()) == {}
    assert "boundary_write" not in build(text, True).code


def test_recompute_layers_with_fusion() -> None:
    """The fused boundary inside recomputed segments (backends/segments.py): the same logits
    and float64 gradients as the plain, unfused model."""
    path = SPECS / "families/mhc_tiny_paper4.hc"
    seg = build(path, True, dtype=torch.float64, recompute="layers", recompute_every=2)
    plain = build(path, False, dtype=torch.float64)
    codes = [m.fn.code for m in seg.modules() if isinstance(m, segments.Segment)]
    assert len(codes) == 2 and all("boundary_write" in c for c in codes)
    tok = tokens_for(plain)
    torch.testing.assert_close(seg(tok), plain(tok), rtol=0, atol=1e-12)
    seg(tok).sum().backward()
    plain(tok).sum().backward()
    grads_p = dict(plain.named_parameters())
    for k, p in seg.named_parameters():
        torch.testing.assert_close(p.grad, grads_p[k].grad, rtol=1e-10, atol=1e-12, msg=k)


@pytest.mark.slow
def test_compiled_fused_equals_eager() -> None:
    model = build(SPECS / "families/mhc_tiny_paper4.hc", True)
    tok = tokens_for(model)
    want = model(tok)
    got = torch.compile(model, fullgraph=True)(tok)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
