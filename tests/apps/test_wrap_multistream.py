"""hcdsl.wrap on the transformers models that ship multi-stream residuals (issue 17), built
from tiny random configs (nothing downloaded): the connection read out of the model as a
generator spec, logits equal to transformers' own forward (fp32 with and without padding,
bf16), re-wiring, the prover, training, write-back, generation, torch.compile."""

from __future__ import annotations

import copy

import pytest
import torch

import hcdsl
from hcdsl.errors import CompileError
from hcdsl.wrap import deepseek_v4

transformers = pytest.importorskip("transformers")
from transformers import DeepseekV4Config, DeepseekV4ForCausalLM  # noqa: E402

VOCAB = 64


def ds_config(hc_mult: int = 4, **kw: object) -> DeepseekV4Config:
    """Two blocks: a sliding-window layer with a hash-routed MoE, a compressed-sparse one
    (CSA: compressor and indexer) with a top-k MoE."""
    base = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                head_dim=16, q_lora_rank=16, o_groups=2, o_lora_rank=8, num_local_experts=4,
                num_experts_per_tok=2, intermediate_size=32, hc_mult=hc_mult,
                layer_types=["sliding_attention", "compressed_sparse_attention"],
                mlp_layer_types=["hash_moe", "moe"], max_position_embeddings=64,
                sliding_window=8, attn_implementation="eager", hc_eps=1e-2)
    base.update(kw)
    return DeepseekV4Config(**base)


def ds_model(seed: int = 0, **kw: object) -> DeepseekV4ForCausalLM:
    """Every connection parameter, sink and norm moved off its init (transformers inits
    base 0 and scale 1: a wrong row split or a misplaced eps would not show at init), a
    random token -> expert table for the hash routing."""
    torch.manual_seed(seed)
    m = DeepseekV4ForCausalLM(ds_config(**kw)).eval()
    with torch.no_grad():
        for lay in m.model.layers:
            if lay.mlp.is_hash:
                lay.mlp.gate.tid2eid.copy_(torch.randint(0, 4, lay.mlp.gate.tid2eid.shape))
        for name, p in m.named_parameters():
            if any(k in name for k in ("_hc.", "hc_head", "sinks", "norm")):
                p.add_(0.3 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def ds() -> tuple[DeepseekV4ForCausalLM, torch.nn.Module]:
    m = ds_model()
    return m, hcdsl.wrap(m).eval()


def tokens(seed: int = 0, shape: tuple[int, int] = (2, 12)) -> torch.Tensor:
    return torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(seed))


def theirs(model: torch.nn.Module, x: torch.Tensor, **kw: object) -> torch.Tensor:
    with torch.no_grad():
        return model(x, use_cache=False, **kw).logits


def ours(model: torch.nn.Module, x: torch.Tensor, **kw: object) -> torch.Tensor:
    with torch.no_grad():
        return model(x, **kw)


# -- 1. the connection read out -------------------------------------------------------------

def test_own_connection_is_the_generator_spec(ds) -> None:
    """The spec found is specs/families/deepseek_v4_mhc.hc's connection with this model's
    numbers (n = 4, rms_norm_eps 1e-6, hc_eps 1e-2, 20 iterations), around extern layers."""
    _, w = ds
    text = w.hc_text
    assert "connect deepseek_v4_mhc" in text and "streams = 4" in text
    assert "norm = rmsnorm(weight=none, eps=1e-06)" in text
    assert "read = linear(act=sigmoid, scale=1, bias=0, add=0.01)" in text
    assert "constraint=sinkhorn(order=softmax_rows, iters=20, eps=0.01)" in text
    assert "layer attn0 = extern wrapped(block=0, index=0)" in text
    assert "layer moe1 = extern wrapped(block=1, index=1)" in text


def test_weights_carried_by_rows(ds) -> None:
    """fn = [W_pre; W_post; W_res], base likewise, scale = (s_pre, s_post, s_res)."""
    m, w = ds
    coefs, readout = deepseek_v4.coef_modules(w, 4)
    hc = m.model.layers[1].ffn_hc  # the 4th sub-layer: L4
    o = coefs[3].outs
    assert torch.equal(o["write"].weight, hc.fn[4:8])
    assert torch.equal(o["res"].bias.reshape(-1), hc.base[8:])
    assert torch.equal(o["res"].scale.reshape(()), hc.scale[2])
    assert torch.equal(readout.outs["readout"].weight, m.model.hc_head.hc_fn)


