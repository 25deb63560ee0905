"""The generator primitives against hcdsl's own Python presets and plain torch:

- a generator written like mHC (flat input, unweighted RMSNorm, sigmoid / 2 sigmoid,
  Sinkhorn in the paper's order) computes exactly `connect mhc(n=4, paper)` once the preset's
  weights are copied in (so `order=paper` is the op of hcdsl/nn/sinkhorn.py on H_res = RESᵀ);
- a generator over each stream with `affine=after_act` and tanh computes exactly dynamic HC
  (`connect hyper(n=4, dynamic)`, arXiv 2409.19606 Eqs. 10-13), the per-stream static parts
  being the biases;
- per-channel reads, softmax over the streams, layernorm and `combine=mean` against the
  equation written here in torch; the shapes and counts of `hcdsl stats`.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_same, perturb
import hcdsl

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = """
model m {{
  dim = 32
  vocab = 64
  norm = rmsnorm(eps=1e-06)
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect {connect}
}}
"""


def spec(connection: str, connect: str = "c") -> str:
    return textwrap.dedent(connection).lstrip("\n") + MODEL.format(connect=connect)


def tokens() -> torch.Tensor:
    return torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(1))


def copy_layers(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Every parameter that is not a connection's (embedding, layers, norms, head)."""
    theirs = dict(src.named_parameters())
    with torch.no_grad():
        for name, p in dst.named_parameters():
            if "coef" not in name and name in theirs:
                p.copy_(theirs[name])


MHC_LIKE = """
connection c {
  streams = 4
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    read = linear(act=sigmoid, scale=0.01, bias=0)
    write = linear(act=double_sigmoid, scale=0.01, bias=0)
    res = linear(scale=0.01, bias=0, constraint=sinkhorn(order=paper, iters=20))
  }
}
"""


def test_mhc_written_as_a_generator_is_the_mhc_preset() -> None:
    preset = hcdsl.compile(spec("", "mhc(n=4, paper, iters=20)"), seed=0).double()
    perturb(preset, 4, const=0.3)
    ours = hcdsl.compile(spec(MHC_LIKE), seed=0).double()
    copy_layers(preset, ours)
    n = 4
    with torch.no_grad():
        for k in range(1, 5):
            p, g = getattr(preset, f"L{k}_coef"), getattr(ours, f"L{k}_coef").outs
            g["read"].weight.copy_(p.phi_pre.t())
            g["write"].weight.copy_(p.phi_post.t())
            order = [t * n + s for s in range(n) for t in range(n)]  # RES[s, t] = H_res[t, s]
            g["res"].weight.copy_(p.phi_res.t()[order])
            g["res"].bias.copy_(p.b_res.t().reshape(-1))
            for role, suffix in (("read", "pre"), ("write", "post"), ("res", "res")):
                g[role].scale.copy_(getattr(p, f"alpha_{suffix}"))
            g["read"].bias.copy_(p.b_pre)
            g["write"].bias.copy_(p.b_post)
    t = tokens()
    diff = (preset(t) - ours(t)).abs().max().item()
    assert diff < 1e-10, diff


HC_LIKE = """
connection c {
  streams = 4
  generator {
    input = each
    norm = rmsnorm(weight=scale, eps=1e-06)
    read = linear(act=tanh, affine=after_act, scale=0.01, bias=0)
    write = linear(act=tanh, affine=after_act, scale=0.01, bias=1)
    res = linear(act=tanh, affine=after_act, scale=0.01, bias=0)
  }
}
"""


