"""Dynamic Frac-Connections with m > 1 (arXiv 2503.14125 §3) as a generator over the split
state (`fractions = m`): the per-token matrix equals the paper's equations written in plain
torch (tests/paper_hc.py), the parameters keep the preset's names and counts, no dynamic
learned coefficient is left in the IR, and the spec written with the primitives
(specs/custom/frac_written.hc) computes what `frac(m=2, dynamic)` computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.ir import nodes as n

from hcdsl.nn.generator import GeneratorCoef

from helpers import attn_ffn, model_text
from paper_hc import fc_dynamic_matrix

DIM = 32


def spec(connect: str, norm: str = "rmsnorm(affine=true)") -> str:
    return model_text(connect, name="fcg", dim=DIM, vocab=64, settings=f"norm = {norm}",
                      layers=attn_ffn(4, "mlp(hidden=64, act=swiglu)"))


def coefs(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(k, v) for k, v in model.named_children() if k.endswith("_coef")]


CASES = [(m, tanh, norm) for m in (2, 4) for tanh in (True, False)
         for norm in ("rmsnorm(affine=true)", "layernorm(affine=true)", "rmsnorm")]


@pytest.mark.parametrize("m,tanh,norm", CASES)
def test_matrix_equals_the_paper_equations(m: int, tanh: bool, norm: str) -> None:
    t = "" if tanh else ", tanh=false"
    model = hcdsl.compile(spec(f"frac(m={m}, dynamic{t})", norm), seed=1, dtype=torch.float64)
    g = torch.Generator().manual_seed(m)
    for name, mod in coefs(model):
        assert isinstance(mod, GeneratorCoef) and mod.reads == m, name
        for p in mod.parameters():  # away from init: no term trivially 0 or 1
            p.data = p.data + 0.4 * torch.randn(p.shape, generator=g, dtype=p.dtype)
        H = torch.randn(2, 5, m, DIM // m, generator=g, dtype=torch.float64)
        params = dict(mod.named_parameters())
        kind = "layernorm" if norm.startswith("layernorm") else "rmsnorm"
        want = fc_dynamic_matrix(H, params, m, tanh, kind, 1e-5)
        torch.testing.assert_close(mod(H), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [2, 4])
def test_names_shapes_and_counts_are_the_presets(m: int) -> None:
    """The state_dict keys and shapes dynamic FC had as a preset-only coefficient."""
    w = DIM // m
    model = hcdsl.compile(spec(f"frac(m={m}, dynamic)"), seed=0)
    want = {"static_gain": (m,), "static_mix": (m, 2 * m), "norm.weight": (w,),
            "w_gain": (w,), "w_mix": (w, 2 * m), "s_gain": (), "s_mix": ()}
    for name, mod in coefs(model):
        got = {k: tuple(v.shape) for k, v in mod.state_dict().items()}
        assert got == want, name
    per_layer = m + 2 * m * m + w + w + 2 * m * w + 2  # B, [Y|A], norm, W_β, [W_γ|W_α], s
    ir = hcdsl.lower(spec(f"frac(m={m}, dynamic)"), passes=None)
    gens = [ir.payload(v) for v in ir.g.nodes if isinstance(ir.payload(v), n.GeneratorCoef)]
    assert len(gens) == 4 and all(g.param_count() == per_layer for g in gens)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_no_dynamic_learned_coefficient_is_left(m: int) -> None:
    ir = hcdsl.lower(spec(f"frac(m={m}, dynamic)"), passes=None)
    kinds = {type(ir.payload(v)) for v in ir.g.nodes}
    assert n.GeneratorCoef in kinds and n.LearnedCoef not in kinds


def test_starts_as_the_static_fc() -> None:
    """W = 0 at init: dynamic FC's M is the static init [[0, diag(1)], [I, I]] per token."""
    model = hcdsl.compile(spec("frac(m=2, dynamic)"), seed=0, dtype=torch.float64)
    _, mod = coefs(model)[0]
    M = mod(torch.randn(3, 4, 2, DIM // 2, dtype=torch.float64))
    eye = torch.eye(2, dtype=torch.float64)
    want = torch.cat([torch.cat([torch.zeros(2, 2, dtype=torch.float64), eye], -1),
                      torch.cat([eye, eye], -1)], -2)
    assert torch.equal(M, want.expand(3, 4, 4, 4))


WRITTEN = Path(__file__).resolve().parents[2] / "specs" / "custom" / "frac_written.hc"


def preset_of_written() -> str:
    text = WRITTEN.read_text()
    return text[text.index("\nmodel ") + 1:].replace("connect frac_written", "connect frac(m=2, dynamic)")


def to_outputs(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The preset's parameters (hc names) under a written generator's names (outs.*)."""
    out = {}
    for k, t in sd.items():
        head, _, leaf = k.rpartition(".")
        if not head.endswith("_coef") or leaf == "weight":  # not a coef, or its norm's
            if not k.endswith("_coef.norm.weight"):
                out[k] = t
                continue
        c = k[:k.index("_coef") + len("_coef")] + "."
        if k.endswith("norm.weight"):
            out[c + "norm.weight"] = t
        elif leaf == "static_gain":
            out[c + "outs.write.bias"] = t.unsqueeze(-1)
        elif leaf == "static_mix":
            out[c + "outs.read.bias"], out[c + "outs.res.bias"] = t[:, :2], t[:, 2:]
        elif leaf == "w_gain":
            out[c + "outs.write.weight"] = t.unsqueeze(0)
        elif leaf == "w_mix":
            out[c + "outs.read.weight"] = t[:, :2].t().contiguous()
            out[c + "outs.res.weight"] = t[:, 2:].t().contiguous()
        elif leaf == "s_gain":
            out[c + "outs.write.scale"] = t
        elif leaf == "s_mix":
            out[c + "outs.read.scale"] = t
    return out


def test_written_spec_is_frac_m2_dynamic() -> None:
    """specs/custom/frac_written.hc (the primitives) and `frac(m=2, dynamic)` (the preset):
    the same parameter count, and with the same weights (moved away from init) the same
    logits."""
    from hcdsl.counts import count_params
    written = hcdsl.compile(WRITTEN, seed=0, dtype=torch.float64)
    preset = hcdsl.compile(preset_of_written(), seed=0, dtype=torch.float64)
    assert count_params(WRITTEN) == count_params(preset_of_written()) == sum(
        p.numel() for p in written.parameters())
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in preset.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    written.load_state_dict(to_outputs(preset.state_dict()), strict=True)
    toks = torch.randint(0, 256, (2, 11), generator=g)
    torch.testing.assert_close(written(toks), preset(toks), rtol=0, atol=1e-12)
    dropped = dict(written.state_dict())
    dropped["L1_coef.outs.read.weight"] = dropped["L1_coef.outs.read.weight"] * 0
    written.load_state_dict(dropped)
    assert (written(toks) - preset(toks)).abs().max() > 1e-6  # the read's W matters
