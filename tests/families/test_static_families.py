"""Static families written as `connection` blocks (specs/families/wide_residual*.hc,
two_lane_x0.hc, specs/custom/laurel_pa.hc): each compiles, the fx backend equals the
reference interpreter, it trains, `hcdsl stats` counts the family's own parameters, and its
output equals an independent reference written here in plain torch from the family's
equations (float64, every parameter moved off its init), with the module's own layers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from custom_helpers import (
    LAYERS, VOCAB, assert_fx_equals_reference, layer_of, logits, n_params, pre_norm_text,
    randomise, run, tokens,
)
import hcdsl
from hcdsl.counts import stats
from hcdsl.frontend.printer import format_model

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
SPECS = {
    "wide_residual": ROOT / "specs" / "families" / "wide_residual.hc",
    "wide_residual_retention": ROOT / "specs" / "families" / "wide_residual_retention.hc",
    "two_lane_x0": ROOT / "specs" / "families" / "two_lane_x0.hc",
    "laurel_pa": ROOT / "specs" / "custom" / "laurel_pa.hc",
    "laurel_rw_softmax": ROOT / "specs" / "custom" / "laurel_rw_softmax.hc",
}
K, S_INIT, MAX_FORGET = 4, 0.3, 0.1  # WideResidual: streams, write-logit scale, max forget
RANK, DIM, BLOCKS = 8, 64, 2


def model64(name: str, random: bool = True) -> torch.nn.Module:
    m = hcdsl.compile(SPECS[name], seed=0).double()
    if random:
        randomise(m, 7)
    return m


def extra_params(name: str) -> int:
    """The family's own parameters: the model's minus the same model with Pre-Norm."""
    text = SPECS[name].read_text()
    return n_params(hcdsl.compile(text, seed=0)) - n_params(hcdsl.compile(pre_norm_text(text),
                                                                          seed=0))


# -- WideResidual (Megatron-LM PR #6716) ------------------------------------------------------
class WideResidual(torch.nn.Module):
    """Megatron's streamwise wide residual around one branch, written from its equations:
    read z = Σ_i σ(r_i) X_i; write X_i <- ρ_i X_i + 2σ(β_i) v, ρ_i = 1 - m σ(-c_i) (or 1)."""

    def __init__(self, retention: bool) -> None:
        super().__init__()
        self.read_logit = torch.nn.Parameter(torch.full((K,), math.log(1 / (K - 1))))
        self.write_logit = torch.nn.Parameter(torch.linspace(-S_INIT, S_INIT, K))
        forget = (1 - 0.999) / MAX_FORGET
        self.retention_logit = torch.nn.Parameter(
            torch.full((K,), math.log((1 - forget) / forget))) if retention else None

    def read(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, K, d)
        return torch.einsum("k,btkd->btd", torch.sigmoid(self.read_logit), x)

    def write(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        keep = 1.0 if self.retention_logit is None else (
            1 - MAX_FORGET * torch.sigmoid(-self.retention_logit))[:, None]
        return keep * x + (2 * torch.sigmoid(self.write_logit))[:, None] * v[:, :, None, :]


def copy_wide(m: torch.nn.Module, conns: list[WideResidual]) -> torch.Tensor:
    """Megatron's logits from our raw params (σ-bounded params store the logit itself;
    f_i = σ(raw) is σ(-c_i), so c_i = -raw); returns the exit readout's logits."""
    with torch.no_grad():
        for k, conn in enumerate(conns, start=1):
            coef = getattr(m, f"L{k}_coef")
            conn.read_logit.copy_(torch.stack([getattr(coef, f"raw_r{i}") for i in range(1, 5)]))
            conn.write_logit.copy_(torch.stack([getattr(coef, f"raw_w{i}") for i in range(1, 5)]))
            if conn.retention_logit is not None:
                conn.retention_logit.copy_(-torch.stack(
                    [getattr(coef, f"raw_f{i}") for i in range(1, 5)]))
        exit_coef = m.readout_coef
        return torch.stack([getattr(exit_coef, f"raw_e{i}") for i in range(1, 5)])


@pytest.mark.parametrize("name", ["wide_residual", "wide_residual_retention"])
@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_wide_residual_equals_megatron_equations(name: str, random: bool) -> None:
    m = model64(name, random)
    conns = [WideResidual("retention" in name).double() for _ in range(LAYERS)]
    exit_logits = copy_wide(m, conns)
    toks = tokens()
    with torch.no_grad():
        x = m.embed(toks)[:, :, None, :].repeat(1, 1, K, 1)  # expand_wide_residual_stream
        for k, conn in enumerate(conns, start=1):
            layer, is_attn = layer_of(m, k)
            x = conn.write(x, run(layer, is_attn, getattr(m, f"L{k}_norm")(conn.read(x))))
        h = torch.einsum("k,btkd->btd", torch.sigmoid(exit_logits), x)
        diff = (m(toks) - logits(m, h)).abs().max().item()
    assert diff <= 1e-6, diff


