"""The dynamic presets are generators: `hyper(..., dynamic)` and `mhc(...)` desugar to the
generator records of a `generator { ... }` block (hcdsl/schemes/hyper.py, mhc.py), lowered by
the one generator module (hcdsl/nn/generator.py) with the presets' parameter names.

Checked here against the modules the presets were built from before (dynamic HC: the plain-torch
module of its equations with the preset's names, tests/paper_hc.py's DynamicRef, which replaced
hcdsl/nn/coef.py's dynamic HyperCoef; mHC: hcdsl/nn/manifold.py's ManifoldCoef), loaded strictly with the generator's own state_dict (so an old checkpoint
loads unchanged): the same step matrices and the same logits; against the papers' values at
init (HC Eq. 14, mHC's identity init) through the trainer's probes; and the new primitives
(`scale=read`, `bias=[...]`, `norm weight=affine`) against their meaning.
"""

from __future__ import annotations

import textwrap

import pytest
import torch

import hcdsl
from hcdsl.counts import count_params
from hcdsl.ir import nodes as n
from hcdsl.nn.generator import GeneratorCoef
from hcdsl.nn.manifold import ManifoldCoef
from helpers import perturb
from paper_hc import DynamicRef

pytestmark = pytest.mark.usefixtures("one_thread")

MODEL = """
model m {{
  dim = 32
  vocab = 64
  norm = {norm}
  layer attn = attention(heads=4)
  layer ffn = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect {connect}
}}
"""
HYPER = [
    ("layernorm(affine=false)", "hyper(n=4, dynamic)"),
    ("layernorm(affine=true)", "hyper(n=2, dynamic, tanh=false, scale=0.1)"),
    ("rmsnorm(affine=true)", "hyper(n=3, dynamic)"),
    ("rmsnorm(affine=true)", "hyper(n=1, dynamic)"),
    ("rmsnorm(affine=true)", "hyper(n=2, dynamic) {\n  odd = [[0, 1, 0], [1, 1, 1], [1, 1, 1]]"
                             "\n  even = [[0, 0, 1], [0, 1, 0], [1, 0, 1]]\n}"),
]
MHC = [("mhc(n=4)", 4, "paper"), ("mhc(n=3, identity, iters=5, readout=mean)", 3, "identity"),
       ("mhc(n=1)", 1, "paper"), ("mhc(n=2, alpha=0.2, iters=7)", 2, "paper")]


def text(norm: str, connect: str) -> str:
    return MODEL.format(norm=norm, connect=connect)


def tokens() -> torch.Tensor:
    return torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(3))


def old_hyper(model: torch.nn.Module, k: int) -> DynamicRef:
    """What `hyper(dynamic)` was built from before (HC Eqs. 10-13), for layer k."""
    node = model.hc_ir.payload(f"L{k}.coef")
    rec = node.spec
    nm = rec.norm
    affine = nm.weight != "none"
    tanh = rec.output("read").act == "tanh"  # load_state_dict fills the parameters
    return DynamicRef(node.n, 1, node.width, tanh, nm.kind, affine, nm.eps)


def old_mhc(model: torch.nn.Module, k: int, init: str) -> ManifoldCoef:
    node = model.hc_ir.payload(f"L{k}.coef")
    res = node.spec.output("res")
    return ManifoldCoef(node.n, node.width, res.constraint.iters, init, res.scale)


def swap_and_compare(model: torch.nn.Module, old: dict[int, torch.nn.Module]) -> float:
    """Load every old module strictly with the generator's state_dict, compare the step
    matrices on the state each layer saw, then put the old modules in the model: the
    largest logit difference."""
    t = tokens()
    states: dict[int, torch.Tensor] = {}
    hooks = [getattr(model, f"L{k}_coef").register_forward_pre_hook(
        lambda _m, args, k=k: states.__setitem__(k, args[0])) for k in old]
    with torch.no_grad():
        want = model(t)
        for h in hooks:
            h.remove()
        for k, mod in old.items():
            new = getattr(model, f"L{k}_coef")
            assert isinstance(new, GeneratorCoef)
            mod.to(torch.float64)
            mod.load_state_dict(new.state_dict(), strict=True)  # the same keys and shapes
            assert (mod(states[k]) - new(states[k])).abs().max().item() < 1e-12
            setattr(model, f"L{k}_coef", mod)
        got = model(t)
    return (want - got).abs().max().item()