def test_unknown_hyper_connection_is_named() -> None:
    m = ds_model()
    m.model.layers[0].attn_hc = torch.nn.Identity()
    with pytest.raises(CompileError, match="attn_hc: Identity"):
        hcdsl.wrap(m)


# -- 2. equal to transformers ---------------------------------------------------------------

def test_logits_equal_transformers_fp32(ds, one_thread: None) -> None:
    m, w = ds
    x = tokens()
    assert (ours(w, x) - theirs(m, x)).abs().max().item() <= 1e-5


def test_logits_equal_transformers_with_padding(ds, one_thread: None) -> None:
    """Left padding: the padding rows see no key in transformers (only the sink) and reach
    real tokens through the CSA compressor, so they must be computed as transformers does."""
    m, w = ds
    x = tokens(1)
    pad = torch.ones(2, 12, dtype=torch.long)
    pad[0, :4] = 0
    diff = (ours(w, x, mask=pad) - theirs(m, x, attention_mask=pad))[pad.bool()]
    assert diff.abs().max().item() <= 1e-5


def test_logits_bf16_within_rounding(one_thread: None) -> None:
    """bf16 model, connection in fp32 (transformers keeps the HC modules in fp32; so does
    the wrap): the difference to transformers' bf16 forward is of the size bf16 rounding
    makes, measured as the fp32 -> bf16 change of transformers' own logits."""
    m = ds_model()
    x = tokens()
    ref32 = theirs(m, x)
    m16 = copy.deepcopy(m).to(torch.bfloat16)
    for lay in m16.model.layers:  # as from_pretrained keeps them (_keep_in_fp32_modules)
        lay.attn_hc.float(), lay.ffn_hc.float()
    m16.model.hc_head.float()
    w16 = hcdsl.wrap(m16).eval()
    coefs, readout = deepseek_v4.coef_modules(w16, 4)
    assert all(p.dtype == torch.float32 for c in coefs for p in c.parameters())
    rounding = (theirs(m16, x).float() - ref32).abs().max().item()
    diff = (ours(w16, x).float() - theirs(m16, x).float()).abs().max().item()
    assert diff <= max(rounding, 1e-2), (diff, rounding)


# -- 3. re-wiring and the prover ------------------------------------------------------------

@pytest.mark.parametrize("connection", ["residual", "hyper(n=4, dynamic)"])
def test_rewire(ds, connection: str, one_thread: None) -> None:
    """Another connection around the same layers: it runs, keeps the layers' weights, and
    residual is the Pre-Norm model of those layers (not DeepSeek-V4's mHC)."""
    m, _ = ds
    w = hcdsl.wrap(m, connection).eval()
    x = tokens()
    out = ours(w, x)
    assert out.shape == (2, 12, VOCAB) and torch.isfinite(out).all()
    assert f"connect {connection}" in w.hc_text
    assert (out - theirs(m, x)).abs().max().item() > 1e-3  # a different model


def test_prover_hc_mult_1_vs_prenorm() -> None:
    """DeepSeek-V4 with one stream: pre = sigmoid(.) + eps, post = 2 sigmoid(.), comb = 1 /
    (1 + eps)-ish; the prover decides it against Pre-Norm (not equivalent: the gates are
    learned functions of the token)."""
    m = ds_model(hc_mult=1)
    own, res = hcdsl.wrap(m), hcdsl.wrap(m, "residual")
    result = hcdsl.prove(own.hc_ir, res.hc_ir)
    assert not result.equivalent


# -- 4. training, write-back, generation, compile -------------------------------------------

