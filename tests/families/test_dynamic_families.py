"""The 2025-26 dynamic connection families written as `.hc` specs with generator blocks
(specs/families/), each checked against an independent reference in float64:

- DeepSeek-V4 mHC: transformers' own DeepseekV4HyperConnection + DeepseekV4HyperHead,
  built directly with a tiny config, our weights copied into them;
- GLM-5-next: Glm5NextTextHyperConnection + Glm5NextTextHyperHead (an unweighted mean);
- Qwen4-exp: Qwen4ExpTextGatedResidual (per layer) and its use_combine=False mixer (readout);
- mHC-lite (arXiv 2601.05732) and KromHC (arXiv 2601.21579): the paper's equation written
  here in float64 with numpy's permutations and Kronecker products.

For every layer the test feeds the state that entered the layer (the reference interpreter's
value) to the reference, and compares the layer input (the read), the new state and the
readout to 1e-6. Plus: parse/print round trip, fx == reference (every gradient), a few
training steps lower the loss, and the parameter counts equal the reference modules'.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_same, perturb, train_losses
import hcdsl
from hcdsl.frontend.printer import format_model
from hcdsl.ir import nodes as n

FAMILIES = Path(__file__).resolve().parents[2] / "specs" / "families"
NAMES = ["deepseek_v4_mhc", "glm5_mhc", "qwen4_gated_residual", "mhc_lite", "kromhc"]
LAYERS, STREAMS, DIM, VOCAB = 4, 4, 64, 256
TOL = 1e-6

pytestmark = pytest.mark.usefixtures("one_thread")


def path(name: str) -> Path:
    return FAMILIES / f"{name}.hc"


def model64(name: str, seed: int = 5) -> torch.nn.Module:
    """The reference interpreter in float64, every parameter moved off its init."""
    m = hcdsl.compile(path(name), backend="reference", seed=0).double()
    perturb(m, seed, const=0.3)
    return m


def tokens(shape: tuple[int, int] = (2, 7)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(0))


def steps(m, vals):
    """Per layer k (1-based): (state before, layer output, layer input, state after)."""
    ir = m.ir
    out = []
    for k in range(1, LAYERS + 1):
        layer = f"L{k}.attn" if k % 2 else f"L{k}.ffn"
        state = vals[ir.inputs(f"L{k}.coef")["x"]]
        read = f"L{k}.gen_read" if f"L{k}.gen_read" in vals else f"L{k}.in"
        out.append((k, state, vals[layer], vals[read], vals[f"L{k}.write"]))
    return out


def gen(m, k: int):
    return m.mod(f"L{k}.coef")


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = (a - b).abs().max().item()
    assert diff <= TOL, diff


# -- DeepSeek-V4 and GLM-5-next: transformers' own modules ----------------------------------

def _mhc_reference(name: str, hc_eps: float = 1e-6):
    if name == "deepseek_v4_mhc":
        from transformers.models.deepseek_v4.configuration_deepseek_v4 import DeepseekV4Config
        from transformers.models.deepseek_v4.modeling_deepseek_v4 import (
            DeepseekV4HyperConnection, DeepseekV4HyperHead,
        )
        cfg = DeepseekV4Config(hidden_size=DIM, hc_mult=STREAMS, hc_sinkhorn_iters=20,
                               hc_eps=hc_eps, rms_norm_eps=1e-6)
        return cfg, DeepseekV4HyperConnection, DeepseekV4HyperHead
    from transformers.models.glm5_next.configuration_glm5_next import Glm5NextTextConfig
    from transformers.models.glm5_next.modeling_glm5_next import (
        Glm5NextTextHyperConnection, Glm5NextTextHyperHead,
    )
    cfg = Glm5NextTextConfig(hidden_size=DIM, hc_mult=STREAMS, hc_sinkhorn_iters=20,
                             hc_eps=hc_eps, rms_norm_eps=1e-5)
    return cfg, Glm5NextTextHyperConnection, lambda c: Glm5NextTextHyperHead()


def _copy_mhc(ours, theirs) -> None:
    o = ours.outs
    with torch.no_grad():
        theirs.fn.copy_(torch.cat([o["read"].weight, o["write"].weight, o["res"].weight]))
        theirs.base.copy_(torch.cat([o["read"].bias, o["write"].bias, o["res"].bias]))
        theirs.scale.copy_(torch.stack([o["read"].scale, o["write"].scale, o["res"].scale]))


@pytest.fixture
def float64_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers' modules compute their coefficients after `.float()` (float32, as ours do
    for low-precision models); for a float64 comparison that cast keeps float64."""
    monkeypatch.setattr(torch.Tensor, "float", lambda self: self.to(
        torch.promote_types(self.dtype, torch.float32)))


