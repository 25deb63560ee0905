"""Extern layers as first-class layers: input ports declared by the factory or the spec (so
`connect mudd` feeds your own attention q, k and v), the connection's output scale by the
rule of hcdsl/nn/extern.py (a keyword, a declared projection, or a warning), and errors."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hcdsl
from hcdsl.errors import CompileError, HcError
from hcdsl.frontend.printer import format_model
from tests.helpers import assert_same

SPEC = """
model m {
  dim = 16
  vocab = 32
  layer a = extern myattn(heads=2)
  layer f = mlp(hidden=32)
  body = repeat 2 [a, f]
  connect CONNECT
}
"""


class QKVAttention(nn.Module):
    """Causal attention with separate q, k, v inputs; takes the connection's out_scale."""

    ports = ("q", "k", "v")

    def __init__(self, dim: int, heads: int, out_scale: float = 1.0) -> None:
        super().__init__()
        self.heads, self.out_scale = heads, out_scale
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.out = nn.Linear(dim, dim)
        with torch.no_grad():
            self.out.weight.mul_(out_scale)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        B, T, d = q.shape
        heads = lambda t: t.view(B, T, self.heads, -1).transpose(1, 2)  # noqa: E731
        y = F.scaled_dot_product_attention(heads(self.q(q)), heads(self.k(k)),
                                           heads(self.v(v)), is_causal=True)
        return self.out(y.transpose(1, 2).reshape(B, T, d))


class Plain(nn.Module):
    """One port; ignores the output scale (no out_scale parameter, no declared projection)."""

    def __init__(self, dim: int, heads: int = 1) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Declared(Plain):
    """Declares its output projection: the rule scales its weight."""

    output_projection = "proj"


def spec(connect: str, layer: str = "extern myattn(heads=2)") -> str:
    return SPEC.replace("CONNECT", connect).replace("extern myattn(heads=2)", layer)


def tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 32, (2, 6), generator=torch.Generator().manual_seed(seed))


def test_mudd_feeds_your_attention_q_k_v(one_thread: None) -> None:
    """The factory's `ports` make the layer a q, k, v layer: MUDD's four ways reach it, both
    backends agree, and at init it is the same model as Pre-Norm."""
    layers = {"myattn": QKVAttention}
    model = hcdsl.compile(spec("mudd"), layers=layers, seed=0)
    ir = model.hc_ir
    attn = [v for v in ir.g.nodes if v.endswith(".a")]
    assert {tuple(ir.inputs(v)) for v in attn} == {("q", "k", "v")}
    # the second block's attention reads the Q, K, V ways through three norms
    assert [ir.inputs("L3.a")[p] for p in "qkv"] == ["L3.norm_q", "L3.norm_k", "L3.norm_v"]
    ref = hcdsl.compile(spec("mudd"), layers=layers, seed=0, backend="reference")
    assert_same(model, ref, tokens())
    pre = hcdsl.compile(spec("residual"), layers=layers, seed=0)
    with torch.no_grad():  # same layer weights by node id; MUDD = Pre-Norm at init
        for name, p in pre.named_parameters():
            if name.startswith(("L1_a", "L3_a", "L2_f", "L4_f", "embed", "head")):
                dict(model.named_parameters())[name].copy_(p)
        assert (model(tokens()) - pre(tokens())).abs().max() <= 1e-5


def test_ports_from_the_spec_round_trip() -> None:
    text = spec("mudd", "extern myattn(heads=2, ports=qkv)")
    parsed = hcdsl.parse(text)
    assert parsed.layer("a").ports == ("q", "k", "v")
    assert "ports=[q, k, v]" in format_model(parsed)
    assert hcdsl.parse(format_model(parsed)) == parsed
    assert hcdsl.parse(spec("residual", "extern myattn(ports=[x, y])")).layer("a").in_ports \
        == ("x", "y")


@pytest.mark.parametrize("value, message", [
    ("[q, q]", "port names repeat"),
    ("[vres]", "'vres' is reserved"),
    ("1", "ports are a list of names"),
])
def test_bad_ports_are_located_errors(value: str, message: str) -> None:
    with pytest.raises(HcError) as info:
        hcdsl.parse(spec("residual", f"extern myattn(ports={value})"))
    d = info.value.first
    assert message in d.message and d.span.line == 5


def test_ports_of_spec_and_factory_must_agree() -> None:
    with pytest.raises(HcError, match=r"declares ports \['q', 'k', 'v'\], but the spec says "
                                      r"\['x', 'y'\]"):
        hcdsl.compile(spec("residual", "extern myattn(heads=2, ports=[x, y])"),
                      layers={"myattn": QKVAttention})


def test_mudd_with_a_one_port_layer_names_its_ports() -> None:
    """The error no longer says 'start every block with an attention layer' about a block
    that does: it says which ports the layer has and how to declare q, k, v."""
    with pytest.raises(HcError) as info:
        hcdsl.compile(spec("mudd"), layers={"myattn": Plain})
    d = info.value.first
    assert "whose input ports are (x)" in d.message and "(extern myattn)" in d.message
    assert "ports=qkv" in d.hint and "ports = (" in d.hint


def out_weight(model: nn.Module, layer: str, attr: str) -> torch.Tensor:
    return getattr(model.get_submodule(layer), attr).weight


def test_out_scale_reaches_a_factory_that_takes_it() -> None:
    """HC §4: with n = 4 the output projection's init std is halved; the factory gets
    out_scale=0.5 (and Pre-Norm's 1.0 is not passed at all)."""
    hc = hcdsl.compile(spec("hyper(n=4)"), layers={"myattn": QKVAttention}, seed=0)
    assert hc.get_submodule("L1_a").out_scale == 0.5
    pre = hcdsl.compile(spec("residual"), layers={"myattn": QKVAttention}, seed=0)
    assert pre.get_submodule("L1_a").out_scale == 1.0