def test_dynamic_hc_written_as_a_generator_is_the_hyper_preset() -> None:
    preset = hcdsl.compile(spec("", "hyper(n=4, dynamic)"), seed=0).double()
    perturb(preset, 5, const=0.3)
    ours = hcdsl.compile(spec(HC_LIKE), seed=0).double()
    copy_layers(preset, ours)
    with torch.no_grad():
        for k in range(1, 5):
            p, g = getattr(preset, f"L{k}_coef"), getattr(ours, f"L{k}_coef")
            g.norm.weight.copy_(p.norm.weight)
            o = g.outs
            o["read"].weight.copy_(p.w_mix[:, :1].t())
            o["res"].weight.copy_(p.w_mix[:, 1:].t())
            o["write"].weight.copy_(p.w_gain.unsqueeze(0))
            o["read"].bias.copy_(p.static_mix[:, :1])
            o["res"].bias.copy_(p.static_mix[:, 1:])
            o["write"].bias.copy_(p.static_gain.unsqueeze(-1))
            o["read"].scale.copy_(p.s_mix)
            o["res"].scale.copy_(p.s_mix)
            o["write"].scale.copy_(p.s_gain)
    t = tokens()
    diff = (preset(t) - ours(t)).abs().max().item()
    assert diff < 1e-10, diff


CHANNEL = """
connection c {
  streams = 3
  generator {
    input = flat
    norm = layernorm(weight=scale, eps=1e-05)
    read = linear(act=softmax, per=channel, bias=0.5, combine=mean)
    write = lowrank(rank=4, mid=tanh, act=sigmoid, div=2)
    res = linear(act=softmax)
  }
  generator readout {
    input = each
    norm = none
    readout = linear(act=softmax)
  }
}
"""


def test_channel_read_softmax_layernorm_against_torch() -> None:
    m = hcdsl.compile(spec(CHANNEL), backend="reference", seed=0).double()
    perturb(m, 6, const=0.3)
    with torch.no_grad():
        vals = m.run(tokens())
        n, C = 3, 32
        g = m.mod("L2.coef")
        h = vals[m.ir.inputs("L2.coef")["x"]]
        z = F.layer_norm(h.flatten(-2), (n * C,), eps=1e-5) * g.norm.weight
        o = g.outs
        a = torch.softmax((z @ o["read"].weight.t() + o["read"].bias).unflatten(-1, (n, C)), -2)
        close(vals["L2.gen_read"],
              (a * h).sum(-2) / n)
        write = torch.sigmoid((torch.tanh(z @ o["write"].down.t()) @ o["write"].up.t()) / 2)
        res = torch.softmax((z @ o["res"].weight.t()).unflatten(-1, (n, n)), -1)
        mat = vals["L2.gen_coef"]
        close(mat[..., 0, 1:], write)
        close(mat[..., 1:, 1:], res)
        last = vals["L4.write"]
        r = m.mod("readout.gen").outs["readout"]
        w = torch.softmax(last @ r.weight.t(), dim=-2)  # (B, T, n, 1): softmax over streams
        close(vals["readout.gen"], (w * last).sum(-2))


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    assert (a - b).abs().max().item() < 1e-10


def test_fx_equals_reference_channel_read() -> None:
    fx_model = hcdsl.compile(spec(CHANNEL), seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(spec(CHANNEL), backend="reference", seed=0)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(), nonzero=True)


def test_stats_counts_generator_parameters() -> None:
    """`hcdsl stats` adds the nodes' counts from shapes (no torch): per layer, by hand,
    norm 3*32 + read (96*96 weights + 96 biases) + write lowrank 4*(96 + 3) + res 96*9; the
    readout 32; and the total is what the built module holds."""
    from hcdsl.counts import count_params

    model = hcdsl.compile(spec(CHANNEL), backend="reference", seed=0)
    per_layer = 96 + 96 * 96 + 96 + 4 * (96 + 3) + 96 * 9
    assert model.ir.payload("L1.coef").param_count() == per_layer
    assert model.ir.payload("readout.gen").param_count() == 32
    assert count_params(spec(CHANNEL)) == sum(p.numel() for p in model.parameters())


def test_torch_compile_fullgraph_on_generators() -> None:
    """One small torch.compile (dynamo, eager backend): a per-channel inline read (the
    generator's (x, M) tuple), a lowrank write and a readout generator in one graph."""
    from pathlib import Path

    m = hcdsl.compile(Path(__file__).resolve().parents[2] / "specs" / "families" /
                      "qwen4_gated_residual.hc", seed=0)
    perturb(m, 1, const=0.3)
    toks = torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(0))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(m)(toks)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained
    compiled = torch.compile(m, fullgraph=True, backend="eager")
    with torch.no_grad():
        assert (compiled(toks) - m(toks)).abs().max().item() <= 1e-5