def model64_eps(name: str, hc_eps: float) -> torch.nn.Module:
    """The spec with its hc_eps (the read's `add`, Sinkhorn's eps) set to hc_eps."""
    text = path(name).read_text().replace("add=1e-06", f"add={hc_eps!r}").replace(
        "iters=20, eps=1e-06", f"iters=20, eps={hc_eps!r}")
    m = hcdsl.compile(text, backend="reference", seed=0).double()
    perturb(m, 5, const=0.3)
    return m


# hc_eps = 1e-2 as well: with 1e-6 a misplaced eps changes the result by less than 1e-6
@pytest.mark.parametrize("hc_eps", [1e-6, 1e-2])
@pytest.mark.parametrize("name", ["deepseek_v4_mhc", "glm5_mhc"])
def test_mhc_equals_transformers_modules(name: str, hc_eps: float,
                                         float64_everywhere: None) -> None:
    cfg, HC, Head = _mhc_reference(name, hc_eps)
    m = model64_eps(name, hc_eps)
    vals = m.run(tokens())
    for k, state, o, read, new in steps(m, vals):
        hc = HC(cfg).double()
        _copy_mhc(gen(m, k), hc)
        post, comb, collapsed = hc(state.contiguous())
        close(read, collapsed)  # the layer input, before the layer's own pre-norm
        expect = post.unsqueeze(-1) * o.unsqueeze(-2) + torch.matmul(comb.transpose(-1, -2),
                                                                     state)
        close(new, expect)
    final = vals[m.ir.inputs("final.norm")["x"]]  # the readout, before the final norm
    head = Head(cfg).double()
    last = vals[f"L{LAYERS}.write"]
    if name == "deepseek_v4_mhc":
        ours = m.mod("readout.gen").outs["readout"]
        with torch.no_grad():
            head.hc_fn.copy_(ours.weight)
            head.hc_base.copy_(ours.bias)
            head.hc_scale.copy_(ours.scale.reshape(1))
    close(final, head(last.contiguous()))


@pytest.mark.parametrize("name", ["deepseek_v4_mhc", "glm5_mhc"])
def test_mhc_parameter_counts_equal_transformers(name: str) -> None:
    cfg, HC, Head = _mhc_reference(name)
    ir = hcdsl.compile(path(name), backend="reference", seed=0).ir
    hc = sum(p.numel() for p in HC(cfg).parameters())
    head = sum(p.numel() for p in Head(cfg).parameters())
    for k in range(1, LAYERS + 1):
        assert ir.payload(f"L{k}.coef").param_count() == hc
    readout = sum(ir.payload(v).param_count() for v in ir.g.nodes if v.startswith("readout"))
    assert readout == head


# -- Qwen4-exp: the gated residual ---------------------------------------------------------

def _qwen(use_combine: bool = True):
    from transformers.models.qwen4_exp.configuration_qwen4_exp import Qwen4ExpTextConfig
    from transformers.models.qwen4_exp.modeling_qwen4_exp import Qwen4ExpTextGatedResidual
    cfg = Qwen4ExpTextConfig(hidden_size=DIM, hc_count=STREAMS, hc_lowrank=16,
                             rms_norm_eps=1e-6)
    return Qwen4ExpTextGatedResidual(cfg, use_combine=use_combine).double()


