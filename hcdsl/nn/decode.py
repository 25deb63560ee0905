"""Text generation from a compiled model, with a key/value cache per attention layer.

    hcdsl.generate(model, tokens, max_new_tokens=50, temperature=0.8, top_k=40)
    model.generate(tokens, ...)                   # the same, bound to the model

The prompt runs once (prefill) and fills every attention layer's cache; each further step
runs the model on the newest token alone at its position (hcdsl/nn/kv.py says why the
connection state needs no cache). Logits equal those of the full forward at every position
(tests/backends/test_decode.py). An extern layer's time mixing is its own: it decodes with a
cache when its module says how (the decode protocol below; hcdsl.wrap's adapters of
transformers layers do, with the layers' own transformers caches); a model with any other
extern layer decodes by running the whole sequence at every step: the same tokens, slower.
`cached(model)` says which.

The decode protocol of an extern layer's module (either):
- `start_decoding(state)` and `stop_decoding()`: called once at the start and at the end of
  a decoding run (state: hcdsl/nn/kv.py's DecodeState); in between, each call gets only the
  new tokens and the module keeps what it needs of the earlier ones (its own cache);
- `mixes_time = False`: it acts on each token alone (an MLP, a MoE): nothing to keep.

Sampling: temperature 0 is greedy (argmax); otherwise softmax(logits / temperature),
restricted to the top_k most likely tokens and then to the smallest set whose probability
reaches top_p (nucleus sampling, Holtzman et al. 2019, arXiv 1904.09751), drawn with
`generator` when given. A sequence that produced `eos` is padded with it; generation stops
when every sequence has.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.names import attr_name
from hcdsl.nn.fused import ParallelLayers
from hcdsl.nn.kv import DecodeState, KVCache
from hcdsl.nn.layers import Attention, Embedding


def cached(model: nn.Module) -> bool:
    """True when decoding can use caches: every extern layer of the model's IR follows the
    decode protocol (the module doc), or there is none."""
    ir = getattr(model, "hc_ir", None)
    if ir is None:
        return False
    externs = [v for v in ir.g.nodes
               if isinstance(ir.payload(v), n.Layer) and ir.payload(v).extern]
    return all(_decodes(_submodule(model, v)) for v in externs)


def _submodule(model: nn.Module, node: str) -> nn.Module | None:
    try:
        return model.get_submodule(attr_name(node))
    except AttributeError:
        return None


def _decodes(module: nn.Module | None) -> bool:
    if module is None:
        return False
    return callable(getattr(module, "start_decoding", None)) or \
        getattr(module, "mixes_time", True) is False


def _own_caches(model: nn.Module) -> list[nn.Module]:
    """The modules keeping a cache of their own over a decoding run (the protocol)."""
    return [m for m in model.modules() if callable(getattr(m, "start_decoding", None))]


def _attention_modules(model: nn.Module) -> list[Attention]:
    found: dict[int, Attention] = {}
    for m in model.modules():
        for sub in ([m] + list(m.layers) if isinstance(m, ParallelLayers) else [m]):
            if isinstance(sub, Attention):
                found[id(sub)] = sub
    return list(found.values())


@contextmanager
def decoding(model: nn.Module, length: int) -> Iterator[DecodeState]:
    """Install a decode state of `length` positions on the model's attention layers and
    embedding, and start the extern layers' own caches (the decode protocol), for the
    duration; they run as usual again afterwards."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    state = DecodeState(length, device)
    attns = _attention_modules(model)
    embeds = [m for m in model.modules() if isinstance(m, Embedding)]
    own = _own_caches(model)
    try:
        for a in attns:
            a.kv_cache = KVCache(state)
        for e in embeds:
            e.decoding = state
        for m in own:
            m.start_decoding(state)
        yield state
    finally:
        for a in attns:
            a.kv_cache = None
        for e in embeds:
            e.decoding = None
        for m in own:
            m.stop_decoding()