@pytest.mark.parametrize("norm,connect", HYPER, ids=[c for _, c in HYPER])
def test_dynamic_hc_is_the_module_it_was(norm: str, connect: str) -> None:
    model = hcdsl.compile(text(norm, connect), seed=0).double()
    assert all(isinstance(model.hc_ir.payload(f"L{k}.coef"), n.GeneratorCoef)
               for k in range(1, 5))
    perturb(model, 5, const=0.3)
    assert swap_and_compare(model, {k: old_hyper(model, k) for k in range(1, 5)}) < 1e-10


@pytest.mark.parametrize("connect,streams,init", MHC, ids=[c for c, _, _ in MHC])
def test_mhc_is_the_module_it_was(connect: str, streams: int, init: str) -> None:
    model = hcdsl.compile(text("rmsnorm(eps=1e-06)", connect), seed=0).double()
    perturb(model, 4, const=0.3)
    assert swap_and_compare(model, {k: old_mhc(model, k, init) for k in range(1, 5)}) < 1e-10


def test_a_seed_gives_the_old_modules_weights() -> None:
    """The generator draws its random projections as ManifoldCoef did (same shapes, order
    and std), so a seed-initialised preset is the model it was, weights included."""
    model = hcdsl.compile(text("rmsnorm(eps=1e-06)", "mhc(n=4)"), seed=0)
    coef = model.L1_coef
    torch.manual_seed(123)
    a = ManifoldCoef(4, 32)
    torch.manual_seed(123)
    b = GeneratorCoef(coef.rec, 4, 32, "step", "mhc")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_fx_equals_reference_for_the_presets() -> None:
    for norm, connect in (HYPER[0], ("rmsnorm(eps=1e-06)", "mhc(n=4)")):
        fx = hcdsl.compile(text(norm, connect), seed=0).double()
        perturb(fx, 2, const=0.3)
        ref = hcdsl.compile(text(norm, connect), backend="reference", seed=0).double()
        ref.load_state_dict(fx.state_dict())
        with torch.no_grad():
            assert (fx(tokens()) - ref(tokens())).abs().max().item() < 1e-10


def test_shared_scale_is_one_parameter() -> None:
    """`res = ...(scale=read)`: HC's one s_α for A_m and A_r (Eqs. 12-13). The parameter
    count is the old module's (no extra scale), and s_α's gradient sums both uses."""
    spec = text("layernorm(affine=false)", "hyper(n=4, dynamic)")
    model = hcdsl.compile(spec, seed=0).double()
    per_layer = 4 + 4 * 5 + 32 + 32 * 5 + 2  # B, [A_m | A_r], W_β, [W_m | W_r], s_β, s_α
    assert model.hc_ir.payload("L1.coef").param_count() == per_layer
    assert count_params(spec) == sum(p.numel() for p in model.parameters())
    coef = model.L1_coef
    perturb(model, 1, const=0.3)
    h = torch.randn(2, 3, 4, 32, dtype=torch.float64)
    probe = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    (coef(h) * probe).sum().backward()
    got = coef.s_mix.grad.clone()
    # by hand: d/ds_α of Σ probe ⊙ M, with M's read and res parts s_α tanh(H̄ W) + static
    hbar = coef.norm(h)
    with torch.no_grad():
        t = torch.tanh(hbar @ coef.w_mix)  # (2, 3, 4, 5): [read | res] per stream
    want = (probe[..., 1:, :] * t).sum()
    assert abs(got.item() - want.item()) < 1e-10