def test_training_step_and_write_back(one_thread: None) -> None:
    """One SGD step on the wrapped model; written back (layers shared with inplace=True,
    the connection by write_back), the transformers model's own forward gives the trained
    wrapped model's logits, and its state_dict loads strictly into a fresh DeepseekV4."""
    m = ds_model()
    w = hcdsl.wrap(m, inplace=True).train()
    x = tokens()
    before = theirs(m.eval(), x)
    opt = torch.optim.SGD(w.parameters(), lr=0.5)
    out = w(x[:, :-1], targets=x[:, 1:])
    out.loss.backward()
    opt.step()
    w.eval()
    deepseek_v4.write_back(w, m)
    after = theirs(m, x)
    assert (after - before).abs().max().item() > 1e-4  # the step changed the model
    assert (ours(w, x) - after).abs().max().item() <= 1e-5
    fresh = DeepseekV4ForCausalLM(ds_config()).eval()
    fresh.load_state_dict(m.state_dict(), strict=True)
    assert (theirs(fresh, x) - after).abs().max().item() <= 1e-5


def test_greedy_generation_equals_transformers(ds, one_thread: None) -> None:
    """hcdsl.generate (with the layers' own caches, tests/apps/test_wrap_generate.py) == transformers'
    generate, greedy, same weights."""
    m, w = ds
    prompt = tokens(2, (1, 5))
    got = hcdsl.generate(w, prompt, max_new_tokens=6, temperature=0)
    want = m.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False,
                      pad_token_id=0)
    assert torch.equal(got, want)


@pytest.mark.slow  # ~285 s on the shared 2-core machine
def test_compile_fullgraph(ds, one_thread: None) -> None:
    """One graph (the token tap's attribute write is traced), the same logits."""
    m, w = ds
    x = tokens()
    compiled = torch.compile(w, fullgraph=True)
    assert (ours(compiled, x) - theirs(m, x)).abs().max().item() <= 1e-5


# -- 5. GLM-5-next (hidden states) -----------------------------------------------------------

def glm_config(**kw: object) -> transformers.Glm5NextTextConfig:
    base = dict(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=32, moe_intermediate_size=16,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, n_routed_experts=4,
        num_experts_per_tok=2, kv_lora_rank=16, q_lora_rank=16, v_head_dim=8,
        qk_nope_head_dim=8, index_topk=4, index_head_dim=8, index_n_heads=2,
        linear_head_dim=8, linear_num_heads=4, mlp_layer_types=["dense", "sparse"],
        layer_types=["linear_attention", "indexed_attention"], pad_token_id=0, index_kpool=4,
        hc_eps=1e-2, attn_implementation="eager")
    base.update(kw)
    return transformers.Glm5NextTextConfig(**base)


def glm_model(seed: int = 0, **kw: object) -> torch.nn.Module:
    """A linear-attention (KDA) block with a dense MLP and an indexed-attention block (top-4
    of 12 keys: the indexer selects) with a MoE; HC parameters and norms off their init."""
    torch.manual_seed(seed)
    m = transformers.Glm5NextTextModel(glm_config(**kw)).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "_hc." in name or "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return m


def glm_hidden(model: torch.nn.Module, x: torch.Tensor, **kw: object) -> torch.Tensor:
    with torch.no_grad():
        return model(x, use_cache=False, **kw).last_hidden_state


@pytest.fixture(scope="module")
def glm() -> tuple[torch.nn.Module, torch.nn.Module]:
    m = glm_model()
    return m, hcdsl.wrap(m).eval()


def test_glm5_own_connection_and_hidden_states_equal(glm, one_thread: None) -> None:
    m, w = glm
    assert "readout = [0.25, 0.25, 0.25, 0.25]" in w.hc_text
    assert "norm = rmsnorm(weight=none, eps=1e-05)" in w.hc_text
    x = tokens()
    assert (ours(w, x) - glm_hidden(m, x)).abs().max().item() <= 1e-5
    pad = torch.ones(2, 12, dtype=torch.long)
    pad[0, :4] = 0
    diff = (ours(w, x, mask=pad) - glm_hidden(m, x, attention_mask=pad))[pad.bool()]
    assert diff.abs().max().item() <= 1e-5