def test_wide_residual_init_is_megatrons() -> None:
    """Write logits linspace(-s, s, K) (mirrored: mean write factor 1), read and exit factors
    1/K, retention 0.999; so the stream mean at init is exactly the Pre-Norm stream."""
    m = model64("wide_residual_retention", random=False)
    fresh = WideResidual(retention=True).double()
    for k in range(1, LAYERS + 1):
        coef = getattr(m, f"L{k}_coef")
        raw = lambda p: torch.stack([getattr(coef, f"raw_{p}{i}") for i in range(1, 5)])  # noqa: E731
        assert torch.allclose(raw("w"), fresh.write_logit.detach(), atol=1e-7)
        assert torch.allclose(raw("r"), fresh.read_logit.detach(), atol=1e-7)
        assert torch.allclose(-raw("f"), fresh.retention_logit.detach(), atol=1e-6)
        assert abs((2 * torch.sigmoid(raw("w"))).mean().item() - 1) < 1e-12
    plain = model64("wide_residual", random=False)
    pre = hcdsl.compile(pre_norm_text(SPECS["wide_residual"].read_text()), seed=0).double()
    pre.load_state_dict({k: v for k, v in plain.state_dict().items() if k in pre.state_dict()})
    toks = tokens()
    assert (plain(toks) - pre(toks)).abs().max().item() <= 1e-6  # params made in float32


# -- the two-lane residual of modded-nanogpt --------------------------------------------------
@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_two_lane_x0_equals_modded_nanogpt_block(random: bool) -> None:
    """Per block: x = λ0 x + λ1 x0; x = x + attn(norm(x)); x = x + mlp(norm(x))."""
    m = model64("two_lane_x0", random)
    toks = tokens()
    with torch.no_grad():
        x = x0 = m.embed(toks)
        for b in range(BLOCKS):
            coef = getattr(m, f"L{2 * b + 1}_coef")
            lam0, lam1 = coef.raw_l0, coef.raw_l1  # bound none: the value itself
            if random:
                assert abs(lam0.item() - 1) > 1e-3 and abs(lam1.item()) > 1e-3
            x = lam0 * x + lam1 * x0
            for k in (2 * b + 1, 2 * b + 2):
                layer, is_attn = layer_of(m, k)
                x = x + run(layer, is_attn, getattr(m, f"L{k}_norm")(x))
        diff = (m(toks) - logits(m, x)).abs().max().item()
    assert diff <= 1e-6, diff


# -- LAuReL-PA ------------------------------------------------------------------------------
@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_laurel_pa_equation(random: bool) -> None:
    """x_(i+1) = f(Norm(x_i)) + Σ_j γ_j h_j(x_(i-j)), h_j(x) = x + B_j A_j x, over the
    activations that exist (j <= i), γ and h_j per layer."""
    m = model64("laurel_pa", random)
    toks = tokens()
    with torch.no_grad():
        xs = [m.embed(toks)]  # x_0, x_1, ...: the inputs of the layers
        for k in range(1, LAYERS + 1):
            coef = getattr(m, f"L{k}_coef")
            layer, is_attn = layer_of(m, k)
            out = run(layer, is_attn, getattr(m, f"L{k}_norm")(xs[-1]))
            for j in range(min(3, k)):
                low = getattr(m, f"L{k}_map{j + 1}_lowrank")
                assert low.down.shape == (RANK, DIM) and low.up.shape == (DIM, RANK)
                prev = xs[-1 - j]
                h = prev + prev @ low.down.T @ low.up.T
                out = out + getattr(coef, f"raw_g{j}") * h
            xs.append(out)
        diff = (m(toks) - logits(m, xs[-1])).abs().max().item()
    assert diff <= 1e-6, diff


def test_laurel_pa_starts_as_pre_norm() -> None:
    text = SPECS["laurel_pa"].read_text()
    m = hcdsl.compile(text, seed=0).double()
    pre = hcdsl.compile(pre_norm_text(text), seed=0).double()
    pre.load_state_dict({k: v for k, v in m.state_dict().items() if k in pre.state_dict()})
    toks = tokens()
    assert (m(toks) - pre(toks)).abs().max().item() <= 1e-10


