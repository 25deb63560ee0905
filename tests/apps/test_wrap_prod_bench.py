"""benchmarks/wrap_prod.py's decode steps run from a cache restored in place (CacheSnapshot):
a step from the restored cache must equal a step from a fresh prefill, for transformers'
cache and for the wrapped model's, after other steps have changed the cache in between."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import torch

import hcdsl
from benchmarks.wrap_prod import PROMPT, HFDecode, OwnDecode
from tests.apps.test_wrap_multistream import ds_model, qwen_model, tokens

MODELS = {"ds": ds_model, "qwen": qwen_model}  # full attention + HC; linear attention states


def fresh_step(lm: torch.nn.Module, prompt: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
    """Reference: a new cache from the prompt, then one step (transformers only)."""
    with torch.no_grad():
        cache = lm(prompt, use_cache=True).cache
        return lm(tok, cache=cache, use_cache=True).logits


@pytest.mark.parametrize("key", list(MODELS))
def test_restored_cache_steps_equal_fresh(key: str) -> None:
    lm = MODELS[key]().eval()
    wrapped = hcdsl.wrap(lm).eval()
    prompt = tokens(1, (2, PROMPT))
    other = tokens(3, (2, 1))
    with ExitStack() as stack:
        hf = HFDecode(lm, prompt)
        mine = OwnDecode(wrapped, prompt, stack, PROMPT + 2)
        ref = fresh_step(lm, prompt, hf.tok)
        for _ in range(3):  # each step changes the caches; each restore undoes it
            hf.restore()
            torch.testing.assert_close(hf.step(lm), ref, rtol=0, atol=0)
            mine.restore()
            torch.testing.assert_close(mine.step(wrapped), ref, rtol=1e-5, atol=1e-5)
            with torch.no_grad():  # a different token in between: a different cache
                lm(other, cache=hf.cache, use_cache=True)
                wrapped(other)
        assert hf.cache.get_seq_length() > PROMPT  # the cache did grow: restore is needed


def test_without_restore_the_step_differs() -> None:
    """The check above can fail: without the restore the second step sees a longer cache."""
    lm = ds_model().eval()
    prompt = tokens(1, (2, PROMPT))
    hf = HFDecode(lm, prompt)
    first = hf.step(lm)
    assert not torch.allclose(hf.step(lm), first, atol=1e-4)
