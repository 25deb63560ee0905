"""The compiled decode step of the wrapped multi-stream models (issue 17): one token from the
layers' own transformers caches, traced by dynamo.

- No graph break in hcdsl's code (`torch._dynamo.explain` of the step on the tests' configs,
  indexed-attention blocks included): DeepSeek-V4's step is one graph; GLM-5-next's and
  Qwen4-exp's break only inside transformers' indexer code (a `torch.nonzero`, whose output
  shape depends on the data). Before the fix the context read the cache's length with
  `int(cache.get_seq_length())` (a `.item()` on the linear-attention cache layer's counter),
  which broke every GLM-5-next and Qwen4-exp step in hcdsl/wrap/context.py (explain fails
  then; a fullgraph compile does not show it: under fullgraph dynamo captures `.item()` and
  `nonzero` as unbacked sizes).
- `torch.compile(fullgraph=True)` of the step (DeepSeek-V4's and GLM-5-next's test configs,
  Qwen4-exp without its QSA block): greedy tokens equal transformers' `generate`, each
  step's logits equal transformers' own cached steps (Qwen4-exp: its full forward), and the
  step stops recompiling once the caches have their final sizes (the house pattern of
  tests/backends/test_decode.py; the graph count is `counters["stats"]["unique_graphs"]`).
  backend="eager" (dynamo's graph, run by eager PyTorch) in the default suite, inductor in
  the slow one.
- Qwen4-exp with its QSA block: compiled without fullgraph (the breaks stay in transformers'
  code) the step gives the eager tokens; with fullgraph dynamo stops in transformers'
  indexer (a Python `if` on a data-dependent size).
Tiny random configs of test_wrap_multistream.py / test_wrap_generate.py."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

import hcdsl
from hcdsl.nn.decode import decoding

transformers = pytest.importorskip("transformers")
from tests.apps.test_wrap_generate import glm_lm, transformers_stepped  # noqa: E402
from tests.apps.test_wrap_multistream import ds_model, qwen_model, theirs, tokens  # noqa: E402

HCDSL = str(Path(hcdsl.__file__).resolve().parent)
LINEAR = {"layer_types": ["linear_attention", "linear_attention"]}
PROMPT = 5
# the tests' configs (GLM-5-next's and Qwen4-exp's with an indexed-attention block)
MODELS = {"deepseek_v4": ds_model, "glm5_next": glm_lm, "qwen4_exp": qwen_model}
# the file of transformers' own code where the remaining breaks are
INDEXER = {"glm5_next": ("modeling_glm5_next.py", "get_pooled_states"),
           "qwen4_exp": ("modeling_qwen4_exp.py", "_select_tokens")}


def explain_step(w: torch.nn.Module, prompt: torch.Tensor):  # noqa: ANN201 - ExplainOutput
    """dynamo's account of one decode step (the token after `prompt`, prefilled eagerly)."""
    torch._dynamo.reset()
    with torch.no_grad(), decoding(w, prompt.shape[1] + 1) as state:
        out = w(prompt)
        state.advance(prompt.shape[1])
        return torch._dynamo.explain(w)(out[:, -1].argmax(-1, keepdim=True))


@pytest.mark.parametrize("name", list(MODELS))
def test_no_graph_break_in_hcdsl(name: str, one_thread: None) -> None:
    """Every graph break of the decode step is inside transformers' indexer (the innermost
    frame in its modeling file, a data-dependent `nonzero`), none in hcdsl's code."""
    w = hcdsl.wrap(MODELS[name]()).eval()
    ex = explain_step(w, tokens(2, (2, PROMPT)))
    where = [(b.user_stack[-1].filename, b.user_stack[-1].name, b.reason)
             for b in ex.break_reasons]
    print(f"{name}: {ex.graph_count} graphs, {ex.graph_break_count} breaks")
    for file, fn, reason in where:
        print(f"  {file.split('site-packages/')[-1]} {fn}: {reason.splitlines()[0]}")
    assert not [w for w in where if w[0].startswith(HCDSL)], where
    if name == "deepseek_v4":
        assert ex.graph_break_count == 0 and ex.graph_count == 1, where
        return
    file, fn = INDEXER[name]
    assert ex.graph_break_count > 0
    assert all(f.endswith(file) and n == fn and "nonzero" in r for f, n, r in where), where


