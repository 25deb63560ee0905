"""hcdsl.wrap on transformers models built from small random-weight configs (nothing is
downloaded): every family whose init is Pre-Norm gives the original logits, HC up to its
final norm's eps, masks and hidden states as transformers computes them, one graph under
torch.compile, training, state_dict round trips, parameter groups, the prover, errors."""

from __future__ import annotations

import copy

import pytest
import torch

import hcdsl
from hcdsl.errors import CompileError, HcError
from hcdsl.wrap.hf import Attention
from tests.helpers import assert_same

transformers = pytest.importorskip("transformers")

VOCAB = 64
CONFIGS = {
    "gpt2": lambda: transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=VOCAB,
                                            n_positions=32, bos_token_id=0, eos_token_id=0),
    "llama": lambda: transformers.LlamaConfig(
        num_hidden_layers=2, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=32),
    "qwen2": lambda: transformers.Qwen2Config(
        num_hidden_layers=2, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=64, vocab_size=VOCAB, max_position_embeddings=32),
}
# the families whose init is exactly Pre-Norm (README's table: "yes")
AT_INIT = ["residual", "frac(m=4)", "frac(m=4, dynamic)", "mudd", "mudd(ways=1)",
           "denseformer", "mhc(n=4, identity, readout=mean)"]


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """One model per architecture, built once (construction is the slow part)."""
    torch.manual_seed(0)
    return {name: transformers.AutoModelForCausalLM.from_config(make()).eval()
            for name, make in CONFIGS.items()}


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 12)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def logits(model: torch.nn.Module, x: torch.Tensor, **kw: object) -> torch.Tensor:
    with torch.no_grad():
        out = model(x, **kw)
    return out.logits if hasattr(out, "logits") else out