def test_norm_with_a_bias_is_layernorm_affine() -> None:
    """hyper(dynamic) over a LayerNorm with affine=true keeps its weight and bias (norm
    weight=affine); the count is the old module's."""
    spec = text("layernorm(affine=true)", "hyper(n=2, dynamic)")
    model = hcdsl.compile(spec, seed=0)
    assert {"L1_coef.norm.weight", "L1_coef.norm.bias"} <= set(model.state_dict())
    old = old_hyper(model, 1)
    assert model.hc_ir.payload("L1.coef").param_count() == \
        sum(p.numel() for p in old.parameters())


def test_generator_text_of_the_presets() -> None:
    """What the presets desugar to, as `hcdsl show --ir` prints it (docs/families/hyper.md,
    mhc.md show the same): HC's static parts as per-stream biases (Eq. 14 for layer 2:
    A_m = e_1), s_α shared; mHC's φ std 1/sqrt(nC), Sinkhorn in the paper's order."""
    from hcdsl.lang.generator import generator_lines

    hc = hcdsl.compile(text("layernorm(affine=false)", "hyper(n=2, dynamic)"), seed=0)
    assert generator_lines(hc.hc_ir.payload("L2.coef").spec) == [
        "generator {",
        "  input = each",
        "  norm = layernorm(weight=none, eps=1e-05)",
        "  read = linear(std=0, act=tanh, scale=0.01, bias=[0, 1], affine=after_act)",
        "  write = linear(std=0, act=tanh, scale=0.01, bias=1, affine=after_act)",
        "  res = linear(std=0, act=tanh, scale=read, bias=[1, 0, 0, 1], affine=after_act)",
        "}"]
    mhc = hcdsl.compile(text("rmsnorm(eps=1e-06)", "mhc(n=2)"), seed=0)
    assert generator_lines(mhc.hc_ir.payload("L1.coef").spec) == [
        "generator {",
        "  input = flat",
        "  norm = rmsnorm(weight=none, eps=1e-06)",
        "  read = linear(std=0.125, act=sigmoid, scale=0.01, bias=0)",
        "  write = linear(std=0.125, act=double_sigmoid, scale=0.01, bias=0)",
        "  res = linear(std=0.125, scale=0.01, bias=0, constraint=sinkhorn(order=paper, "
        "iters=20))",
        "}"]


CONNECTION = """
connection c {{
  streams = 2
  generator {{
    input = each
    norm = layernorm(weight=none, eps=1e-05)
    read = linear(std=0, act=tanh, scale=0.01, bias=[{read}], affine=after_act)
    write = linear(std=0, act=tanh, scale=0.01, bias=1, affine=after_act)
    res = linear(std=0, act=tanh, scale=read, bias=[1, 0, 0, 1], affine=after_act)
  }}
}}
"""


def test_the_desugared_text_written_by_hand_is_the_preset() -> None:
    """The generator text of hyper(n=2, dynamic) written as a user connection (layer 1's
    A_m; every layer gets it, so compare with a preset whose literal gives every layer
    A_m = e_0): the same parameters, counts and logits once the weights are copied by name."""
    literal = "hyper(n=2, dynamic) {\n  all = [[0, 1, 1], [1, 1, 0], [0, 0, 1]]\n}"
    preset = hcdsl.compile(text("layernorm(affine=false)", literal), seed=0).double()
    perturb(preset, 3, const=0.3)
    user_spec = textwrap.dedent(CONNECTION.format(read="1, 0")) + \
        text("layernorm(affine=false)", "c")
    user = hcdsl.compile(user_spec, seed=0).double()
    assert count_params(user_spec) == sum(p.numel() for p in preset.parameters())
    with torch.no_grad():
        theirs = dict(preset.named_parameters())
        for name, p in user.named_parameters():
            if "coef" not in name:
                p.copy_(theirs[name])
        for k in range(1, 5):
            pc, uc = getattr(preset, f"L{k}_coef"), getattr(user, f"L{k}_coef").outs
            uc["read"].weight.copy_(pc.w_mix[:, :1].t())
            uc["res"].weight.copy_(pc.w_mix[:, 1:].t())
            uc["write"].weight.copy_(pc.w_gain.unsqueeze(0))
            uc["read"].bias.copy_(pc.static_mix[:, :1])
            uc["res"].bias.copy_(pc.static_mix[:, 1:])
            uc["write"].bias.copy_(pc.static_gain.unsqueeze(-1))
            uc["read"].scale.copy_(pc.s_mix)
            uc["write"].scale.copy_(pc.s_gain)
        assert not hasattr(getattr(user, "L1_coef").outs["res"], "scale")  # read's is used
        assert (preset(tokens()) - user(tokens())).abs().max().item() < 1e-10