def _copy_qwen(ours, theirs) -> None:
    role = "read" if "read" in ours.outs else "readout"
    with torch.no_grad():
        theirs.hc_norm.weight.copy_(ours.norm.weight)
        theirs.input_mix_weight_down.weight.copy_(ours.outs[role].down)
        theirs.input_mix_weight_up.weight.copy_(ours.outs[role].up)
        if theirs.block_inject_weight is not None:
            theirs.block_inject_weight.weight.copy_(ours.outs["write"].weight)


def test_qwen4_gated_residual_equals_transformers_module(float64_everywhere: None) -> None:
    m = model64("qwen4_gated_residual")
    vals = m.run(tokens())
    for k, state, o, read, new in steps(m, vals):
        gr = _qwen()
        _copy_qwen(gen(m, k), gr)
        mixed, hyper, inject = gr(state.flatten(-2))
        close(read, mixed)  # the layer's input (no other pre-norm)
        expect = hyper + (o.unsqueeze(-2) * inject.unsqueeze(-1)).flatten(-2)
        close(new.flatten(-2), expect)
    mixer = _qwen(use_combine=False)
    _copy_qwen(m.mod("readout.gen"), mixer)
    head_in = vals[m.ir.inputs("head")["x"]]  # no final norm: the mixer's output
    close(head_in, mixer(vals[f"L{LAYERS}.write"].flatten(-2)))


def test_qwen4_parameter_counts_equal_transformers() -> None:
    ir = hcdsl.compile(path("qwen4_gated_residual"), backend="reference", seed=0).ir
    layer = sum(p.numel() for p in _qwen().parameters())
    mixer = sum(p.numel() for p in _qwen(use_combine=False).parameters())
    for k in range(1, LAYERS + 1):
        assert ir.payload(f"L{k}.coef").param_count() == layer
    assert ir.payload("readout.gen").param_count() == mixer


# -- mHC-lite and KromHC: the papers' equations in numpy float64 ---------------------------

def _perms(n: int) -> np.ndarray:
    """Every n x n permutation matrix, P[s, σ(s)] = 1, in lexicographic order of σ."""
    out = []
    for sigma in itertools.permutations(range(n)):
        p = np.zeros((n, n))
        for s, t in enumerate(sigma):
            p[s, t] = 1.0
        out.append(p)
    return np.stack(out)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _paper_matrix(name: str, g, h: np.ndarray) -> np.ndarray:
    """M = [[0, H_post], [H_pre, RES]] from the state h (..., n, C), mHC's Eqs. 7-8 for pre
    and post, and the family's residual mix."""
    o = {k: {q: t.detach().numpy() for q, t in v.named_parameters()}
         for k, v in g.outs.items()}
    x = h.reshape(*h.shape[:-2], -1)
    z = x / np.sqrt((x ** 2).mean(-1, keepdims=True) + 1e-6)

    def logits(role: str) -> np.ndarray:
        return o[role]["scale"] * (z @ o[role]["weight"].T) + o[role]["bias"]

    pre, post = _sigmoid(logits("read")), 2 * _sigmoid(logits("write"))
    n = h.shape[-2]
    if name == "mhc_lite":  # RES = Σ_k softmax(a)_k P_k over all n! permutations
        res = np.einsum("...k,kst->...st", _softmax(logits("res")), _perms(n))
    else:  # KromHC: U_1 ⊗ U_2, each U_i = Σ_k softmax(a_i)_k P_k over 2! permutations
        a = logits("res")
        u1 = np.einsum("...k,kst->...st", _softmax(a[..., :2]), _perms(2))
        u2 = np.einsum("...k,kst->...st", _softmax(a[..., 2:]), _perms(2))
        res = np.zeros(a.shape[:-1] + (n, n))
        for idx in np.ndindex(*a.shape[:-1]):
            res[idx] = np.kron(u1[idx], u2[idx])
    m = np.zeros(h.shape[:-2] + (n + 1, n + 1))
    m[..., 0, 1:] = post
    m[..., 1:, 0] = pre
    m[..., 1:, 1:] = res
    return m


