"""Helpers shared by the tests: the one spec-text builder (model_text), and the numeric and
training tests' helpers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import fx

from hcdsl.backends.reference import ReferenceModel
from hcdsl.nn.modules import attr_name

ATTN_FFN = (("attn", "attention(heads=2)"), ("ffn", "mlp(hidden=32)"))


def attn_ffn(heads: int = 2, mlp: str = "mlp(hidden=32)") -> tuple[tuple[str, str], ...]:
    """The usual two layers: `attn = attention(heads=...)` and `ffn = <mlp>`."""
    return (("attn", f"attention(heads={heads})"), ("ffn", mlp))


def model_text(connect: str = "residual", *, name: str = "m", dim: int = 16,
               vocab: int | None = 32, layers: str | Sequence[tuple[str, str]] = ATTN_FFN,
               body: str = "repeat 2 [attn, ffn]", settings: str = "",
               prelude: str = "") -> str:
    """The text of a model for a test (the one builder: every test file formats its specs
    here). layers: (name, call) pairs, or raw `layer ...` lines; settings: more lines (e.g.
    `norm = rmsnorm`), put after `vocab`; vocab None: no vocab line (`input = hidden` in
    settings); prelude: text before the model (a `connection` block)."""
    if isinstance(layers, str):
        layer_lines = [ln.strip() for ln in layers.splitlines() if ln.strip()]
    else:
        layer_lines = [f"layer {a} = {b}" for a, b in layers]
    lines = [f"model {name} {{", f"dim = {dim}"]
    if vocab is not None:
        lines.append(f"vocab = {vocab}")
    lines += [ln.strip() for ln in settings.splitlines() if ln.strip()]
    lines += layer_lines + [f"body = {body}", f"connect {connect}"]
    text = "\n  ".join(lines) + "\n}\n"
    return f"{prelude}\n{text}" if prelude else text


# the trainer's tests' model: one block of attention and MLP, dynamic HC with two streams
TRAIN_SPEC = """model tiny {
  dim = 32
  vocab = 256
  layer attn = attention(heads=2)
  layer ffn  = mlp(hidden=64)
  body = [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""


def perturb(model: torch.nn.Module, seed: int, rel: float = 0.5, const: float = 0.1) -> None:
    """Move every parameter off its init: noise of `rel` x its std, or of `const` for
    parameters that are constant at init (norm scales, zero gates, learned scalars)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            std = p.std().item() if p.numel() > 1 else 0.0
            p.add_(torch.randn(p.shape, generator=g) * (rel * std if std > 0 else const))


def grads(model: torch.nn.Module, tokens: torch.Tensor, probe: torch.Tensor):
    """(logits, {parameter name: gradient}) of sum(logits * probe)."""
    model.zero_grad(set_to_none=True)
    logits = model(tokens)
    (logits * probe).sum().backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters()}


def run_recording(model: torch.nn.Module, tokens: torch.Tensor):
    """(logits, every node's value keyed by IR node id) on either backend."""
    if isinstance(model, ReferenceModel):
        values = model.run(tokens)
        return values[model.ir.output()], values
    seen: dict[str, torch.Tensor] = {}
    names = {attr_name(v).lower(): v for v in model.hc_ir.order()}

    class Recorder(fx.Interpreter):
        def run_node(self, node):  # noqa: ANN001, ANN202
            out = super().run_node(node)
            if node.name in names:
                seen[names[node.name]] = out
            return out

    return Recorder(model).run(tokens), seen


def assert_same(fx_model: torch.nn.Module, ref: torch.nn.Module, tokens: torch.Tensor,
                nonzero: bool = False, seed: int = 1) -> None:
    """fx and reference agree on the logits (1e-5) and on every gradient (1e-5 relative to
    the gradient's largest entry when that is above 1: fp32 summation-order noise grows with
    size); with nonzero, every parameter also gets a non-zero gradient."""
    shape = fx_model(tokens).shape  # logits (or a body's hidden states)
    probe = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    out_fx, g_fx = grads(fx_model, tokens, probe)
    out_ref, g_ref = grads(ref, tokens, probe)
    assert (out_fx - out_ref).abs().max().item() <= 1e-5
    assert g_fx.keys() == g_ref.keys()
    for name in g_fx:
        assert g_fx[name] is not None and g_ref[name] is not None, f"{name}: no gradient"
        scale = max(1.0, g_ref[name].abs().max().item())
        diff = (g_fx[name] - g_ref[name]).abs().max().item()
        assert diff <= 1e-5 * scale, f"{name}: gradients differ by {diff:.3g}"
        if nonzero:
            assert g_fx[name].ne(0).any(), f"{name}: zero gradient"


def assert_one_graph(model: torch.nn.Module, tokens: torch.Tensor) -> None:
    """torch.compile(fullgraph=True) traces the model as exactly one graph with no breaks,
    and the compiled model equals eager within 1e-5."""
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(tokens)
    assert explained.graph_count == 1, explained
    assert explained.graph_break_count == 0, explained.break_reasons
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        assert (model(tokens) - compiled(tokens)).abs().max().item() <= 1e-5


def train_losses(model: torch.nn.Module, batch: torch.Tensor, vocab: int,
                 steps: int = 8) -> list[float]:
    """The next-token losses of `steps` AdamW steps (lr 3e-3) on one batch."""
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        logits = model(batch)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, vocab), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
