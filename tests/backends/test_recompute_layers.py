"""Recomputation across layers (`hcdsl.compile(spec, recompute="layers")`,
backends/segments.py): the same function, the layers' products not recomputed, less kept
for backward, segments where the memory model puts them."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode

import hcdsl
from hcdsl import memory
from hcdsl.backends import segments
from hcdsl.errors import CompileError
from hcdsl.ir.segments import cuts, segment_model
from hcdsl.ir.segments import segments as runs_of

SPECS = Path(__file__).resolve().parents[2] / "specs"
FAMILIES = {  # every family with a state between layers; Pre-Norm for reference
    "DHC": SPECS / "tiny_dhc4.hc",
    "SHC": SPECS / "tiny_shc4.hc",
    "mHC": SPECS / "families/mhc_tiny_paper4.hc",
    "MUDD": SPECS / "families/mudd_tiny.hc",
    "DenseFormer": SPECS / "families/denseformer_4x5_tiny.hc",
    "DFC": SPECS / "families/frac_tiny_dfc4.hc",
    "AttnRes": SPECS / "families/attnres_tiny.hc",
    "Pre-Norm": SPECS / "pre_norm.hc",
}
# the benchmark's shape, small: 4 x [attention, MLP], d = 64
SMALL = """model m {{
  dim = 64
  vocab = 128
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 4 [attn, ffn]
  connect {connect}
}}
"""


def pair(spec: object, every: int | None = 2, **kw: object) -> tuple[torch.nn.Module, ...]:
    plain = hcdsl.compile(spec, seed=3, **kw)
    layered = hcdsl.compile(spec, seed=3, recompute="layers", recompute_every=every, **kw)
    return plain, layered


def grads_of(model: torch.nn.Module, tokens: torch.Tensor, probe: torch.Tensor, **kw: object):
    out = model(tokens, **kw)
    logits = out if isinstance(out, torch.Tensor) else out.logits
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    params = dict(model.named_parameters())
    g = torch.autograd.grad((logits * probe).sum(), [params[k] for k in names],
                            allow_unused=True)
    return logits.detach(), dict(zip(names, g))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_logits_identical_and_gradients_equal(family: str) -> None:
    """float64: the logits are bit for bit the plain model's, every gradient within 1e-6
    (the rebuilt states are the same numbers: in practice the gradients are equal too)."""
    plain, layered = pair(FAMILIES[family], dtype=torch.float64)
    assert any(k.startswith("seg_") for k, _ in layered.named_children()), "no segment"
    assert plain.state_dict().keys() == layered.state_dict().keys()
    tokens = torch.randint(0, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    probe = torch.randn(plain(tokens).shape, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))
    out_p, g_p = grads_of(plain, tokens, probe)
    out_l, g_l = grads_of(layered, tokens, probe)
    assert torch.equal(out_p, out_l)
    assert g_p.keys() == g_l.keys()
    for name in g_p:
        if g_p[name] is None:
            assert g_l[name] is None, name
            continue
        assert (g_p[name] - g_l[name]).abs().max().item() <= 1e-6, name


def test_gradient_is_the_finite_difference() -> None:
    """float64 finite differences, as torch.autograd.gradcheck takes them, along random
    directions in the space of every parameter of a DHC model cut into segments of two
    layers: the rebuilt states give the true gradient, not merely the plain model's.
    (gradcheck itself runs backward twice over one forward to test reentrancy; a selectively
    checkpointed region allows one backward per forward, as training does.)"""
    text = SMALL.format(connect="hyper(n=2, dynamic)").replace("repeat 4", "repeat 2")
    model = hcdsl.compile(text, seed=0, dtype=torch.float64, recompute="layers",
                          recompute_every=2)
    tokens = torch.randint(0, 128, (1, 6), generator=torch.Generator().manual_seed(0))
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(values: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.func.functional_call(model, values, (tokens,)).square().mean()

    live = {k: p.clone().requires_grad_() for k, p in params.items()}
    grad = torch.autograd.grad(loss(live), list(live.values()))
    g = torch.Generator().manual_seed(1)
    eps = 1e-6
    for _ in range(3):
        d = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in params.items()}
        with torch.no_grad():
            up = loss({k: p + eps * d[k] for k, p in params.items()})
            down = loss({k: p - eps * d[k] for k, p in params.items()})
        numeric = ((up - down) / (2 * eps)).item()
        analytic = sum((gk * d[k]).sum() for gk, k in zip(grad, params)).item()
        assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(numeric)), (numeric, analytic)


class CountProducts(TorchDispatchMode):
    """Counts the matrix products and attention ops that run."""

    OPS = ("aten.mm.", "aten.addmm.", "aten._scaled_dot_product")

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if str(func).startswith(self.OPS):
            self.count += 1
        return func(*args, **(kwargs or {}))


def backward_products(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    loss = model(tokens).square().mean()
    with CountProducts() as mode:
        loss.backward()
    model.zero_grad(set_to_none=True)
    return mode.count


@pytest.mark.parametrize("connect", ["hyper(n=4, dynamic)", "mhc(n=4)", "mudd"])
def test_layers_not_recomputed(connect: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The backward pass runs exactly as many matrix products and attention ops with the
    option as without: the layers (and the coefficients' projections) are not recomputed,
    only the connection's cheap ops are. With the policy replaced by plain checkpointing
    (everything recomputed) the count goes up: the counter sees recomputation."""
    plain, layered = pair(SMALL.format(connect=connect))
    tokens = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))
    base = backward_products(plain, tokens)
    assert backward_products(layered, tokens) == base
    monkeypatch.setattr(segments, "policy", lambda ctx, op, *a, **k:
                        segments.CheckpointPolicy.PREFER_RECOMPUTE)
    assert backward_products(layered, tokens) > base