@pytest.mark.parametrize("bad,message", [
    ("read = linear(bias=[1, 0, 0])", "gives 3 initial values, but the output has 2 biases"),
    ("res = linear(scale=write)", "shares the learned scalar of `write`, which is not generated"),
    ("read = linear(scale=read)", "names this output itself"),
    ("read = linear()\n    res = linear(scale=read)", "`read`, which has no scale"),
])
def test_new_primitive_mistakes_are_located(bad: str, message: str) -> None:
    spec = (f"connection c {{\n  streams = 2\n  generator {{\n    input = each\n    {bad}\n  }}"
            f"\n}}\n" + text("rmsnorm(affine=true)", "c"))
    with pytest.raises(hcdsl.errors.HcError) as err:
        hcdsl.parse(spec)
    rendered = str(err.value)
    assert message in rendered and "hint:" in rendered and ":5:" in rendered, rendered


def test_probes_record_generator_weights_at_init() -> None:
    """The trainer's probes read every generator: at init dynamic HC is Eq. 14 (read e_k,
    mean 1/n over the streams; write 1; RES = I) and mHC's identity init reads 1/n, writes 1
    and mixes uniformly (doubly stochastic: deviation 0)."""
    from hcdsl.train.probes import probe

    t = tokens()
    hc = text("layernorm(affine=false)", "hyper(n=4, dynamic)")
    out = probe(hc, hcdsl.compile(hc, seed=0).state_dict(), t, matrices=False)
    assert out["mhc"] is None and len(out["generators"]) == 4
    for g in out["generators"]:
        assert abs(g["read_mean"] - 0.25) < 1e-7 and abs(g["write_mean"] - 1) < 1e-7
        assert abs(g["res_diag_mean"] - 1) < 1e-7 and abs(g["res_off_mean"]) < 1e-7
    mhc = text("rmsnorm(eps=1e-06)", "mhc(n=4, identity)")
    out = probe(mhc, hcdsl.compile(mhc, seed=0).state_dict(), t, matrices=False)
    assert len(out["mhc"]["row_dev"]) == 4 and out["mhc"]["max_row_dev"] < 1e-6
    for g in out["generators"]:
        assert abs(g["read_mean"] - 0.25) < 1e-6 and abs(g["write_mean"] - 1) < 1e-6
        assert abs(g["res_diag_mean"] - 0.25) < 1e-6 and g["res_col_dev"] < 1e-6


def test_optimiser_groups_follow_the_generator() -> None:
    """HC §4: static parts (HC's B, A, s; mHC's α, b; a user generator's scales and biases)
    are not decayed, dynamic projections are."""
    from hcdsl.nn.groups import DYNAMIC, STATIC, classify

    hc = classify(hcdsl.compile(text("layernorm(affine=false)", "hyper(n=2, dynamic)")))
    assert hc["L1_coef.static_mix"] == hc["L1_coef.s_mix"] == STATIC
    assert hc["L1_coef.w_mix"] == hc["L1_coef.w_gain"] == DYNAMIC
    user = classify(hcdsl.compile(textwrap.dedent(CONNECTION.format(read="1, 0"))
                                  + text("layernorm(affine=false)", "c")))
    assert user["L1_coef.outs.read.scale"] == user["L1_coef.outs.res.bias"] == STATIC
    assert user["L1_coef.outs.res.weight"] == DYNAMIC
