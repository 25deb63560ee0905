"""The optimiser's compile options: recomputation of the connection in backward, and
inference freezing of trained static coefficients. Each: the same function, and the
structural change it promises."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hcdsl
from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from helpers import assert_one_graph
from helpers import attn_ffn, model_text

pytestmark = pytest.mark.usefixtures("one_thread")


def spec(connect: str, blocks: int = 2) -> str:
    return model_text(connect, dim=32, vocab=64, layers=attn_ffn(2, "mlp(hidden=64)"),
                      body=f"repeat {blocks} [attn, ffn]")


def loss_and_grads(model: torch.nn.Module, x: torch.Tensor):  # noqa: ANN201
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x)[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in model.named_parameters()}


def saved_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x)[:, :-1].flatten(0, 1), x[:, 1:].flatten()).backward()
    return total[0]


X = torch.randint(0, 64, (4, 32), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("connect", ["hyper(n=4, dynamic)", "mhc(n=2)", "frac(m=2, dynamic)",
                                     "mudd", "residual"])
def test_recompute_is_the_same_function_with_the_same_weights(connect: str) -> None:
    plain = hcdsl.compile(spec(connect), seed=0)
    again = hcdsl.compile(spec(connect), seed=0, recompute=True)
    assert plain.state_dict().keys() == again.state_dict().keys()
    la, ga = loss_and_grads(plain, X)
    lb, gb = loss_and_grads(again, X)
    assert abs(la - lb) <= 1e-6
    assert all((ga[k] - gb[k]).abs().max() <= 1e-6 for k in ga)


def test_recompute_keeps_less_for_backward() -> None:
    """MUDD's generator (norm, GELU MLP) keeps activations of its own: recomputed, they go."""
    from hcdsl.bench.measure import saved_tensor_bytes  # unique storages, no parameters

    plain = saved_tensor_bytes(hcdsl.compile(spec("mudd"), seed=0), X, X)
    again = saved_tensor_bytes(hcdsl.compile(spec("mudd"), seed=0, recompute=True), X, X)
    assert again < 0.95 * plain


@pytest.mark.parametrize("static", [False, True])
def test_mix_parts_is_the_mix_of_the_stack_and_keeps_only_the_parts(static: bool) -> None:
    from hcdsl.nn.ops import mix_parts, mix_streams

    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(2, 3, k, 5, dtype=torch.float64, generator=g).requires_grad_()
             for k in (1, 2, 1)]
    m = torch.randn(*(() if static else (2, 3)), 4, 3, dtype=torch.float64,
                    generator=g).requires_grad_()
    assert torch.autograd.gradcheck(mix_parts, (m, *parts))
    ref = mix_streams(torch.cat(parts, dim=-2), m)
    assert torch.equal(mix_parts(m, *parts), ref)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        mix_parts(m, *parts)
    ours = {t.untyped_storage().data_ptr() for t in (m, *parts)}
    assert saved and {t.untyped_storage().data_ptr() for t in saved} <= ours