def kept_bytes(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """Bytes allocated by forward + loss and still held when backward starts (the
    allocator's events: exact, deterministic). saved_tensors_hooks cannot count this:
    checkpointing installs its own hooks, which hide the saved tensors from an outer one."""
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss = F.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten())
    held = sum(e.nbytes() for e in prof.profiler.kineto_results.events()
               if e.name() == "[memory]")
    loss.backward()
    model.zero_grad(set_to_none=True)
    return held


@pytest.mark.parametrize("connect", ["hyper(n=4, dynamic)", "mhc(n=4)", "mudd"])
def test_less_kept_for_backward(connect: str) -> None:
    """The option keeps less for backward than the plain model. For the n-stream families
    the saving exceeds what it saves on Pre-Norm (the layers' own pointwise work, rebuilt
    too) by more than the states no longer kept: without it each of the 8 layers keeps a
    (B, T, 4, d) state; with segments of 2 layers at most the 4 boundaries do. (Seen to
    fail with the stream mixes' products kept, the state-sized results they are.)"""
    tokens = torch.randint(0, 128, (4, 64), generator=torch.Generator().manual_seed(0))
    plain, layered = pair(SMALL.format(connect=connect))
    saved = kept_bytes(plain, tokens) - kept_bytes(layered, tokens)
    assert saved > 0
    if connect != "mudd":
        pre_plain, pre_layered = pair(SMALL.format(connect="residual"))
        pre_saved = kept_bytes(pre_plain, tokens) - kept_bytes(pre_layered, tokens)
        states = 4 * 64 * 4 * tokens.numel() * (8 - 4)  # fp32 (B, T, 4, 64), 4 layers
        assert saved > pre_saved + states


def test_segment_boundaries_keep_the_state() -> None:
    """The cut between two HC layers is after the write (the n-stream state crosses: 4 C),
    not after the layer (its output and the read mix, 6 C, would cross)."""
    ir = hcdsl.lower(FAMILIES["DHC"])
    order = ir.order()
    c = cuts(ir, order)
    assert [order[i] for i in c[1:-1]] == [f"L{i}.coef" for i in range(2, 7)]
    layers, boundary, per_layer = segment_model(ir)
    assert layers == 6 and boundary == 4 * 64
    assert [len([v for v in run if v.endswith(("attn", "ffn"))])
            for run in runs_of(ir, order, 4)] == [4, 2]