@pytest.mark.parametrize("name", ["mhc_lite", "kromhc"])
def test_paper_equation(name: str) -> None:
    m = model64(name)
    with torch.no_grad():
        vals = m.run(tokens())
    for k, state, o, read, new in steps(m, vals):
        with torch.no_grad():
            mat = _paper_matrix(name, gen(m, k), state.numpy())
        close(vals[f"L{k}.coef"], torch.from_numpy(mat))
        res = mat[..., 1:, 1:]
        assert np.abs(res.sum(-1) - 1).max() < 1e-12 and np.abs(res.sum(-2) - 1).max() < 1e-12
        h = state.numpy()
        close(read, torch.from_numpy(np.einsum("...s,...sc->...c", mat[..., 1:, 0], h)))
        expect = (mat[..., 0, 1:, None] * o.numpy()[..., None, :]
                  + np.einsum("...st,...sc->...tc", res, h))
        close(new, torch.from_numpy(expect))


def test_mhc_lite_and_kromhc_parameter_counts() -> None:
    """From the papers' shapes: pre and post n x nC each, res nC x n! (lite) or
    nC x Σ f_i! (KromHC), a scale per output and a bias per logit."""
    nC = STREAMS * DIM
    lite = 2 * (nC * STREAMS + 1 + STREAMS) + nC * 24 + 1 + 24
    krom = 2 * (nC * STREAMS + 1 + STREAMS) + nC * 4 + 1 + 4
    for name, count in (("mhc_lite", lite), ("kromhc", krom)):
        ir = hcdsl.compile(path(name), backend="reference", seed=0).ir
        for k in range(1, LAYERS + 1):
            assert ir.payload(f"L{k}.coef").param_count() == count


# -- every family: round trip, backends, training, parameter counts from shapes ------------

@pytest.mark.parametrize("name", NAMES)
def test_spec_round_trips(name: str) -> None:
    spec = hcdsl.parse(path(name))
    printed = format_model(spec)
    assert "generator {" in printed
    assert hcdsl.parse(printed).model_dump() == spec.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed


@pytest.mark.parametrize("name", NAMES)
def test_fx_equals_reference_with_every_gradient(name: str) -> None:
    fx_model = hcdsl.compile(path(name), seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(path(name), backend="reference", seed=0)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(), nonzero=True)


@pytest.mark.parametrize("name", NAMES)
def test_trains(name: str) -> None:
    torch.manual_seed(0)
    m = hcdsl.compile(path(name), seed=0)
    losses = train_losses(m, tokens((4, 16)), VOCAB)
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("name", NAMES)
def test_param_count_from_shapes_is_the_modules(name: str) -> None:
    m = hcdsl.compile(path(name), backend="reference", seed=0)
    for v in m.ir.g.nodes:
        p = m.ir.payload(v)
        if isinstance(p, n.GeneratorCoef):
            assert p.param_count() == sum(t.numel() for t in m.mod(v).parameters())


def test_coefficients_are_float32_under_bfloat16() -> None:
    """A bfloat16 model computes its generator in float32 (the projections run in float32)."""
    m = hcdsl.compile(path("deepseek_v4_mhc"), backend="reference", seed=0)
    g = m.mod("L1.coef")
    seen = []
    hook = g.outs["res"].register_forward_pre_hook(lambda mod, args: None)
    orig = g.outs["res"].logits

    def spy(z, *rest):  # logits(z, its parameters' view, the fused projection's part)
        seen.append(z.dtype)
        return orig(z, *rest)

    g.outs["res"].logits = spy
    h = torch.randn(2, 3, STREAMS, DIM, dtype=torch.bfloat16)
    out = g.to(torch.bfloat16)(h)
    hook.remove()
    assert seen == [torch.float32] and out.dtype == torch.bfloat16