def test_mix_parts_under_bf16_autocast_matches_the_mix_of_the_stack() -> None:
    """Under autocast the forward runs in bf16; the backward computes in the same dtype and
    returns each gradient in its input's dtype, as autograd through the plain form does."""
    from hcdsl.nn.ops import mix_parts, mix_streams

    g = torch.Generator().manual_seed(1)
    parts = [torch.randn(2, 3, 1, 8, generator=g) for _ in range(3)]
    m = torch.randn(2, 3, 3, 4, generator=g)

    def grads(fn):  # noqa: ANN001, ANN202
        xs = [t.clone().requires_grad_() for t in (m, *parts)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = fn(xs[0], *xs[1:])
        (y.float() * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        return y, [x.grad for x in xs]

    y1, g1 = grads(mix_parts)
    y2, g2 = grads(lambda mm, *ps: mix_streams(torch.cat(ps, dim=-2), mm))
    assert y1.dtype == y2.dtype == torch.bfloat16
    torch.testing.assert_close(y1, y2)
    for a, b in zip(g1, g2):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-2)


def test_a_history_read_by_mixes_is_not_concatenated() -> None:
    """MUDD's layers read every earlier output: the fx module mixes the parts (mix_parts),
    and no (B, T, S, C) concatenation per layer is built or kept (quadratic in depth)."""
    model = hcdsl.compile(spec("mudd", blocks=4), seed=0)
    code = model.code
    assert "mix_parts(" in code and "torch.cat" not in code
    ref = hcdsl.compile(spec("mudd", blocks=4), seed=0, backend="reference")
    la, ga = loss_and_grads(model, X)
    lb, gb = loss_and_grads(ref, X)
    assert abs(la - lb) <= 1e-5 and all((ga[k] - gb[k]).abs().max() <= 1e-5 for k in ga)


@pytest.mark.parametrize("connect", ["residual", "hyper(n=4, dynamic)", "mhc(n=4)",
                                     "frac(m=4, dynamic)"])
def test_recompute_leaves_runs_that_keep_only_their_inputs_alone(connect: str) -> None:
    """Residual adds save nothing, and HC's, FC's and mHC's generators keep only the state
    (their norm comes after the projection): recomputing them would only keep their inputs
    alive longer, so no region is made and nothing changes."""
    model = hcdsl.compile(spec(connect), seed=0, recompute=True)
    assert "conn_" not in model.code


def test_recompute_compiles_to_one_graph() -> None:
    model = hcdsl.compile(spec("mudd", blocks=1), seed=0, recompute=True)
    assert "conn_" in model.code
    assert_one_graph(model, X[:, :8])


def trained(text: str) -> dict[str, torch.Tensor]:
    model = hcdsl.compile(text, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model.state_dict()


@pytest.mark.parametrize("connect", ["hyper(n=2, static)", "frac(m=2, static)",
                                     "denseformer(k=2)"])
def test_freezing_is_the_trained_function(connect: str) -> None:
    state = trained(spec(connect))
    plain = hcdsl.compile(spec(connect), seed=0, state_dict=state)
    frozen = hcdsl.compile(spec(connect), seed=0, state_dict=state, freeze=True)
    with torch.no_grad():
        assert (plain(X) - frozen(X)).abs().max() <= 1e-6
    ir = frozen.hc_ir
    assert not [v for v in ir.g.nodes if isinstance(ir.payload(v), (n.LearnedCoef, n.DenseCoef))]
    assert not any(p.requires_grad for p in frozen.parameters())


def test_frozen_constants_fold() -> None:
    """HC with n = 1 frozen at its init is Pre-Norm: the folded IR has Pre-Norm's shape."""
    frozen = hcdsl.compile(spec("hyper(n=1, static)"), seed=0, freeze=True).hc_ir
    pre = hcdsl.lower(spec("residual"))
    kinds = lambda ir: sorted(ir.payload(v).op for v in ir.g.nodes)  # noqa: E731
    assert kinds(frozen) == kinds(pre)


def test_weights_that_do_not_fit_are_a_clean_error() -> None:
    state = trained(spec("hyper(n=2, static)"))
    with pytest.raises(CompileError, match=r"do not fit this spec: wrong shape L1_coef"):
        hcdsl.compile(spec("hyper(n=4, static)"), state_dict=state)
    with pytest.raises(CompileError, match="do not fit this spec: missing L1_coef"):
        hcdsl.compile(spec("hyper(n=2, dynamic)"), state_dict=state)


def test_a_checkpoint_loads_whatever_passes_ran() -> None:
    """The modules come from the IR before the passes: a state_dict saved with the optimiser
    loads strictly without it, dead layers included."""
    text = spec("hyper(n=1, fixed) { all = [[0, 1], [1, 1]] layer 2 = [[0, 0], [1, 1]] }")
    optimised = hcdsl.compile(text, seed=0)
    assert "L2.ffn" not in optimised.hc_ir  # dead: not computed ...
    assert any(k.startswith("L2_ffn.") for k in optimised.state_dict())  # ... but kept
    raw = hcdsl.compile(text, passes=None, state_dict=optimised.state_dict())
    with torch.no_grad():
        assert (raw(X) - optimised(X)).abs().max() <= 1e-6


@pytest.mark.parametrize("connect", ["parallel(shared)", "parallel(shared, residual=each)"])
def test_fused_parallel_blocks_take_the_mask_and_keep_every_hidden_state(connect: str) -> None:
    """A fused parallel block (one input matmul for attention and MLP) still passes the mask
    to attention and keeps each member layer's input; checked against the reference
    interpreter of the IR before any pass."""
    fused = hcdsl.compile(spec(connect), seed=0, recompute=True)
    assert any(isinstance(fused.hc_ir.payload(v), n.ParallelLayers) for v in fused.hc_ir.g.nodes)
    plain = hcdsl.compile(spec(connect), seed=0, backend="reference", passes=None)
    attn = torch.rand(4, 32, 32, generator=torch.Generator().manual_seed(1)) > 0.3
    a = fused(X, mask=attn, return_hidden=True, targets=X)
    b = plain(X, mask=attn, return_hidden=True, targets=X)
    assert len(a.hidden) == len(b.hidden) == 4
    assert (a.logits - b.logits).abs().max() <= 1e-5 and (a.loss - b.loss).abs() <= 1e-6
    assert all((u - v).abs().max() <= 1e-5 for u, v in zip(a.hidden, b.hidden))
    assert (fused(X, mask=attn) - fused(X)).abs().max() > 1e-3  # the mask did reach attention
    a.loss.backward()  # the fused layers' own weights train (they are not dead modules)
    assert all(p.requires_grad and p.grad is not None and p.grad.ne(0).any()
               for name, p in fused.named_parameters() if "_attn" in name or "_ffn" in name)


@pytest.mark.parametrize("norm", ["layernorm", "layernorm-plain", "rmsnorm", "rmsnorm-plain"])
def test_normed_linear_is_the_linear_map_of_the_norm(norm: str) -> None:
    """hcdsl.nn.ops.normed_linear applies the norm's statistics after the projection; it
    must equal F.linear(norm(x), W), values and gradients (float64)."""
    from hcdsl.nn.layers import make_norm
    from hcdsl.nn.ops import normed_linear

    g = torch.Generator().manual_seed(0)
    module = make_norm(norm.split("-")[0], 16, "plain" not in norm, 1e-5).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    x = (torch.randn(3, 5, 4, 16, generator=g, dtype=torch.float64) + 0.3).requires_grad_()
    w = torch.randn(6, 16, generator=g, dtype=torch.float64, requires_grad=True)
    want = F.linear(module(x), w)
    assert (normed_linear(x, module, w) - want).abs().max() <= 1e-12
    assert torch.autograd.gradcheck(lambda a, b: normed_linear(a, module, b), (x, w))


def test_dynamic_hc_keeps_only_the_state_and_the_layer_output() -> None:
    """Per layer, dynamic HC needs for backward only the state H (n streams) and the layer's
    output (the write's coefficient gradient); not a normalised copy of H (normed_linear),
    nor the whole read mix through the layer's input (the Merge copies its streams out)."""
    n, w, layers = 4, 32, 4
    x = torch.randint(0, 64, (4, 64), generator=torch.Generator().manual_seed(0))
    from hcdsl.bench.measure import saved_tensor_bytes  # unique storages, no parameters

    extra = (saved_tensor_bytes(hcdsl.compile(spec(f"hyper(n={n}, dynamic)"), seed=0), x, x)
             - saved_tensor_bytes(hcdsl.compile(spec("residual"), seed=0), x, x))
    per_token = extra / (x.numel() * 4)  # floats kept per token beyond Pre-Norm's
    # the state and the layer output per layer, the initial copy of the embedding, and the
    # per-token coefficients ((n + 1) x (n + 2) numbers a few times per layer)
    bound = layers * (n + 1) * w + n * w + layers * 4 * (n + 1) * (n + 2)
    assert per_token <= bound, f"{per_token:.0f} floats per token kept, at most {bound}"
