"""Pipeline stages on one process (hcdsl/ir/stages.py, backends/stages.py): the stage modules
run in sequence compute the whole model (logits bit for bit, float64 gradients equal), and
what crosses each cut is what the IR says flows there: HC's and mHC's n-stream state
H[n x C] (n·C per token), the dense families' history (the embedding and earlier outputs),
read off the IR's own edges here, not from the cut code."""

from __future__ import annotations

import pytest
import torch

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.ir.stages import StageError, plan
from hcdsl.ir.types import Hidden, Streams
from hcdsl.backends.stages import lower_stages
from helpers import model_text

DIM = 32
FAMILIES = {  # name -> connect line; 4 blocks of attention + MLP (8 layers)
    "pre-norm": "residual",
    "dhc4": "hyper(n=4, dynamic)",
    "mhc4": "mhc(n=4)",
    "mudd": "mudd",
    "denseformer": "denseformer",
}


def spec(connect: str, blocks: int = 4) -> str:
    return model_text(connect, dim=DIM, vocab=64, body=f"repeat {blocks} [attn, ffn]")


def run_stages(stages: list[torch.nn.Module], tokens: torch.Tensor) -> torch.Tensor:
    x: tuple = (tokens,)
    for s in stages:
        y = s(*x)
        x = y if isinstance(y, tuple) else (y,)
    return y


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("count", [2, 3])
def test_stages_in_sequence_are_the_model(family: str, count: int) -> None:
    torch.manual_seed(0)
    model = hcdsl.compile(spec(FAMILIES[family]), seed=1, dtype=torch.float64)
    with torch.no_grad():  # move every parameter off its init (mixes not one-hot)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    stages = lower_stages(model, plan(model.hc_ir, count, seq=16))
    assert len(stages) == count
    tokens = torch.randint(0, 64, (2, 16))
    whole = model(tokens)
    piped = run_stages(stages, tokens)
    assert torch.equal(piped, whole)
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    whole.square().mean().backward()
    want = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    run_stages(stages, tokens).square().mean().backward()
    got = {k: p.grad for k, p in model.named_parameters() if p.requires_grad}
    for k in names:
        assert torch.allclose(got[k], want[k], rtol=1e-12, atol=1e-14), k
    # every trainable parameter is in exactly one stage, under the model's own name
    owned = [k for s in stages for k, _ in s.named_parameters()]
    assert sorted(owned) == sorted(names)


@pytest.mark.parametrize("family,n_streams", [("dhc4", 4), ("mhc4", 4)])
def test_stream_families_send_the_n_stream_state(family: str, n_streams: int) -> None:
    ir = hcdsl.lower(spec(FAMILIES[family]))
    p = plan(ir, 2)
    (cut,) = p.cuts
    assert p.split == (4, 4)  # equal layers balance equal FLOPs
    # the IR's state after layer 4: what layer 5's connection reads
    state = [u for u in ir.inputs("L5.coef").values()]
    assert cut.values == tuple(state) == ("L4.write",)
    assert ir.type_of("L4.write") == Streams(n_streams, DIM)
    assert cut.elements == n_streams * DIM


def test_pre_norm_sends_one_hidden_vector() -> None:
    ir = hcdsl.lower(spec("residual"))
    (cut,) = plan(ir, 2).cuts
    assert cut.elements == DIM and len(cut.values) == 1
    assert ir.type_of(cut.values[0]) == Hidden(DIM)


@pytest.mark.parametrize("family", ["mudd", "denseformer"])
def test_dense_families_send_the_history(family: str) -> None:
    """What crosses the cut after layer k: every value made before it that a node after it
    reads, found here by walking the IR's edges (the embedding and the block outputs the
    later aggregates stack)."""
    ir = hcdsl.lower(spec(FAMILIES[family]))
    p = plan(ir, 2, split=(4, 4))
    (cut,) = p.cuts
    later = set(p.stages[1].nodes)
    read_later = {u for v in later for u in ir.inputs(v).values() if u not in later}
    data_read = {u for u in read_later if not isinstance(ir.payload(u), n.DenseCoef)}
    assert set(cut.values) == data_read
    assert "embed" in cut.values  # the history starts with the embedding
    assert len(cut.values) >= 3  # embedding + block outputs (2 blocks before the cut)
    assert cut.elements == DIM * len(cut.values)