def compiled_decode(w: torch.nn.Module, prompt: torch.Tensor, new: int,
                    backend: str) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Greedy decoding: the prompt eagerly, every later token by the fullgraph-compiled
    step. The sequence, the logits that chose each new token (B, new, V), and the graph
    count after each compiled step."""
    torch._dynamo.reset()
    counters.clear()
    fast = torch.compile(w, fullgraph=True, backend=backend)
    seq, logits, graphs = prompt, [], []
    with torch.no_grad(), decoding(w, prompt.shape[1] + new) as state:
        out = w(prompt)[:, -1]
        state.advance(prompt.shape[1])
        while True:
            logits.append(out)
            seq = torch.cat([seq, out.argmax(-1, keepdim=True)], dim=1)
            if len(logits) == new:
                break
            out = fast(seq[:, -1:].clone())[:, -1]  # a fresh one-token input (its own strides)
            graphs.append(counters["stats"]["unique_graphs"])
            state.advance(1)
    return seq, torch.stack(logits, 1), graphs


def check_compiled_decode(name: str, backend: str) -> None:
    new = 12
    patch = nullcontext()
    if name == "deepseek_v4":
        m = ds_model()
        # transformers' DynamicCache keeps Python ints (the sliding window's
        # cumulative_length, the compressor's entry_count); reached through the wrapped
        # module, dynamo takes them for static module attributes and recompiles at every
        # step until fullgraph fails at its recompile limit (8), unless they may be dynamic
        patch = torch._dynamo.config.patch(allow_unspec_int_on_nn_module=True)
    elif name == "glm5_next":
        m = glm_lm()  # with the indexed-attention block: one graph under fullgraph
    else:
        m = qwen_model(**LINEAR)  # the QSA indexer does not trace under fullgraph (docs)
    w = hcdsl.wrap(m).eval()
    prompt = tokens(2, (2, PROMPT))
    with patch:
        seq, logits, graphs = compiled_decode(w, prompt, new, backend)
    print(name, backend, "graphs after each compiled step:", graphs)
    # transformers' own cached decoding is the reference where it runs; a Qwen4-exp of
    # linear-attention blocks alone cannot decode with transformers' cache (its
    # create_causal_mask raises on a cache without an attention layer): there the
    # reference is transformers without a cache (the whole sequence at every step)
    hf_cache = name != "qwen4_exp"
    want = m.generate(prompt, max_new_tokens=new, do_sample=False, use_cache=hf_cache,
                      pad_token_id=0)
    assert torch.equal(seq, want), (seq, want)
    ref = transformers_stepped(m, seq) if hf_cache else theirs(m, seq)
    diff = (logits - ref[:, PROMPT - 1:-1]).abs().max().item()
    print(name, backend, "max |compiled step logits - transformers'|:", diff)
    assert diff <= 1e-5
    assert graphs[-1] >= 1 and len(set(graphs[-4:])) == 1, graphs  # no recompile at the end


@pytest.mark.parametrize("name", [
    pytest.param("deepseek_v4", marks=pytest.mark.slow),  # ~36 s: 7 graphs (see above)
    "glm5_next", "qwen4_exp"])
def test_compiled_decode_fullgraph(name: str, one_thread: None) -> None:
    check_compiled_decode(name, "eager")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_decode_fullgraph_inductor(name: str, one_thread: None) -> None:
    check_compiled_decode(name, "inductor")


def qwen_indexed_step(fullgraph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen4-exp with its QSA block: greedy tokens with the one-token step compiled, and
    hcdsl.generate's eager tokens."""
    w = hcdsl.wrap(qwen_model()).eval()
    prompt = tokens(2, (2, PROMPT))
    torch._dynamo.reset()
    fast = torch.compile(w, backend="eager", fullgraph=fullgraph)
    seq = prompt
    with torch.no_grad(), decoding(w, PROMPT + 6) as state:
        out = w(prompt)[:, -1]
        state.advance(PROMPT)
        for _ in range(5):
            seq = torch.cat([seq, out.argmax(-1, keepdim=True)], dim=1)
            out = fast(seq[:, -1:].clone())[:, -1]
            state.advance(1)
    seq = torch.cat([seq, out.argmax(-1, keepdim=True)], dim=1)
    return seq, hcdsl.generate(w, prompt, max_new_tokens=6, temperature=0)


@pytest.mark.slow  # 11-33 s (load 1-4): a graph per break
def test_qwen4_indexed_decode_compiles_with_breaks(one_thread: None) -> None:
    """With the QSA block the step compiles with graph breaks (inside transformers' indexer,
    not in hcdsl): the same greedy tokens as eager decoding."""
    got, eager = qwen_indexed_step(fullgraph=False)
    assert torch.equal(got, eager)


def test_qwen4_indexed_fullgraph_stops_in_transformers(one_thread: None) -> None:
    """Under fullgraph the QSA indexer's Python branch on a data-dependent size
    (`if num_complete_blocks > 0:`, Qwen4ExpTextQSAIndexer._select_tokens) cannot be
    traced: dynamo's error names that line of transformers' modeling file. If this test
    fails, transformers traces now: update docs/wrap.md and test the compiled step."""
    with pytest.raises(Exception, match="data-dependent") as err:
        qwen_indexed_step(fullgraph=True)
    assert "modeling_qwen4_exp.py\", line 847" in str(err.value), str(err.value)