def test_out_scale_scales_a_declared_projection() -> None:
    torch.manual_seed(0)
    pre = hcdsl.compile(spec("residual", "extern mine"), layers={"mine": Declared})
    torch.manual_seed(0)
    hc = hcdsl.compile(spec("hyper(n=4)", "extern mine"), layers={"mine": Declared})
    # the same draws in the same order: the weight is exactly half
    assert torch.equal(out_weight(hc, "L1_a", "proj"), 0.5 * out_weight(pre, "L1_a", "proj"))


def test_out_scale_that_cannot_be_applied_warns_naming_layer_and_scale() -> None:
    with pytest.warns(UserWarning, match=r"layer 'a' \(extern mine\).* by 0\.5 .*takes no "
                                         r"out_scale parameter"):
        hcdsl.compile(spec("hyper(n=4)", "extern mine"), layers={"mine": Plain})
    with warnings.catch_warnings():  # no scale to apply (Pre-Norm), nothing to say
        warnings.simplefilter("error")
        hcdsl.compile(spec("residual", "extern mine"), layers={"mine": Plain})
        hcdsl.stats(spec("hyper(n=4)", "extern mine"), layers={"mine": Plain})  # shapes only


def test_a_declared_projection_that_does_not_exist_is_an_error() -> None:
    class Wrong(Plain):
        output_projection = "out"

    with pytest.raises(CompileError, match=r"declares output_projection = 'out', but has no "
                                           r"submodule 'out' with a weight"):
        hcdsl.compile(spec("hyper(n=4)", "extern mine"), layers={"mine": Wrong})


def test_a_factory_declaring_bad_ports_is_an_error() -> None:
    class Bad(Plain):
        ports = ("q", "q")

    with pytest.raises(CompileError, match=r"factory 'mine' declares ports = \('q', 'q'\)"):
        hcdsl.compile(spec("residual", "extern mine"), layers={"mine": Bad})


def test_a_multi_port_layer_that_fails_says_so() -> None:
    class Two(Plain):
        ports = ("x", "y")

    with pytest.raises(CompileError, match=r"on each of its 2 ports \(x, y\)"):
        hcdsl.compile(spec("residual", "extern mine"), layers={"mine": Two})


@pytest.mark.parametrize("connect", ["residual", "hyper(n=4, dynamic)"])
def test_stats_count_every_extern_layer(connect: str) -> None:
    """Each extern layer's parameters count once (modules built for counting stay alive, so
    a freed tensor's id is never taken for a shared one)."""
    text = spec(connect, "extern mine")
    model = hcdsl.compile(text, layers={"mine": Declared})
    assert hcdsl.stats(text, layers={"mine": Declared}).params == \
        sum(p.numel() for p in model.parameters())


# --- the probe: a batch of distinct sequences, each sample on its own ------------------------


class FirstOnly(Plain):
    """Returns only sample 0: a batch of 1 passes, and the residual add would broadcast it
    over the whole batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)[:1]


class CopiesFirst(Plain):
    """The right shape, but every sample gets sample 0's output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)[:1].expand_as(x)


class BatchCentred(Plain):
    """Subtracts the batch mean: each sample's output depends on the others."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return y - y.mean(dim=0, keepdim=True)


class LastPosition(Plain):
    """Drops the time axis to one position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)[:, -1:]


@pytest.mark.parametrize("bad, message", [
    (FirstOnly, r"layer 'a' \(extern mine\) maps \(2, 3, 16\) to \(1, 3, 16\); it must "
                r"return \(batch, time, dim\) = \(2, 3, 16\)"),
    (LastPosition, r"layer 'a' \(extern mine\) maps \(2, 3, 16\) to \(2, 1, 16\)"),
    (CopiesFirst, r"layer 'a' \(extern mine\) mixes the samples of a batch"),
    (BatchCentred, r"layer 'a' \(extern mine\) mixes the samples of a batch"),
])
def test_a_layer_that_drops_or_mixes_samples_is_refused(bad: type[nn.Module],
                                                        message: str) -> None:
    with pytest.raises(CompileError, match=message):
        hcdsl.compile(spec("residual", "extern mine"), layers={"mine": bad})


def test_the_probe_runs_in_eval_mode_and_restores_the_modes() -> None:
    """Dropout would make two runs of one sample differ: the probe runs in eval mode, and
    every submodule keeps its own training flag afterwards."""
    built: list[nn.Module] = []

    class Dropping(Plain):
        def __init__(self, dim: int) -> None:
            super().__init__(dim)
            self.drop = nn.Dropout(0.5)
            self.drop.eval()  # a submodule the user put in eval mode on purpose
            self.inner = nn.Dropout(0.5)
            built.append(self)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(self.drop(self.proj(x)))

    hcdsl.compile(spec("residual", "extern mine"), layers={"mine": Dropping})
    assert built and all(m.training and m.inner.training and not m.drop.training
                         for m in built)


@pytest.mark.parametrize("exc", [ValueError("no such head count"), RuntimeError("CUDA only"),
                                 KeyError("heads"), AssertionError("dim % heads")])
def test_a_factory_that_raises_is_a_compile_error_naming_layer_and_factory(
        exc: Exception) -> None:
    def mine(dim: int, heads: int = 1) -> nn.Module:
        raise exc

    with pytest.raises(CompileError) as info:
        hcdsl.compile(spec("residual", "extern mine(heads=2)"), layers={"mine": mine})
    assert str(info.value) == (
        f"layer 'a' (extern mine): factory 'mine' raised on its options (dim=16, "
        f"{{'heads': 2}}): {type(exc).__name__}: {exc} (the factory: {mine.__module__}."
        f"{mine.__qualname__})")