def test_split_by_layer_counts() -> None:
    ir = hcdsl.lower(spec("hyper(n=2, dynamic)"))
    p = plan(ir, split=(2, 6))
    assert p.split == (2, 6)
    assert [s.layers for s in p.stages] == [(0, 2), (2, 8)]
    assert any(isinstance(ir.payload(v), n.Embed) for v in p.stages[0].nodes)
    assert any(isinstance(ir.payload(v), n.Unembed) for v in p.stages[1].nodes)
    assert p.cuts[0].values == ("L2.write",)


def test_balance_follows_flops() -> None:
    """A model whose second half is heavy (a wide MLP): the balanced cut moves forward."""
    text = model_text("residual", dim=DIM, vocab=64,
                      layers=(("attn", "attention(heads=2)"), ("ffn", "mlp(hidden=32)"),
                              ("big", "mlp(hidden=512)")),
                      body="[attn, ffn, attn, ffn, attn, big, attn, big]")
    p = plan(hcdsl.lower(text), 2)
    assert p.split[0] > p.split[1]
    loads = [s.flops for s in p.stages]
    assert max(loads) < sum(loads)


@pytest.mark.parametrize("count,split,message", [
    (9, None, "9 pipeline stages for a model of 8 layers"),
    (None, (3, 3), "puts 6 layers in stages; the model has 8"),
    (None, (0, 8), "whole number >= 1"),
])
def test_bad_requests_say_why(count, split, message) -> None:
    ir = hcdsl.lower(spec("residual"))
    with pytest.raises(StageError, match=message):
        plan(ir, count, split)


def test_no_cut_inside_a_parallel_block() -> None:
    text = model_text("parallel(separate)", dim=DIM, vocab=64, body="repeat 3 [attn, ffn]")
    ir = hcdsl.lower(text)
    with pytest.raises(StageError, match="parallel block"):
        plan(ir, split=(1, 5))
    assert plan(ir, split=(2, 4)).split == (2, 4)
    with pytest.raises(StageError, match="at most 3 stages"):
        plan(ir, 4)


def test_a_tied_head_cannot_leave_the_first_stage() -> None:
    text = model_text("residual", dim=DIM, vocab=64, settings="head = unembed(tied=true)")
    with pytest.raises(StageError, match="tied"):
        plan(hcdsl.lower(text), 2)


def test_a_static_coefficient_stays_with_all_its_readers() -> None:
    """DenseFormer's first aggregate A1 mixes the embedding (read right after it) and block
    1's output (read after layer 2) with one static coefficient: the cut after layer 2 is
    placed after both reads, so A1's weights live in one stage and are never sent."""
    ir = hcdsl.lower(spec("denseformer", blocks=2))
    p = plan(ir, 2)
    assert p.split == (2, 2)
    readers = {k for k, s in enumerate(p.stages) for v in s.nodes
               if "A1.coef" in ir.inputs(v).values()}
    assert len(readers) == 1
    assert "A1.coef" not in p.cuts[0].values
    model = hcdsl.compile(spec("denseformer", blocks=2), seed=1, dtype=torch.float64)
    tokens = torch.randint(0, 64, (2, 16))
    assert torch.equal(run_stages(lower_stages(model, p), tokens), model(tokens))


VALUE_RESIDUAL = """connection value_residual {
  value_residual = [0.5, 0.5]
  all = [[0, 1], [1, 1]]
}
""" + model_text("value_residual", dim=DIM, vocab=64, body="repeat 2 [attn, ffn]")


def test_a_value_residual_sends_the_first_values() -> None:
    """ResFormer's V_1: layer 3's attention reads the first attention layer's values on
    its `vres` port (the IR's edge), so the cut after layer 2 sends them with the state."""
    ir = hcdsl.lower(VALUE_RESIDUAL)
    first_values = ir.inputs("L3.attn")["vres"]
    assert ir.inputs(first_values)["x"] == "L1.attn"  # a tap of layer 1's attention
    (cut,) = plan(ir, 2).cuts
    assert first_values in cut.values and len(cut.values) == 2
    assert cut.elements == 2 * DIM
    model = hcdsl.compile(VALUE_RESIDUAL, seed=1, dtype=torch.float64)
    tokens = torch.randint(0, 64, (2, 16))
    assert torch.equal(run_stages(lower_stages(model, plan(model.hc_ir, 2)), tokens),
                       model(tokens))