def test_memory_model_choice() -> None:
    """k = sqrt(N b / r), between 2 and N; the given value wins; bad values are refused."""
    ir = hcdsl.lower(FAMILIES["DHC"])
    layers, boundary, per_layer = segment_model(ir)
    k = memory.layers_per_segment(ir)
    assert k == max(2, min(layers, round((layers * boundary / per_layer) ** 0.5)))
    assert memory.layers_per_segment(ir, "layers", 5) == 5
    assert memory.layers_per_segment(ir, True, None) == 0
    assert memory.layers_per_segment(ir, "auto") == k  # HC's n streams: it pays
    pre = hcdsl.lower(FAMILIES["Pre-Norm"])  # one hidden vector between layers: it does not
    assert memory.layers_per_segment(pre, "auto") == 0
    assert not any(name.startswith("seg_") for name, _ in
                   hcdsl.compile(FAMILIES["Pre-Norm"], recompute="auto").named_children())
    for bad in ("yes", 2, None):
        with pytest.raises(CompileError, match="recompute="):
            hcdsl.compile(FAMILIES["DHC"], recompute=bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(CompileError, match="recompute_every="):
            hcdsl.compile(FAMILIES["DHC"], recompute="layers", recompute_every=bad)


def test_mask_hidden_states_and_eval() -> None:
    """The mask reaches the layers inside a segment, the hidden states come out of it, and
    without gradients (inference) the segments run plainly: all as without the option."""
    plain, layered = pair(FAMILIES["DHC"], dtype=torch.float64)
    tokens = torch.randint(0, 200, (2, 10), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[0, 7:] = False
    a = plain(tokens, mask=mask, return_hidden=True)
    b = layered(tokens, mask=mask, return_hidden=True)
    assert torch.equal(a.logits, b.logits)
    assert len(a.hidden) == len(b.hidden) == 6
    assert all(torch.equal(x, y) for x, y in zip(a.hidden, b.hidden))
    with torch.no_grad():
        assert torch.equal(plain.eval()(tokens), layered.eval()(tokens))


def test_dropout_inside_segments() -> None:
    """Dropout in a segment draws the same mask when recomputed (checkpointing restores
    the random state): gradients equal the plain model's under the same seed."""
    text = SMALL.format(connect="hyper(n=2, dynamic)").replace(
        "vocab = 128", "vocab = 128\n  dropout = 0.2")
    plain, layered = pair(text, dtype=torch.float64)
    plain.train()
    layered.train()
    tokens = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    probe = torch.randn(2, 8, 128, dtype=torch.float64)
    torch.manual_seed(5)
    out_p, g_p = grads_of(plain, tokens, probe)
    torch.manual_seed(5)
    out_l, g_l = grads_of(layered, tokens, probe)
    assert torch.equal(out_p, out_l)
    assert all((g_p[k] - g_l[k]).abs().max() <= 1e-6 for k in g_p if g_p[k] is not None)


def test_compiled_equals_eager() -> None:
    """torch.compile traces the segments (selective checkpointing is compile's own
    mechanism): logits and gradients equal the plain eager model's."""
    plain, layered = pair(SMALL.format(connect="hyper(n=2, dynamic)").replace(
        "repeat 4", "repeat 1").replace("64", "16"))
    tokens = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    probe = torch.randn(2, 8, 128, generator=torch.Generator().manual_seed(1))
    torch._dynamo.reset()
    compiled = torch.compile(layered, fullgraph=True)
    out_p, g_p = grads_of(plain, tokens, probe)
    out_c, g_c = grads_of(compiled, tokens, probe)
    torch._dynamo.reset()
    assert (out_p - out_c).abs().max().item() <= 1e-5
    for k in g_p:
        if g_p[k] is not None:
            scale = max(1.0, g_p[k].abs().max().item())
            assert (g_p[k] - g_c["_orig_mod." + k]).abs().max() <= 1e-4 * scale, k