CHANNEL_WRITE = """
connection c {
  streams = 2
  generator {
    input = flat
    norm = rmsnorm(weight=none, eps=1e-06)
    write = linear(act=double_sigmoid, per=channel, bias=0)
    res = linear(act=softmax, bias=0)
  }
}
"""


def test_channel_write_against_torch() -> None:
    """write = ...(per=channel): H'_t = w_t ⊙ o + Σ_s RES[s, t] H_s with w (n x C); the read
    is 1 per stream (not generated)."""
    m = hcdsl.compile(spec(CHANNEL_WRITE), backend="reference", seed=0).double()
    perturb(m, 7, const=0.3)
    with torch.no_grad():
        vals = m.run(tokens())
        n, C = 2, 32
        for k in (1, 2):
            g = m.mod(f"L{k}.coef")
            h = vals[m.ir.inputs(f"L{k}.coef")["x"]]
            x = h.flatten(-2)
            z = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
            o = g.outs
            w = 2 * torch.sigmoid(z @ o["write"].weight.t() + o["write"].bias).unflatten(-1, (n, C))
            res = torch.softmax((z @ o["res"].weight.t() + o["res"].bias).unflatten(-1, (n, n)), -1)
            close(vals[f"L{k}.gen_read"], h.sum(-2))
            out = vals[f"L{k}.attn" if k % 2 else f"L{k}.ffn"]
            new = w * out.unsqueeze(-2) + torch.einsum("...st,...sc->...tc", res, h)
            close(vals[f"L{k}.written"], new)


def test_fx_equals_reference_channel_write() -> None:
    fx_model = hcdsl.compile(spec(CHANNEL_WRITE), seed=0)
    perturb(fx_model, 2, const=0.3)
    ref = hcdsl.compile(spec(CHANNEL_WRITE), backend="reference", seed=0)
    ref.load_state_dict(fx_model.state_dict())
    assert_same(fx_model, ref, tokens(), nonzero=True)
    from hcdsl.counts import count_params

    assert count_params(spec(CHANNEL_WRITE)) == sum(p.numel() for p in ref.parameters())


AXES = """
connection c {
  streams = 3
  generator {
    input = flat
    norm = none
    read = linear(act=softmax, axis=channels, per=channel)
    res = linear(act=softmax, axis=cols)
  }
}
"""


def test_softmax_axes_against_torch() -> None:
    """axis=channels: each stream's read weights sum to 1 over its channels; axis=cols: each
    column of RES sums to 1 (and is the softmax over the column's logits)."""
    m = hcdsl.compile(spec(AXES), backend="reference", seed=0).double()
    perturb(m, 8, const=0.3)
    with torch.no_grad():
        vals = m.run(tokens())
        g = m.mod("L1.coef")
        h = vals[m.ir.inputs("L1.coef")["x"]]
        x = h.flatten(-2)
        a = torch.softmax((x @ g.outs["read"].weight.t()).unflatten(-1, (3, 32)), dim=-1)
        close(vals["L1.gen_read"], (a * h).sum(-2))
        res = torch.softmax((x @ g.outs["res"].weight.t()).unflatten(-1, (3, 3)), dim=-2)
        close(vals["L1.gen_coef"][..., 1:, 1:], res)
        assert (res.sum(-2) - 1).abs().max() < 1e-12


@pytest.mark.parametrize("connection", [MHC_LIKE, HC_LIKE, CHANNEL, CHANNEL_WRITE, AXES],
                         ids=["mhc", "hc", "channel", "channel_write", "axes"])
def test_round_trip(connection: str) -> None:
    from hcdsl.frontend.printer import format_model

    parsed = hcdsl.parse(spec(connection))
    printed = format_model(parsed)
    assert hcdsl.parse(printed).model_dump() == parsed.model_dump()
    assert format_model(hcdsl.parse(printed)) == printed
