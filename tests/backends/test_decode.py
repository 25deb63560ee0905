"""Decoding (hcdsl.nn.decode): a key/value cache per attention layer, the connection state
recomputed token by token. The oracle is the model's own full forward, which the cache does
not touch: logits at every position, and a greedy loop written here that recomputes the
whole sequence at each step."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import hcdsl
from hcdsl.errors import CompileError
from hcdsl.nn.decode import cached, decoding
from hcdsl.nn.layers import Attention, Embedding

SPECS = Path(__file__).resolve().parents[2] / "specs"
SMALL = sorted(p for p in SPECS.rglob("*.hc")
               if not any(big in p.name for big in ("olmo", "pythia")))

pytestmark = pytest.mark.usefixtures("one_thread")

LEARNED = """model learned {
  dim = 32
  vocab = 61
  context = 12
  pos = learned
  dropout = 0.1
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""


def _vocab(model: torch.nn.Module) -> int:
    return model.hc_ir.payload("embed").vocab


def _prompt(model: torch.nn.Module, batch: int = 2, length: int = 9) -> torch.Tensor:
    return torch.randint(0, _vocab(model), (batch, length),
                         generator=torch.Generator().manual_seed(1))


def _stepwise(model: torch.nn.Module, x: torch.Tensor, chunks: list[int]) -> torch.Tensor:
    """Logits of x fed through the cache in chunks (prefill, then pieces)."""
    outs, at = [], 0
    with torch.no_grad(), decoding(model, x.shape[1]) as state:
        for c in chunks:
            outs.append(model(x[:, at:at + c]))
            state.advance(c)
            at += c
    return torch.cat(outs, dim=1)


def _greedy_by_hand(model: torch.nn.Module, x: torch.Tensor, new: int) -> torch.Tensor:
    with torch.no_grad():
        for _ in range(new):
            x = torch.cat([x, model(x)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return x


@pytest.mark.parametrize("path", SMALL, ids=lambda p: str(p.relative_to(SPECS)))
def test_cached_logits_equal_the_full_forward(path: Path) -> None:
    model = hcdsl.compile(path, seed=0).eval()
    x = _prompt(model)
    with torch.no_grad():
        full = model(x)
    inc = _stepwise(model, x, [4, 1, 2, 1, 1])  # a prefill, single tokens and a chunk
    assert (inc - full).abs().max() <= 1e-5 * max(1.0, full.abs().max())


@pytest.mark.parametrize("name", ["pre_norm.hc", "families/mhc_tiny_paper4.hc",
                                  "families/mudd_tiny.hc", "custom/value_residual.hc"])
def test_reference_backend_decodes_too(name: str) -> None:
    model = hcdsl.compile(SPECS / name, seed=0, backend="reference").eval()
    x = _prompt(model)
    with torch.no_grad():
        full = model(x)
    assert (_stepwise(model, x, [3, 1, 1, 4]) - full).abs().max() <= 1e-5


def test_learned_positions_and_dropout_decode_in_eval_mode() -> None:
    model = hcdsl.compile(LEARNED, seed=0)  # training mode: generate switches to eval
    x = _prompt(model, length=5)
    out = model.generate(x, max_new_tokens=7, temperature=0)
    assert model.training  # restored
    model.eval()
    assert torch.equal(out, _greedy_by_hand(model, x, 7))
    with pytest.raises(CompileError, match=r"longer than the learned position table "
                                           r"\(context = 12\): ask for at most 7"):
        model.generate(x, max_new_tokens=8)


@pytest.mark.parametrize("name", ["tiny_dhc4.hc", "families/frac_tiny_dfc4.hc",
                                  "families/mhc_tiny_paper4.hc", "families/mudd_tiny.hc",
                                  "families/denseformer_4x5_tiny.hc",
                                  "families/attnres_tiny.hc", "parallel_shared.hc"])
def test_greedy_generation_equals_full_recomputation(name: str) -> None:
    model = hcdsl.compile(SPECS / name, seed=0).eval()
    x = _prompt(model, length=6)
    out = hcdsl.generate(model, x, max_new_tokens=10, temperature=0)
    assert out.shape == (2, 16) and torch.equal(out[:, :6], x)
    assert torch.equal(out, _greedy_by_hand(model, x, 10))
    assert torch.equal(out, model.generate(x, 10, temperature=0, use_cache=False))


def test_sampling_options() -> None:
    model = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=0).eval()
    x = _prompt(model, length=4)
    greedy = model.generate(x, 8, temperature=0)
    assert torch.equal(model.generate(x, 8, top_k=1), greedy)
    assert torch.equal(model.generate(x, 8, top_p=1e-9), greedy)  # keeps the first token only
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = model.generate(x, 8, temperature=1.3, top_k=5, generator=g())
    assert torch.equal(a, model.generate(x, 8, temperature=1.3, top_k=5, generator=g()))
    with torch.no_grad():  # every sampled token is among the top 3 of the full forward
        sampled = model.generate(x, 8, top_k=3, generator=g())
        for t in range(4, 12):
            top3 = model(sampled[:, :t])[:, -1].topk(3).indices
            assert (top3 == sampled[:, t:t + 1]).any(dim=1).all()


def test_eos_stops_and_pads() -> None:
    model = hcdsl.compile(SPECS / "pre_norm.hc", seed=0).eval()
    x = _prompt(model, batch=1, length=4)
    greedy = model.generate(x, 6, temperature=0)
    eos = int(greedy[0, 6])  # the third new token
    out = model.generate(x, 6, temperature=0, eos=eos)
    assert torch.equal(out, greedy[:, :7])  # stopped right after producing eos
    two = torch.cat([x, _prompt(model, batch=1, length=4)])
    both = model.generate(two, 6, temperature=0, eos=eos)
    first = both[0, 4:].tolist()
    cut = first.index(eos)
    assert all(t == eos for t in first[cut:])  # padded with eos once it appeared


def test_extern_layers_decode_by_recomputation() -> None:
    class Causal(torch.nn.Module):  # a time-mixing extern layer: a running mean
        def __init__(self, dim: int, **_: object) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(dim, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            steps = torch.arange(1, x.shape[1] + 1, device=x.device)[None, :, None]
            return self.lin(x.cumsum(1) / steps)

    text = """model ext {
  dim = 16
  vocab = 40
  layer mix = extern causal()
  layer ffn = mlp(hidden=32)
  body = repeat 2 [mix, ffn]
  connect residual
}
"""
    model = hcdsl.compile(text, layers={"causal": Causal}, seed=0).eval()
    assert not cached(model)
    x = _prompt(model, length=5)
    assert torch.equal(model.generate(x, 6, temperature=0), _greedy_by_hand(model, x, 6))


def test_bad_inputs_are_clear_errors() -> None:
    model = hcdsl.compile(SPECS / "pre_norm.hc", seed=0)
    x = _prompt(model)
    for bad, match in ((x[0], r"\(batch, time\), got \(9,\)"),
                       (x.float(), r"2-D integer tensor"),
                       (x[:, :0], "at least one token")):
        with pytest.raises(CompileError, match=match):
            model.generate(bad, 3)
    for kw, match in (({"temperature": -1.0}, "temperature"), ({"top_k": 0}, "top_k"),
                      ({"top_p": 1.5}, "top_p"), ({"max_new_tokens": -1}, "max_new_tokens")):
        with pytest.raises(CompileError, match=match):
            model.generate(x, **{"max_new_tokens": 3, **kw})
    body = hcdsl.compile("""model body {
  dim = 16
  input = hidden
  layer ffn = mlp(hidden=32)
  body = [ffn]
  connect residual
}
""", seed=0)
    with pytest.raises(CompileError, match="reads tokens"):
        hcdsl.generate(body, torch.zeros(1, 3, dtype=torch.long), 2)


def test_generation_leaves_the_model_as_it_was() -> None:
    model = hcdsl.compile(SPECS / "families/mudd_tiny.hc", seed=0).eval()
    x = _prompt(model)
    with torch.no_grad():
        before = model(x)
    state = copy.deepcopy(model.state_dict())
    model.generate(x, 5)
    assert all(m.kv_cache is None for m in model.modules() if isinstance(m, Attention))
    assert all(m.decoding is None for m in model.modules() if isinstance(m, Embedding))
    with torch.no_grad():
        assert torch.equal(model(x), before)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    twin = copy.deepcopy(model)  # the bound generate follows the copy
    assert torch.equal(twin.generate(x, 4, temperature=0), model.generate(x, 4, temperature=0))


def test_sample_command_continues_the_prompt(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from hcdsl.cli import app

    spec = SPECS / "pre_norm.hc"
    model = hcdsl.compile(spec, seed=3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5)  # weights no init would give: the checkpoint must be what decodes
    torch.save(model.state_dict(), tmp_path / "w.pt")
    run = CliRunner().invoke(app, ["sample", str(spec), "--checkpoint", str(tmp_path / "w.pt"),
                                   "--prompt", "ab", "-n", "6", "--temperature", "0"])
    assert run.exit_code == 0, run.output
    ids = list(b"ab")
    want = model.eval().generate(torch.tensor([ids]), 6, temperature=0)[0].tolist()
    assert run.output.rstrip("\n") == bytes(want).decode("utf-8", "replace")
    bad = CliRunner().invoke(app, ["sample", str(spec), "--prompt", ""])
    assert bad.exit_code == 1 and "--prompt is empty" in bad.output
    other = CliRunner().invoke(app, ["sample", str(SPECS / "tiny_dhc4.hc"), "--checkpoint",
                                     str(tmp_path / "w.pt"), "-n", "2"])
    assert other.exit_code == 1 and "the weights do not fit this spec" in other.output


@pytest.mark.slow
def test_the_decode_step_compiles_in_one_graph_per_shape() -> None:
    model = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=0).eval()
    x = _prompt(model, length=10)
    fast = torch.compile(model, fullgraph=True)  # generate takes the compiled module as is
    out = hcdsl.generate(fast, x[:, :4], max_new_tokens=6, temperature=0)
    assert torch.equal(out, _greedy_by_hand(model, x[:, :4], 6))
    with torch.no_grad():
        full = model(x)
        outs = []
        with decoding(model, 10) as state:
            for a, b in ((0, 4), (4, 5), (5, 6), (6, 7)):
                outs.append(fast(x[:, a:b]))
                state.advance(b - a)
    assert (torch.cat(outs, 1) - full[:, :7]).abs().max() <= 1e-5


def test_compiled_decode_step_equals_eager_and_does_not_recompile() -> None:
    """The decode step under torch.compile (fullgraph): the same greedy tokens as the eager
    model, the logits of the full (uncached, eager) forward to 1e-5 at every new position,
    and after the first compiled step no further dynamo compilation (the position counter is
    a tensor the graph reads, not a constant it specialises on). Small enough for the default
    suite (one tiny model, one compiled graph, ~20 s on one thread)."""
    from torch._dynamo.utils import counters

    model = hcdsl.compile(SPECS / "tiny_dhc4.hc", seed=0).eval()
    prompt, new = _prompt(model, batch=2, length=4), 6
    fast = torch.compile(model, fullgraph=True)
    seq, logits, compiles = prompt, [], []
    with torch.no_grad(), decoding(model, prompt.shape[1] + new) as state:
        out = model(prompt)[:, -1]  # eager prefill: only the one-token step is compiled
        state.advance(prompt.shape[1])
        for _ in range(new):
            logits.append(out)
            seq = torch.cat([seq, out.argmax(-1, keepdim=True)], dim=1)
            if len(logits) == new:
                break
            # the token just chosen, at its own position, contiguous as generate passes it
            out = fast(seq[:, -1:].contiguous())[:, -1]
            compiles.append(counters["stats"]["unique_graphs"])
            state.advance(1)
    # dynamo's count of graphs compiled (counters["frames"]["total"] is not kept by torch
    # 2.13: it read 0 whatever happened): at least the first step's, none after it
    assert compiles[0] >= 1
    assert len(compiles) == new - 1 and len(set(compiles)) == 1  # none after the first step
    assert torch.equal(seq, _greedy_by_hand(model, prompt, new))
    with torch.no_grad():
        full = model(seq)[:, prompt.shape[1] - 1:-1]  # the logits that chose each new token
    assert (torch.stack(logits, 1) - full).abs().max() <= 1e-5