@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_laurel_rw_softmax_equation(random: bool) -> None:
    """x' = α f(Norm(x)) + β x, (α, β) = softmax(a, b) of the layer's two logits."""
    m = model64("laurel_rw_softmax", random)
    toks = tokens()
    with torch.no_grad():
        x = m.embed(toks)
        for k in range(1, LAYERS + 1):
            coef = getattr(m, f"L{k}_coef")
            alpha, beta = torch.softmax(torch.stack([coef.raw_a, coef.raw_b]), dim=0)
            assert random or alpha.item() == 0.5
            layer, is_attn = layer_of(m, k)
            x = alpha * run(layer, is_attn, getattr(m, f"L{k}_norm")(x)) + beta * x
        diff = (m(toks) - logits(m, x)).abs().max().item()
    assert diff <= 1e-6, diff


LINEAR = SPECS["laurel_pa"].read_text().split("\nmodel ")[1]
LINEAR = """connection dense_map {
  param g = scalar(init=0.5, bound=unit)
  maps = [linear(source=1, target=1, weight=g)]
  all = [[0, 1], [1, 1]]
}

model """ + LINEAR.replace("connect laurel_pa", "connect dense_map")


@pytest.mark.parametrize("random", [False, True], ids=["init", "random"])
def test_linear_map_equation(random: bool) -> None:
    """A learned d x d map (W = 0 at init): x' = f(Norm(x)) + x + σ(g) W x."""
    m = hcdsl.compile(LINEAR, seed=0).double()
    if random:
        randomise(m, 7)
    toks = tokens()
    with torch.no_grad():
        x = m.embed(toks)
        for k in range(1, LAYERS + 1):
            lin = getattr(m, f"L{k}_map1_lowrank")
            assert lin.up.shape == (DIM, DIM) and not hasattr(lin, "down")
            assert random or not lin.up.any()
            g = torch.sigmoid(getattr(m, f"L{k}_map1_coef").raw_g)
            layer, is_attn = layer_of(m, k)
            x = run(layer, is_attn, getattr(m, f"L{k}_norm")(x)) + x + g * (x @ lin.up.T)
        diff = (m(toks) - logits(m, x)).abs().max().item()
    assert diff <= 1e-6, diff
    assert stats(LINEAR).extra_params == LAYERS * (DIM * DIM + 1)
    assert hcdsl.parse(format_model(hcdsl.parse(LINEAR))) == hcdsl.parse(LINEAR)


# -- every family ---------------------------------------------------------------------------
# the families' own parameters, from their definitions (not from hcdsl):
#   WideResidual: K read + K write logits per layer (+ K retention), K exit logits
#   two lanes: (λ0, λ1) per block; LAuReL-PA: per layer i, γ_j and 2 d r per existing x_(i-j)
EXPECTED = {
    "wide_residual": LAYERS * 2 * K + K,
    "wide_residual_retention": LAYERS * 3 * K + K,
    "two_lane_x0": 2 * BLOCKS,
    "laurel_pa": sum(min(3, k) * (1 + 2 * DIM * RANK) for k in range(1, LAYERS + 1)),
    "laurel_rw_softmax": 2 * LAYERS,  # the two logits of every layer
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_counts(name: str) -> None:
    assert extra_params(name) == EXPECTED[name]
    assert stats(SPECS[name]).extra_params == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_fx_equals_reference(name: str) -> None:
    assert_fx_equals_reference(SPECS[name])


@pytest.mark.parametrize("name", sorted(SPECS))
def test_trains(name: str) -> None:
    torch.manual_seed(0)
    m = hcdsl.compile(SPECS[name], seed=0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    batch = tokens(shape=(4, 16))
    losses = []
    for _ in range(6):
        out = m(batch)
        loss = F.cross_entropy(out[:, :-1].reshape(-1, VOCAB), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # the connection's own scalars and maps moved
    moved = [n for n, p in m.named_parameters() if ("coef" in n or "map" in n) and p.grad is not None
             and p.grad.abs().sum() > 0]
    assert moved


@pytest.mark.parametrize("name", sorted(SPECS))
def test_prints_back(name: str) -> None:
    spec = hcdsl.parse(SPECS[name].read_text())
    assert hcdsl.parse(format_model(spec)) == spec


@pytest.mark.parametrize("page, names", [
    ("wide_residual", ["wide_residual", "wide_residual_retention"]),
    ("two_lane_x0", ["two_lane_x0"]), ("laurel_pa", ["laurel_pa"])])
def test_the_family_pages_show_the_specs(page: str, names: list[str]) -> None:
    """docs/families/<page>.md quotes each spec file whole, as it is."""
    blocks = (ROOT / "docs" / "families" / f"{page}.md").read_text().split("```")[1::2]
    for name in names:
        assert "\n" + SPECS[name].read_text() in blocks
