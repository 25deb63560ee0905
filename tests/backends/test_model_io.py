"""What hcdsl's own models take and give besides tokens -> logits: the loss of targets, the
per-layer hidden states, an attention/padding mask, learned absolute positions, dropout,
and bodies from hidden states to hidden states (`input = hidden`). Both backends agree."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hcdsl
from hcdsl.errors import CompileError, HcError
from hcdsl.frontend.printer import format_model
from hcdsl.nn.io import ModelOutput
from tests.helpers import assert_same, run_recording

BASE = """
model io {
  dim = 16
  vocab = 32
  SETTINGS
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = repeat 2 [attn, ffn]
  connect CONNECT
}
"""


def spec(settings: str = "", connect: str = "hyper(n=2, dynamic)") -> str:
    return BASE.replace("SETTINGS", settings).replace("CONNECT", connect)


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 7)) -> torch.Tensor:
    return torch.randint(0, 32, shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(params=["fx", "reference"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def test_targets_give_the_next_token_loss(backend: str) -> None:
    model = hcdsl.compile(spec(), seed=0, backend=backend)
    x = tokens()
    y = torch.roll(x, -1, dims=1)
    y[:, -1] = -100  # ignored, as in torch and transformers
    out = model(x, targets=y)
    assert isinstance(out, ModelOutput) and out.hidden is None
    want = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    assert torch.allclose(out.loss, want) and torch.equal(out.logits, model(x))
    out.loss.backward()
    with pytest.raises(CompileError, match=r"targets of shape \(2, 6\) do not fit logits"):
        model(x, targets=y[:, 1:])


def test_hidden_states_are_every_layer_input(backend: str) -> None:
    """hidden[k] is what layer k+1 reads from the connection, before its pre-norm."""
    model = hcdsl.compile(spec(), seed=0, backend=backend)
    x = tokens()
    out = model(x, return_hidden=True)
    assert out.loss is None and len(out.hidden) == 4
    _, values = run_recording(model, x)
    for k, h in enumerate(out.hidden):
        assert torch.equal(h, values[f"L{k + 1}.in"])


def test_return_hidden_and_targets_agree_across_backends() -> None:
    fx = hcdsl.compile(spec(), seed=0)
    ref = hcdsl.compile(spec(), seed=0, backend="reference")
    x = tokens()
    a, b = fx(x, targets=x, return_hidden=True), ref(x, targets=x, return_hidden=True)
    assert (a.logits - b.logits).abs().max() <= 1e-5 and (a.loss - b.loss).abs() <= 1e-6
    assert all((u - v).abs().max() <= 1e-5 for u, v in zip(a.hidden, b.hidden))


def test_a_padding_mask_hides_the_padding(backend: str) -> None:
    """With the left 3 positions of row 0 masked as padding, the logits of the real tokens
    do not depend on what the padding holds; no position is NaN."""
    model = hcdsl.compile(spec(), seed=0, backend=backend)
    x = tokens()
    pad = torch.ones(2, 7, dtype=torch.long)
    pad[0, :3] = 0
    other = x.clone()
    other[0, :3] = (other[0, :3] + 5) % 32
    a, b = model(x, mask=pad), model(other, mask=pad)
    assert torch.isfinite(a).all()
    assert (a[0, 3:] - b[0, 3:]).abs().max() <= 1e-6 and torch.equal(a[1], b[1])
    assert (a[0, :3] - b[0, :3]).abs().max() > 1e-3  # the padding itself did change
    # an all-ones mask (padding or attention) is no mask at all
    assert (model(x, mask=torch.ones(2, 7)) - model(x)).abs().max() <= 1e-6
    assert (model(x, mask=torch.ones(7, 7, dtype=torch.bool)) - model(x)).abs().max() <= 1e-6


def test_masks_agree_across_backends() -> None:
    fx = hcdsl.compile(spec(), seed=0)
    ref = hcdsl.compile(spec(), seed=0, backend="reference")
    x = tokens()
    attn = torch.rand(2, 7, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    assert (fx(x, mask=attn) - ref(x, mask=attn)).abs().max() <= 1e-5


@pytest.mark.parametrize("shape", [(2, 8), (3, 7), (2, 7, 6), (2, 1, 7, 7), (7,)])
def test_a_mask_of_the_wrong_shape_is_a_clear_error(backend: str, shape: tuple) -> None:
    model = hcdsl.compile(spec(), seed=0, backend=backend)
    with pytest.raises(CompileError, match=r"mask of shape .* does not fit tokens of shape "
                                           r"\(batch, time\) = \(2, 7\): give a padding mask"):
        model(tokens(), mask=torch.ones(shape))


def test_learned_positions() -> None:
    text = spec("context = 8\n  pos = learned")
    model = hcdsl.compile(text, seed=0)
    assert model.embed.positions.shape == (8, 16)
    st = hcdsl.stats(text)
    assert st.params == sum(p.numel() for p in model.parameters())
    assert st.params - hcdsl.stats(spec()).params == 8 * 16
    x = tokens()
    with torch.no_grad():  # positions matter: the same token at two positions differs
        h = model.embed(torch.zeros(1, 2, dtype=torch.long))
    assert not torch.equal(h[0, 0], h[0, 1])
    assert_same(model, hcdsl.compile(text, seed=0, backend="reference"), x)
    assert model.embed.positions.grad is not None
    with pytest.raises(CompileError, match="longer than the learned position table"):
        model(tokens(shape=(1, 9)))
    parsed = hcdsl.parse(text)
    assert parsed.pos == "learned" and hcdsl.parse(format_model(parsed)) == parsed


def test_dropout_is_off_in_eval_and_agrees_across_backends_when_training() -> None:
    text = spec("dropout = rates(embed=0.1, attn=0.2, branch=0.1, coef=0.1)")
    plain = hcdsl.compile(spec(), seed=0).eval()
    fx = hcdsl.compile(text, seed=0)
    ref = hcdsl.compile(text, seed=0, backend="reference")
    ops = {fx.hc_ir.payload(v).op for v in fx.hc_ir.g.nodes}
    assert "dropout" in ops and fx.L1_attn.dropout == 0.2
    x = tokens()
    fx.eval()  # eval: the same model as without dropout (same weights by node id)
    assert torch.equal(fx(x), plain(x))
    fx.train()
    torch.manual_seed(3)
    a = fx(x)
    torch.manual_seed(3)
    b = ref(x)
    torch.manual_seed(4)
    c = fx(x)
    assert (a - b).abs().max() <= 1e-5 and (a - c).abs().max() > 1e-3
    parsed = hcdsl.parse(text)
    assert parsed.dropout.coef == 0.1 and hcdsl.parse(format_model(parsed)) == parsed
    assert hcdsl.parse(spec("dropout = 0.1")).dropout.model_dump() == {
        "embed": 0.1, "attn": 0.1, "branch": 0.1, "coef": 0.0}


@pytest.mark.parametrize("settings, connect, message, line", [
    ("dropout = 1.5", "residual", "dropout is a rate in [0, 1) or rates(...)", 5),
    ("dropout = rates(coef=0.1)", "hyper(n=2)", "dropout coef = 0.1 applies to a "
     "connection's dynamic weights, and connect hyper has none", 5),
    ("dropout = rates(attn=1)", "residual", "option 'attn' of dropout rates must be < 1", 5),
    ("pos = learned", "residual", "pos = learned needs the size of its table", 5),
    ("pos = absolute", "residual", "'pos' is one of none, learned", 5),
])
def test_bad_settings_are_located_errors(settings: str, connect: str, message: str,
                                         line: int) -> None:
    with pytest.raises(HcError) as info:
        hcdsl.parse(spec(settings, connect))
    assert any(message in d.message and d.span.line == line for d in info.value.diagnostics), \
        info.value.render()


BODY = """
model body {
  dim = 16
  input = hidden
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = repeat 2 [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""


def test_a_body_maps_hidden_states_to_hidden_states() -> None:
    fx = hcdsl.compile(BODY, seed=0)
    ref = hcdsl.compile(BODY, seed=0, backend="reference")
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    assert fx(x).shape == (2, 5, 16)
    assert_same(fx, ref, x)
    out = fx(x, return_hidden=True)
    assert torch.equal(out.hidden[0], x) and len(out.hidden) == 4
    parsed = hcdsl.parse(BODY)
    assert parsed.input == "hidden" and parsed.vocab == 0
    assert hcdsl.parse(format_model(parsed)) == parsed
    with pytest.raises(CompileError, match=r"reads hidden states \(batch, time, dim = 16\)"):
        fx(torch.zeros(2, 5, dtype=torch.long))


def test_a_body_has_no_vocab_and_no_head() -> None:
    text = BODY.replace("input = hidden", "input = hidden\n  vocab = 32\n  pos = learned") \
        .replace("connect hyper(n=2, dynamic)", "connect residual\n  head = unembed")
    with pytest.raises(HcError) as info:
        hcdsl.parse(text)
    messages = [d.message for d in info.value.diagnostics]
    assert "a model with input = hidden has no embedding: remove 'vocab'" in messages
    assert "a model with input = hidden has no embedding: remove 'pos'" in messages
    assert "a model with input = hidden has no head" in messages


def test_prove_compares_bodies() -> None:
    """A body's output is its readout (no final norm): HC's n·h is not Pre-Norm's h."""
    pre = BODY.replace("hyper(n=2, dynamic)", "residual")
    assert hcdsl.prove(pre, BODY.replace("hyper(n=2, dynamic)", "frac(m=2)"),
                       at_init=True).equivalent
    result = hcdsl.prove(pre, BODY, at_init=True)
    assert result.verdict == "NOT EQUIVALENT" and result.witness.differs
    assert "random hidden states" in result.render()


def test_one_graph_with_every_input(one_thread: None) -> None:
    """mask, targets, return_hidden and dropout trace as one graph (the checks on the mask
    and targets are on shapes, which torch.compile specialises on)."""
    model = hcdsl.compile(spec("dropout = rates(embed=0.1, attn=0.1, branch=0.1, coef=0.1)"),
                          seed=0)
    x = tokens()
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, mask=torch.ones(2, 7), targets=x,
                                             return_hidden=True)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, \
        explained.break_reasons
    torch._dynamo.reset()
