"""A few lines of text from each trained model, for the reports: the newest checkpoint of a
run folder, its own spec text and tokenizer, decoded with hcdsl.generate (key/value cached)
from a fixed prompt with a fixed seed, so reruns of a report show the same samples."""

from __future__ import annotations

import json
from pathlib import Path

import torch

import hcdsl
from hcdsl.errors import CompileError, HcError
from hcdsl.proofs.checkpoint import read_state
from hcdsl.train.data import Tokenizer
from hcdsl.train.errors import TrainError

PROMPT = "def "  # the default corpus is Python source
NEW_TOKENS = 160


def sample_run(run: Path, prompt: str = PROMPT, new_tokens: int = NEW_TOKENS,
               temperature: float = 0.8, top_k: int = 40, seed: int = 0) -> str:
    """The prompt and its continuation by the run's newest checkpoint; a one-line reason in
    brackets when the run has none that loads."""
    try:
        cfg = json.loads((run / "config.json").read_text())
        tok = Tokenizer(cfg.get("tokenizer", "bytes"))
        state = read_state(run)
        model = hcdsl.compile((run / "spec.hc").read_text(), state_dict=state,
                              check_memory=False).eval()
    except (OSError, ValueError, CompileError, HcError, TrainError) as exc:
        return f"[no sample: {str(exc).splitlines()[0][:200]}]"
    ids = torch.tensor([tok.encode(prompt)])
    out = model.generate(ids, new_tokens, temperature=temperature, top_k=top_k,
                         generator=torch.Generator().manual_seed(seed))
    return tok.decode(out[0].tolist())
