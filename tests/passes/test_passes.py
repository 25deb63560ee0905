"""Every pattern of hcdsl/passes/registry.PATTERNS, twice: structurally (the IR before and after)
and numerically (the lowered module before and after the pass gives the same outputs).

Each pass runs behind the few passes that expose its pattern (PREREQ), with the verifier
after every step (run_pipeline(check=True)).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import hcdsl
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.ir.verify import verify
from hcdsl.passes.pipeline import DEFAULT, run_pipeline
from hcdsl.passes.driver import prune_dead
from hcdsl.passes.registry import PATTERNS, get
from helpers import model_text

pytestmark = pytest.mark.usefixtures("one_thread")


def spec(connect: str, body: str = "repeat 2 [attn, ffn]") -> str:
    return model_text(connect, name="passes_t", body=body)


PRE = spec("residual")
POST = spec("residual(post)")
PAR_SEP = spec("parallel(separate)")
FIXED2 = spec("hyper(n=2, fixed)")  # learn=false: constant HC matrices (Eq. 14's init)
SHC2 = spec("hyper(n=2, static)")
DHC2 = spec("hyper(n=2, dynamic)")
SPECS = {"pre": PRE, "post": POST, "parallel": PAR_SEP, "shared": spec("parallel(shared)"),
         "fixed2": FIXED2, "shc2": SHC2,
         "dhc2": DHC2}

# the passes that expose each pass's pattern in a freshly built IR
PREREQ: dict[str, list[str]] = {
    "fold-const-slice": [],
    "fold-const-chain": ["fold-const-slice"],
    "drop-identity-mix": ["fold-const-slice"],
    "drop-split-merge": ["fold-const-slice", "drop-identity-mix"],
    "cse": [],
    "merge-equal-streams": ["fold-const-slice"],
    "split-stack-mix": [],
    "merge-sibling-mixes": ["split-stack-mix"],
    "fuse-parallel-inputs": [],
    "mix-to-add": ["fold-const-slice"],
    "squeeze-single-stream": ["fold-const-slice", "mix-to-add"],
    "ones-mix": [],
    "drop-zero-rows": ["fold-const-slice", "fold-const-chain"],
}


def raw(text: str) -> IR:
    return hcdsl.lower(text, passes=None)


def run(ir: IR, names: list[str]) -> IR:
    run_pipeline(ir, names, check=True)
    return ir


def before_after(text: str, name: str) -> tuple[IR, IR]:
    before = run(raw(text), PREREQ[name])
    after = before.copy()
    assert get(name)(after), f"{name} did not fire"
    verify(after, after=name)
    return before, after


def const(ir: IR, node_id: str) -> np.ndarray:
    return np.array(ir.payload(ir.inputs(node_id)["coef"]).value)


# -- structural ---------------------------------------------------------------------------
def test_every_registered_pass_is_tested() -> None:
    """Every pattern of the compile pipeline (the proof patterns registered in the same
    table are the prover's, tested with it)."""
    assert set(DEFAULT) == set(PREREQ)
    assert set(PREREQ) <= set(PATTERNS)


def test_fold_const_slice() -> None:
    before, after = before_after(PRE, "fold-const-slice")
    # L1.read = mix(init.split, [[0,1],[1,1]][1:2, 0:1]) -> mix(init.split, [[1]])
    assert before.payload("L1.read") == n.Mix((1, 2), (0, 1))
    assert after.payload("L1.read") == n.Mix((0, 1), (0, 1))
    assert const(after, "L1.read").tolist() == [[1.0]]
    # L1.write = mix(stack(T, h), M[0:2, 1:2]) -> mix(stack, [[1], [1]])
    assert const(after, "L1.write").tolist() == [[1.0], [1.0]]
    assert after.inputs("L1.write")["x"] == "L1.stack"


def test_fold_const_chain() -> None:
    before, after = before_after(FIXED2, "fold-const-chain")
    # init.copy = mix(init.split, [[1, 1]]); L1.read = mix(init.copy, A_m = e_1)
    # -> L1.read = mix(init.split, [[1, 1]] @ [[1], [0]] = [[1]])
    assert before.inputs("L1.read")["x"] == "init.copy"
    run_pipeline(after, ["fold-const-chain"], check=True)  # to the fixed point
    assert after.inputs("L1.read")["x"] == "init.split"
    assert const(after, "L1.read").tolist() == [[1.0]]
    # L2.read = mix(L1.write, A_m2) -> mix(L1.stack, [B; A_r]_1 @ A_m2): reads T1 and H^0
    assert after.inputs("L2.read")["x"] == "L1.stack"
    assert const(after, "L2.read").tolist() == [[1.0], [0.0], [1.0]]


def test_drop_identity_mix_removes_pre_norm_reads() -> None:
    before, after = before_after(PRE, "drop-identity-mix")
    reads = [f"L{k}.read" for k in range(1, 5)]
    assert all(r in before for r in reads)
    assert not any(r in after for r in reads)
    assert after.inputs("L1.in")["x"] == "init.split"
    assert after.inputs("L2.in")["x"] == "L1.write"


def test_drop_identity_mix_keeps_hc_reads() -> None:
    ir = run(raw(FIXED2), ["fold-const-slice"])
    assert not get("drop-identity-mix")(ir)  # n = 2: A_m is 2 x 1, not an identity


def test_drop_split_merge() -> None:
    before, after = before_after(PRE, "drop-split-merge")
    # L1.in = merge(init.split = split(embed)) -> embed
    assert before.inputs("L1.norm")["x"] == "L1.in"
    assert after.inputs("L1.norm")["x"] == "embed"
    assert "L1.in" not in after


def test_cse_merges_the_reads_of_a_parallel_block() -> None:
    before, after = before_after(PAR_SEP, "cse")
    # L1 and L2 run in one block and read the same h: one read, one merge
    assert {"L1.read", "L2.read", "L1.in", "L2.in"} <= set(before.g)
    assert "L2.read" not in after and "L2.in" not in after
    # the two norms are separate (GPT-NeoX form): both stay, on the one input
    assert after.inputs("L1.norm")["x"] == after.inputs("L2.norm")["x"] == "L1.in"


def test_cse_keeps_affine_norms_apart() -> None:
    ir = run(raw(PAR_SEP), PREREQ["cse"] + ["cse"])
    assert "L1.norm" in ir and "L2.norm" in ir  # own parameters: not one value


DCE_PREREQ = ["fold-const-slice", "drop-identity-mix", "drop-split-merge", "cse"]


def test_dce() -> None:
    """Dead-node pruning is the driver's: the patterns leave no dead nodes behind."""
    ir = run(raw(PRE), DCE_PREREQ)
    assert prune_dead(ir) == 0
    ir.add("junk.coef", n.ConstCoef(((1.0,),)))
    ir.add("junk.mix", n.Mix((0, 1), (0, 1)), x="init.split", coef="junk.coef")
    assert prune_dead(ir) == 2
    verify(ir, after="dce")
    assert "junk.mix" not in ir and "junk.coef" not in ir
    assert prune_dead(ir) == 0


def test_mix_to_add() -> None:
    before, after = before_after(PRE, "mix-to-add")
    assert isinstance(before.payload("L1.write"), n.Mix)
    # mix(stack(T(h), h), [[1], [1]]) -> add(T(h), h)
    assert after.payload("L1.write") == n.Add(2)
    assert after.inputs("L1.write") == {"s0": "L1.out", "s1": "init.split"}


def test_mix_to_add_keeps_learned_mixes() -> None:
    ir = run(raw(SHC2), ["fold-const-slice"])
    assert not get("mix-to-add")(ir)


HC_PAR = """
model par {
  dim = 16
  vocab = 32
  layer attn = attention(heads=2)
  layer ffn = mlp
  body = repeat 2 [attn, ffn]
  connect hyper(n=2, fixed) {
    odd  = [[0, 1, 0], [1, 1, 1], [1, 1, 1]]
    even = [[0, 0, 1], [0, 1, 0], [1, 0, 1]]
  }
}
"""
SPECS["hc_par"] = HC_PAR  # the numeric tests below run every pass on it too


def test_drop_zero_rows() -> None:
    before, after = before_after(HC_PAR, "drop-zero-rows")
    # L2 reads mix(stack(T1, H), [[0], [1], [1]]): it does not use T1 ...
    assert const(before, "L2.read")[0].tolist() == [0.0]
    assert "L1.attn" in nx.ancestors(before.g, "L2.ffn")
    # ... -> mix(H, [[1], [1]]): L2 no longer depends on L1
    assert "L1.attn" not in nx.ancestors(after.g, "L2.ffn")
    assert const(after, "L2.read").tolist() == [[1.0], [1.0]]


def test_default_pipeline_folds_the_hc_parallel_pattern_into_parallel_blocks() -> None:
    """HC n=2 with Eqs. 18-19 (fixed): after the pipeline, layers 1 and 2 read one value."""
    ir = hcdsl.lower(HC_PAR)
    assert ir.inputs("L1.norm")["x"] == ir.inputs("L2.norm")["x"]
    assert ir.inputs("L3.norm")["x"] == ir.inputs("L4.norm")["x"]
    assert "L1.attn" not in nx.ancestors(ir.g, "L2.ffn")


def test_ones_mix_copy_and_sum() -> None:
    before, after = before_after(SHC2, "ones-mix")
    # mix(h, [[1, 1]]) -> copy(h, 2); mix(H, [[1], [1]]) -> sum of the streams
    assert isinstance(before.payload("init.copy"), n.Mix) and const(before, "init.copy").tolist() == [[1, 1]]
    assert after.payload("init.copy") == n.Copy(2)
    assert after.payload("readout.sum") == n.SumStreams()
    assert "init.coef" not in after and "readout.coef" not in after
    assert str(after.types()["init.copy"]) == "H[2x16]"


def test_ones_mix_keeps_other_constants() -> None:
    ir = run(raw(PRE), ["fold-const-slice", "mix-to-add"])
    assert not get("ones-mix")(ir)  # pre-norm's remaining mixes are identities, not copies


def test_squeeze_single_stream() -> None:
    before, after = before_after(PRE, "squeeze-single-stream")
    # add(split1(T(h)), split1(h)) -> split1(add(T(h), h))
    assert after.inputs("L1.write") == {"s0": "L1.attn", "s1": "embed"}
    assert str(after.types()["L1.write"]) == "h[16]"
    assert after.inputs("L1.write.split")["x"] == "L1.write"
    assert str(after.types()["L1.write.split"]) == "H[1x16]"


def test_squeeze_single_stream_moves_post_norms() -> None:
    ir = run(raw(POST), PREREQ["squeeze-single-stream"] + ["squeeze-single-stream"])
    assert str(ir.types()["L1.post"]) == "h[16]"  # norm(split1(x)) -> split1(norm(x))


def test_split_stack_mix_writes_without_a_stack() -> None:
    before, after = before_after(DHC2, "split-stack-mix")
    assert isinstance(before.payload(before.inputs("L1.write")["x"]), n.Stack)
    # H' = mix(stack(T, H), M[0:3, 1:3]) -> mix(T, M[0:1, 1:3]) + mix(H, M[1:3, 1:3])
    assert after.payload("L1.write") == n.Add(2)
    parts = [after.payload(u) for u in after.inputs("L1.write").values()]
    assert parts == [n.Mix((0, 1), (1, 3)), n.Mix((1, 3), (1, 3))]
    assert not after.of_type(n.Stack)


def test_merge_sibling_mixes_reads_and_keeps_in_one_contraction() -> None:
    before, after = before_after(DHC2, "merge-sibling-mixes")
    # L1.read = mix(H, M[1:3, 0:1]) and the write's mix(H, M[1:3, 1:3]) share H and M
    both = after.inputs("L1.read")["x"]
    assert after.payload(both) == n.Mix((1, 3), (0, 3))
    assert after.payload("L1.read") == n.Take(0, 1)
    takes = [u for u in after.readers(both) if after.payload(u) == n.Take(1, 3)]
    assert len(takes) == 1 and "L1.write" in after.readers(takes[0])


def test_fuse_parallel_inputs_makes_one_input_matmul() -> None:
    shared = spec("parallel(shared)")
    before, after = before_after(shared, "fuse-parallel-inputs")
    assert before.inputs("L1.attn")["q"] == before.inputs("L2.ffn")["x"] == "L1-2.norm"
    fused = after.readers("L1-2.norm")
    assert len(fused) == 1 and isinstance(after.payload(fused[0]), n.ParallelLayers)
    assert after.payload(fused[0]).ids == ("L1.attn", "L2.ffn")
    # separate norms are different values: nothing to fuse
    assert not get("fuse-parallel-inputs")(run(raw(PAR_SEP), []))


def test_default_pipeline_pre_norm_is_plain_residual() -> None:
    ir = hcdsl.lower(PRE)
    assert not ir.of_type(n.Mix) and not ir.of_type(n.Split) and not ir.of_type(n.Merge)
    code = hcdsl.compile(PRE).code
    assert "l1_write = l1_attn + embed" in code
    assert "unflatten" not in code and "flatten" not in code


@pytest.mark.parametrize("name", list(SPECS))
def test_default_pipeline_verifies_after_every_pass(name: str) -> None:
    ir = raw(SPECS[name])
    log = run_pipeline(ir, DEFAULT, check=True)
    assert not run_pipeline(ir, DEFAULT, check=True)  # a fixed point
    if name not in ("shc2", "dhc2"):  # learned matrices: nothing to fold
        assert log


def test_disable_by_name() -> None:
    ir = hcdsl.lower(PRE, disable=["mix-to-add"])
    assert not ir.of_type(n.Add)


# -- numerical ----------------------------------------------------------------------------
def outputs(text: str, passes: list[str] | None, tokens: torch.Tensor,
            weights: dict[str, torch.Tensor] | None = None):
    """The logits, the state_dict and the gradient of a fixed projection of the logits,
    by parameter name (zeros where a parameter gets none, e.g. a layer nothing reads)."""
    model = hcdsl.compile(text, passes=passes, seed=7)
    if weights is not None:
        mine = model.state_dict()
        model.load_state_dict({k: v for k, v in weights.items() if k in mine}, strict=False)
    logits = model(tokens)
    probe = torch.randn(logits.shape, generator=torch.Generator().manual_seed(1))
    (logits * probe).sum().backward()
    grads = {k: p.grad if p.grad is not None else torch.zeros_like(p)
             for k, p in model.named_parameters()}
    return logits.detach(), model.state_dict(), grads


def same_grads(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """max |a - b| over the parameters both have (the names are the same with any passes)."""
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("name", list(PREREQ))
def test_pass_preserves_outputs(name: str) -> None:
    """fx with the pass == fx without it: the logits and every parameter's gradient."""
    tokens = torch.randint(0, 32, (2, 6), generator=torch.Generator().manual_seed(0))
    fired = False
    for text in SPECS.values():
        base, weights, g_base = outputs(text, None, tokens)
        prior, _, g_prior = outputs(text, PREREQ[name], tokens, weights)
        ir = run(raw(text), PREREQ[name])
        fired |= get(name)(ir)
        after, _, g_after = outputs(text, PREREQ[name] + [name], tokens, weights)
        assert (prior - base).abs().max().item() <= 1e-5
        assert (after - prior).abs().max().item() <= 1e-5
        assert same_grads(g_prior, g_base) <= 1e-4
        assert same_grads(g_after, g_prior) <= 1e-4
    assert fired, f"{name} changed none of the specs: the numeric test proves nothing"


def with_junk(text: str) -> IR:
    """A verified IR plus a dead branch: a mix of one stream of the embedding, normed."""
    ir = run(raw(text), DCE_PREREQ)
    ir.add("junk.split", n.Split(1), x="embed")
    ir.add("junk.coef", n.ConstCoef(((2.0,),)))
    ir.add("junk.mix", n.Mix((0, 1), (0, 1)), x="junk.split", coef="junk.coef")
    ir.add("junk.norm", n.Norm("layernorm", True, 1e-5, 16), x="junk.mix")
    return ir


def test_dce_preserves_outputs() -> None:
    from hcdsl.backends import lower_fx
    from hcdsl.nn.modules import build_parts

    tokens = torch.randint(0, 32, (2, 6), generator=torch.Generator().manual_seed(0))
    for text in SPECS.values():
        ir = with_junk(text)
        before = lower_fx(ir, build_parts(ir, seed=3))
        assert prune_dead(ir) == 4
        verify(ir, after="dce")
        after = lower_fx(ir, build_parts(ir, seed=3))
        with torch.no_grad():
            assert (after(tokens) - before(tokens)).abs().max().item() <= 1e-6


def test_default_pipeline_preserves_outputs() -> None:
    tokens = torch.randint(0, 32, (2, 6), generator=torch.Generator().manual_seed(1))
    for text in SPECS.values():
        base, weights, g_base = outputs(text, None, tokens)
        after, _, g_after = outputs(text, DEFAULT, tokens, weights)
        assert (after - base).abs().max().item() <= 1e-5
        assert same_grads(g_after, g_base) <= 1e-4