@pytest.mark.parametrize("arch", CONFIGS)
@pytest.mark.parametrize("connection", AT_INIT)
def test_equal_at_init(models: dict, arch: str, connection: str, one_thread: None) -> None:
    model = models[arch]
    wrapped = hcdsl.wrap(model, connection).eval()
    x = tokens()
    assert (logits(wrapped, x) - logits(model, x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("arch", CONFIGS)
def test_hc_equals_the_original_up_to_its_final_norms_eps(models: dict, arch: str,
                                                          one_thread: None) -> None:
    """HC's readout sums n equal streams: n·h. A norm is scale-invariant up to eps,
    norm(n·h; ε) = norm(h; ε/n²), so DHC x4 at init is *exactly* the original model with
    its final norm's eps divided by 16; against the original itself it differs by what
    that eps change makes (measured here, and small: eps is 1e-5/1e-6 and var(h) ~ 4e-4)."""
    model = models[arch]
    wrapped = hcdsl.wrap(model, "hyper(n=4, dynamic)").eval()
    x = tokens()
    same_eps = copy.deepcopy(model)
    final = same_eps.transformer.ln_f if arch == "gpt2" else same_eps.model.norm
    attr = "eps" if arch == "gpt2" else "variance_epsilon"
    setattr(final, attr, getattr(final, attr) / 16)
    assert (logits(wrapped, x) - logits(same_eps, x)).abs().max().item() <= 1e-5
    raw = (logits(wrapped, x) - logits(model, x)).abs().max().item()
    assert 0 < raw <= 1e-2


def test_padding_mask_and_hidden_states_as_transformers(models: dict, one_thread: None) -> None:
    x = tokens()
    pad = torch.ones(2, 12, dtype=torch.long)
    pad[0, :4] = 0  # left padding
    for arch, model in models.items():
        wrapped = hcdsl.wrap(model, "residual").eval()
        got, want = logits(wrapped, x, mask=pad), logits(model, x, attention_mask=pad)
        assert (got - want)[pad.bool()].abs().max() <= 1e-5, arch
        with torch.no_grad():
            ours = wrapped(x, return_hidden=True).hidden
            theirs = model(x, output_hidden_states=True).hidden_states
        # the input of every block's attention is transformers' hidden state of that block
        assert all((a - b).abs().max() <= 1e-5 for a, b in zip(ours[0::2], theirs[:-1])), arch


def test_eager_attention_and_separate_q_k_v(models: dict, one_thread: None) -> None:
    """The eager implementation (masks added to the scores) and MUDD's separate q, k, v
    projections (GPT-2's fused c_attn split by columns) give the model's attention."""
    for arch in ("gpt2", "llama"):
        eager = transformers.AutoModelForCausalLM.from_config(
            CONFIGS[arch](), attn_implementation="eager").eval()
        eager.load_state_dict(models[arch].state_dict())
        x, pad = tokens(), torch.ones(2, 12)
        pad[1, :2] = 0
        for conn in ("residual", "mudd"):
            wrapped = hcdsl.wrap(eager, conn).eval()
            assert (logits(wrapped, x) - logits(eager, x)).abs().max() <= 1e-5
            diff = logits(wrapped, x, mask=pad) - logits(eager, x, attention_mask=pad)
            assert diff[pad.bool()].abs().max() <= 1e-5
        attn = next(m for m in wrapped.modules() if isinstance(m, Attention))
        h = torch.randn(2, 12, 32)
        with torch.no_grad():  # one tensor on three ports, or three equal tensors
            assert (attn(h, h, h) - attn(h.clone(), h.clone(), h.clone())).abs().max() <= 1e-6


def test_sliding_windows_and_tied_heads(one_thread: None) -> None:
    """Mistral applies its config's sliding window to every layer, Qwen2 to its
    sliding_attention layers only; a tied Llama head is the embedding (tied=true)."""
    small = dict(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=64, vocab_size=VOCAB)
    configs = [transformers.MistralConfig(**small, sliding_window=4),
               transformers.Qwen2Config(**small, use_sliding_window=True, sliding_window=4,
                                        max_window_layers=1),
               transformers.LlamaConfig(**small, tie_word_embeddings=True)]
    x, pad = tokens(), torch.ones(2, 12)
    pad[0, :3] = 0
    for config in configs:
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
        for conn in ("residual", "mudd"):
            wrapped = hcdsl.wrap(model, conn).eval()
            assert (logits(wrapped, x) - logits(model, x)).abs().max() <= 1e-5, config
            diff = logits(wrapped, x, mask=pad) - logits(model, x, attention_mask=pad)
            assert diff[pad.bool()].abs().max() <= 1e-5, config
    assert "tied=true" in wrapped.hc_text


def test_fx_and_reference_agree(models: dict, one_thread: None) -> None:
    model = models["llama"]
    fx = hcdsl.wrap(model, "hyper(n=2, dynamic)", seed=0)
    ref = hcdsl.wrap(model, "hyper(n=2, dynamic)", seed=0, backend="reference")
    assert_same(fx, ref, tokens())


def test_one_graph_under_torch_compile(models: dict, one_thread: None) -> None:
    """Rotary embeddings and masks are made inside the adapters from the input: no graph
    break (torch.compile(fullgraph=True) traces the whole model)."""
    mask = torch.ones(2, 12)
    mask[0, :2] = 0
    for arch, conn in (("llama", "hyper(n=4, dynamic)"), ("gpt2", "mudd")):
        wrapped = hcdsl.wrap(models[arch], conn).eval()
        torch._dynamo.reset()
        explained = torch._dynamo.explain(wrapped)(tokens(), mask=mask)
        assert explained.graph_count == 1 and explained.graph_break_count == 0, \
            explained.break_reasons
    torch._dynamo.reset()  # the traced graph runs (backend "eager": no inductor build)
    compiled = torch.compile(wrapped, fullgraph=True, backend="eager")
    assert (logits(compiled, tokens(), mask=mask) - logits(wrapped, tokens(), mask=mask)) \
        .abs().max() <= 1e-6
    torch._dynamo.reset()


def test_the_callers_model_is_kept_or_shared(models: dict) -> None:
    model = models["gpt2"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = hcdsl.wrap(model, "hyper(n=2)")
    with torch.no_grad():
        for p in wrapped.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    shared = hcdsl.wrap(model, "residual", inplace=True)
    ours = {p.data_ptr() for p in shared.parameters()}
    assert {p.data_ptr() for p in model.parameters()} <= ours


def test_trains_saves_and_loads(one_thread: None) -> None:
    """DHC x4 around a small Llama on bytes of a fixed text: the loss goes down with AdamW
    and hcdsl.param_groups; the state_dict loads into a fresh wrap of another model."""
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                   num_key_value_heads=2, intermediate_size=64,
                                   vocab_size=256, max_position_embeddings=64)
    wrapped = hcdsl.wrap(transformers.AutoModelForCausalLM.from_config(cfg),
                         "hyper(n=4, dynamic)", seed=0).train()
    text = (b"the quick brown fox jumps over the lazy dog; " * 8)[:4 * 33]
    data = torch.tensor(list(text)).view(4, 33)
    opt = torch.optim.AdamW(hcdsl.param_groups(wrapped, weight_decay=0.1), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = wrapped(data[:, :-1], targets=data[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
    fresh = hcdsl.wrap(transformers.AutoModelForCausalLM.from_config(cfg),
                       "hyper(n=4, dynamic)", seed=1)
    fresh.load_state_dict(wrapped.state_dict())
    wrapped.eval(), fresh.eval()
    assert torch.equal(logits(wrapped, data[:, :-1]), logits(fresh, data[:, :-1]))


def test_parameter_groups(models: dict) -> None:
    """The HF layers' weights decay; norms, biases, embeddings and the connection's static
    parameters do not; the dynamic projections do (HC paper §4)."""
    groups = {g["name"]: g for g in hcdsl.param_groups(hcdsl.wrap(models["gpt2"],
                                                                  "hyper(n=4, dynamic)"))}
    wrapped = hcdsl.wrap(models["gpt2"], "hyper(n=4, dynamic)")
    name = {id(p): n for n, p in wrapped.named_parameters()}
    by = {g["name"]: {name[id(p)] for p in g["params"]}
          for g in hcdsl.param_groups(wrapped, weight_decay=0.1)}
    assert "L1_attn0.attn.c_attn.weight" in by["decay: weights"]
    assert "L2_mlp0.c_fc.weight" in by["decay: weights"]
    assert "L1_coef.w_gain" in by["decay: dynamic connections"]
    assert "L1_coef.static_mix" in by["no decay: static connections"]
    assert {"L1_norm.weight", "final_norm.weight"} <= by["no decay: norms"]
    assert {"embed.tokens.weight", "embed.positions.weight"} == by["no decay: embeddings"]
    assert "L1_attn0.attn.c_attn.bias" in by["no decay: biases and 1-D"]
    assert groups["decay: weights"]["weight_decay"] == 0.1
    assert sum(len(g) for g in by.values()) == len(list(wrapped.parameters()))


def test_prove_compares_wrapped_models(models: dict) -> None:
    """The wrapped module's IR is an hcdsl IR: DHC x4 and FC equal Pre-Norm at init (HC up to
    scale), mHC's paper init does not; its text is a spec the prover also reads."""
    model = models["llama"]
    pre = hcdsl.wrap(model, "residual")
    hc = hcdsl.wrap(model, "hyper(n=4, dynamic)")
    result = hcdsl.prove(hc.hc_ir, pre.hc_ir, at_init=True)
    assert result.equivalent and [a.name for a in result.assumptions] == ["scale-invariant"]
    assert hcdsl.prove(hcdsl.wrap(model, "frac(m=4)").hc_ir, pre.hc_text, at_init=True) \
        .equivalent
    paper = hcdsl.prove(hcdsl.wrap(model, "mhc(n=4)").hc_ir, pre.hc_ir, at_init=True)
    assert paper.verdict == "NOT EQUIVALENT"


def test_a_connection_written_as_text(models: dict) -> None:
    text = """
    connection laurel_rw {
      param alpha = scalar(init=1, bound=double)
      param beta = scalar(init=1, bound=double)
      all = [[0, alpha], [1, beta]]
    }
    connect laurel_rw
    """
    model = models["qwen2"]
    wrapped = hcdsl.wrap(model, text).eval()
    assert "connection laurel_rw" in wrapped.hc_text
    assert (logits(wrapped, tokens()) - logits(model, tokens())).abs().max() <= 1e-5


@pytest.mark.parametrize("connection, error, message", [
    ("residual(post)", CompileError, "gives layer 'attn0' no pre-norm of its own"),
    ("parallel", CompileError, "shares one norm between layers 'attn0' and 'mlp0'"),
    ("hyper(m=4)", HcError, "unknown option 'm' for connection 'hyper'"),
    ("model x { dim = 4 }", CompileError, "takes the connection only, not a model"),
    ("connection c { all = [[0, 1], [1, 1]] }", CompileError, "does not use it"),
])
def test_bad_connections(models: dict, connection: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        hcdsl.wrap(models["gpt2"], connection)


def test_unsupported_models_are_named() -> None:
    cfg = transformers.GPTNeoXConfig(num_hidden_layers=1, hidden_size=32,
                                     num_attention_heads=2, intermediate_size=64,
                                     vocab_size=VOCAB)
    neox = transformers.AutoModelForCausalLM.from_config(cfg)
    with pytest.raises(CompileError, match=r"does not recognise the transformers model "
                                           r"GPTNeoXForCausalLM \(model_type 'gpt_neox'\)"):
        hcdsl.wrap(neox, "residual")
    base = transformers.AutoModel.from_config(CONFIGS["llama"]())
    with pytest.raises(CompileError, match="takes a causal language model with an lm_head"):
        hcdsl.wrap(base, "residual")
    with pytest.raises(CompileError, match="does not recognise Linear"):
        hcdsl.wrap(torch.nn.Linear(4, 4), "residual")


def test_the_docs_generate_save_and_write_back_snippet_runs(tmp_path, monkeypatch,
                                                            one_thread: None) -> None:
    """docs/wrap.md's snippet for what a wrapped model lacks (generate, save_pretrained,
    config) runs as written; its greedy loop matches argmax decoding step by step, the
    reloaded model equals the saved one, and with inplace=True a change to the wrapped
    model's layers is in llama's save_pretrained output."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "wrap.md").read_text()
    section = text[text.index("## Generating, saving, the config"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(code, "docs/wrap.md", "exec"), ns)  # noqa: S102 - our own docs
    dhc, again, llama, out = ns["dhc"], ns["again"], ns["llama"], ns["out"]
    assert out.shape == (1, 8) and torch.equal(out[:, :3], torch.tensor([[1, 2, 3]]))
    with torch.no_grad():
        for t in range(3, 8):  # each generated token is the argmax after its prefix
            assert out[0, t] == dhc(out[:, :t])[0, -1].argmax()
        x = tokens(shape=(2, 6))
        assert torch.equal(again.eval()(x), dhc(x))
        dhc.L1_attn0.attn.q_proj.weight.add_(1.0)  # "training" the wrapped model
    assert torch.equal(llama.model.layers[0].self_attn.q_proj.weight,
                       dhc.L1_attn0.attn.q_proj.weight)
    llama.save_pretrained(tmp_path / "written")
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "written")
    assert torch.equal(back.model.layers[0].self_attn.q_proj.weight,
                       dhc.L1_attn0.attn.q_proj.weight)