def _check(model: nn.Module, tokens: object, max_new_tokens: int, temperature: float,
           top_k: int | None, top_p: float | None) -> torch.Tensor:
    ir = getattr(model, "hc_ir", None)
    if ir is None or not any(isinstance(ir.payload(v), n.Embed) for v in ir.g.nodes):
        raise CompileError("generate needs a model compiled from a spec that reads tokens "
                           "(`input = hidden` bodies map hidden states and have no vocabulary)")
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise CompileError(f"generate takes a prompt of token ids (batch, time), got {shape}: "
                           "give a 2-D integer tensor, e.g. tokens[None] for one sequence")
    if tokens.shape[1] == 0:
        raise CompileError("generate needs a prompt of at least one token")
    if max_new_tokens < 0:
        raise CompileError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature >= 0 or temperature == float("inf"):
        raise CompileError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise CompileError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise CompileError(f"top_p must be in (0, 1], got {top_p}")
    table = [m.positions.shape[0] for m in model.modules()
             if isinstance(m, Embedding) and m.positions is not None]
    total = tokens.shape[1] + max_new_tokens
    if table and total > table[0]:
        raise CompileError(f"a prompt of {tokens.shape[1]} tokens plus {max_new_tokens} new "
                           f"ones is longer than the learned position table (context = "
                           f"{table[0]}): ask for at most {table[0] - tokens.shape[1]} new "
                           "tokens")
    return tokens.long()


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
               top_p: float | None, generator: torch.Generator | None) -> torch.Tensor:
    """(B,) tokens drawn from (B, vocab) logits as the module doc says."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    scores = logits.float() / temperature
    if top_k is not None and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        ordered, order = torch.sort(scores, dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
        drop = before >= top_p  # the first token is always kept
        scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: nn.Module, tokens: torch.Tensor, max_new_tokens: int = 50,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             eos: int | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True) -> torch.Tensor:
    """The prompt (B, T) followed by up to max_new_tokens tokens: (B, T + new)."""
    tokens = _check(model, tokens, max_new_tokens, temperature, top_k, top_p)
    was_training = model.training
    model.eval()
    try:
        if use_cache and cached(model):
            return _cached(model, tokens, max_new_tokens, temperature, top_k, top_p, eos,
                           generator)
        return _recomputed(model, tokens, max_new_tokens, temperature, top_k, top_p, eos,
                           generator)
    finally:
        model.train(was_training)


def _logits(out: object) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out  # type: ignore[union-attr]


def _append(seq: torch.Tensor, new: torch.Tensor, done: torch.Tensor,
            eos: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    if eos is not None:
        new = torch.where(done, torch.full_like(new, eos), new)
        done = done | (new == eos)
    return torch.cat([seq, new[:, None]], dim=1), done


def _cached(model: nn.Module, tokens: torch.Tensor, max_new: int, temperature: float,
            top_k: int | None, top_p: float | None, eos: int | None,
            generator: torch.Generator | None) -> torch.Tensor:
    seq, done = tokens, torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    with decoding(model, tokens.shape[1] + max_new) as state:
        step_in = tokens
        for _ in range(max_new):
            logits = _logits(model(step_in))[:, -1]
            state.advance(step_in.shape[1])
            seq, done = _append(seq, next_token(logits, temperature, top_k, top_p, generator),
                                done, eos)
            if bool(done.all()):
                break
            # contiguous: a slice's stride grows with seq, and a compiled model would
            # recompile once on it (dynamo guards on strides)
            step_in = seq[:, -1:].contiguous()
    return seq


def _recomputed(model: nn.Module, tokens: torch.Tensor, max_new: int, temperature: float,
                top_k: int | None, top_p: float | None, eos: int | None,
                generator: torch.Generator | None) -> torch.Tensor:
    seq, done = tokens, torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    for _ in range(max_new):
        logits = _logits(model(seq))[:, -1]
        seq, done = _append(seq, next_token(logits, temperature, top_k, top_p, generator),
                            done, eos)
        if bool(done.all()):
            break
    return seq