def test_glm5_rewire_and_write_back(glm, one_thread: None) -> None:
    """residual around GLM's layers runs and differs; a training step written back gives
    transformers' own forward the wrapped model's hidden states, and loads strictly."""
    from hcdsl.wrap import glm5_next  # noqa: PLC0415
    m0, _ = glm
    x = tokens()
    res = ours(hcdsl.wrap(m0, "residual").eval(), x)
    assert (res - glm_hidden(m0, x)).abs().max().item() > 1e-3
    m = glm_model()
    w = hcdsl.wrap(m, inplace=True).train()
    loss = w(x).pow(2).mean()  # hidden states out: any scalar of them trains
    loss.backward()
    torch.optim.SGD(w.parameters(), lr=0.5).step()
    w.eval()
    glm5_next.write_back(w, m)
    after = glm_hidden(m, x)
    assert (after - glm_hidden(glm_model(), x)).abs().max().item() > 1e-4
    assert (ours(w, x) - after).abs().max().item() <= 1e-5
    fresh = transformers.Glm5NextTextModel(m.config).eval()
    fresh.load_state_dict(m.state_dict(), strict=True)


# -- 6. Qwen4-exp: the gated residual --------------------------------------------------------

def qwen_model(seed: int = 0, **kw: object) -> torch.nn.Module:
    """A gated-delta-net (linear attention) block and an indexed (QSA) attention block, each
    with a 4-expert MoE; every gate parameter and norm moved off its init."""
    torch.manual_seed(seed)
    base = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, head_dim=8, linear_key_head_dim=8,
                linear_value_head_dim=8, linear_num_key_heads=2, linear_num_value_heads=4,
                moe_intermediate_size=16, shared_expert_intermediate_size=16,
                num_experts_per_tok=2, num_experts=4, hc_count=4, hc_lowrank=8,
                layer_types=["linear_attention", "indexed_attention"],
                max_position_embeddings=64, indexer_n_heads=2, indexer_kv_heads=1,
                indexer_head_dim=8, indexer_budget=8, indexer_compress_ratio=2,
                attn_implementation="eager")
    base.update(kw)
    m = transformers.Qwen4ExpForCausalLM(transformers.Qwen4ExpTextConfig(**base)).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "hyper_connection" in name or "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    return m


@pytest.fixture(scope="module")
def qwen() -> tuple[torch.nn.Module, torch.nn.Module]:
    m = qwen_model()
    return m, hcdsl.wrap(m).eval()


def test_qwen4_own_connection_and_logits_equal(qwen, one_thread: None) -> None:
    m, w = qwen
    assert "prenorm = false" in w.hc_text and "final_norm=false" in w.hc_text
    assert "read = lowrank(rank=8, mid=silu, mid_div=4" in w.hc_text
    x = tokens()
    assert (ours(w, x) - theirs(m, x)).abs().max().item() <= 1e-5
    pad = torch.ones(2, 12, dtype=torch.long)
    pad[0, :4] = 0
    diff = (ours(w, x, mask=pad) - theirs(m, x, attention_mask=pad))[pad.bool()]
    assert diff.abs().max().item() <= 1e-5


def test_qwen4_rewire_write_back_generate(qwen, one_thread: None) -> None:
    from hcdsl.wrap import qwen4_exp  # noqa: PLC0415
    m0, w0 = qwen
    x = tokens()
    res = ours(hcdsl.wrap(m0, "residual").eval(), x)  # new pre-norms around its layers
    assert torch.isfinite(res).all() and (res - theirs(m0, x)).abs().max().item() > 1e-3
    prompt = tokens(2, (1, 5))
    got = hcdsl.generate(w0, prompt, max_new_tokens=4, temperature=0)
    want = m0.generate(prompt, max_new_tokens=4, do_sample=False, use_cache=False,
                       pad_token_id=0)
    assert torch.equal(got, want)
    m = qwen_model()
    w = hcdsl.wrap(m, inplace=True).train()
    w(x[:, :-1], targets=x[:, 1:]).loss.backward()
    torch.optim.SGD(w.parameters(), lr=0.5).step()
    w.eval()
    qwen4_exp.write_back(w, m)
    after = theirs(m, x)
    assert (after - theirs(qwen_model(), x)).abs().max().item() > 1e-4
    assert (ours(w, x) - after).abs().max().item() <= 1e-5
    fresh = transformers.Qwen4ExpForCausalLM(m.config).eval()
    fresh.load_state_dict(m.state_dict(), strict=True)


def test_qwen4_with_ple_refused() -> None:
    m = qwen_model()
    m.config.ple_layer_ids = [1]
    with pytest.raises(CompileError, match="Qwen4ExpTextPLELayer"):
        hcdsl.wrap(m)
