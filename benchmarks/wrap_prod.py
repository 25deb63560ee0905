"""hcdsl.wrap of the multi-stream transformers models (DeepSeek-V4, GLM-5-next, Qwen4-exp) vs
transformers' own forward, on the tiny configs of tests/apps/test_wrap_multistream.py.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/wrap_prod.py [--repeat N] [--eager-only]
        [--models ds,glm,qwen] [--no-decode] [--no-train]

Per model, in ONE run with the variants' steps interleaved round by round (so a change of
load on the shared machine hits every variant alike), the median wall time and the median
CPU time (time.process_time) of
- a training step (forward, backward) of transformers (`hf`), of the wrapped model (`own`,
  hcdsl.wrap(model): the model's own connection) and of the wrapped model re-wired to
  `residual` around the same layers (`res`); eager, and compiled (transformers' model with
  torch.compile's default options, the wrapped ones with fullgraph=True);
- a decode step (one token after a 12-token prompt) of transformers (its own DynamicCache)
  and of the wrapped model (the layers' own caches, through hcdsl.nn.decode), eager and
  compiled (torch.compile default options). Every timed step sees the SAME cache: the cache
  after the prompt is snapshot once and restored in place before each step (`CacheSnapshot`,
  untimed), so the cache does not grow over the rounds and a compiled step is not
  recompiled for a new length (tests/apps/test_wrap_prod_bench.py: a step from the restored
  cache equals one from a fresh prefill);
- the connection's share: (own - res) / own, what the model's connection costs over
  Pre-Norm's residual around the same layers.

Ratios are printed (wall and CPU), e.g. own/hf; times are for reading only. GLM-5-next and
Qwen4-exp train on their linear-attention configs here (the compile tests'): their indexed
attention layers have data-dependent shapes in transformers' reference code and do not
compile with fullgraph (tests/apps/test_wrap_glm_qwen.py). They decode on the tests' configs
(a linear-attention and an indexed-attention block; GLM-5-next as
Glm5NextForConditionalGeneration). A compile that fails is reported as such, with its error.
Tiny models on one CPU thread: the ratios measure the wrapping's and the connection's
overhead, not the layers.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hcdsl  # noqa: E402
from hcdsl.nn.decode import decoding  # noqa: E402
from hcdsl.wrap.context import Decodes  # noqa: E402
from tests.apps.test_wrap_generate import glm_lm  # noqa: E402
from tests.apps.test_wrap_multistream import (  # noqa: E402
    ds_model, glm_model, qwen_model, tokens,
)

LINEAR = ["linear_attention", "linear_attention"]
MODELS = {  # name -> (label, model to train, its output is hidden states, model to decode)
    "ds": ("DeepSeek-V4", lambda: ds_model(), False, ds_model),
    "glm": ("GLM-5-next", lambda: glm_model(layer_types=LINEAR), True, glm_lm),
    "qwen": ("Qwen4-exp", lambda: qwen_model(layer_types=LINEAR), False, qwen_model),
}
PROMPT = 12


class CacheSnapshot:
    """A transformers cache's state (every cache layer's attributes: keys, values,
    linear-attention states, lengths), copied once; `restore()` puts it back into the same
    cache object and its same layer objects (a tensor of the same shape is copied into;
    others, and expanded ones, are replaced by a fresh copy), so every step after a restore
    sees the cache as it was at the snapshot."""

    def __init__(self, cache: Any) -> None:  # noqa: ANN401 - a transformers Cache
        self.cache = cache
        self.saved = [copy.deepcopy(vars(layer)) for layer in cache.layers]

    def restore(self) -> None:
        if len(self.cache.layers) != len(self.saved):
            raise RuntimeError(f"the cache has {len(self.cache.layers)} layers, the snapshot "
                               f"{len(self.saved)}")
        for layer, saved in zip(self.cache.layers, self.saved):
            for name in set(vars(layer)) - set(saved):
                delattr(layer, name)
            for name, value in saved.items():
                now = getattr(layer, name, None)
                if (isinstance(value, torch.Tensor) and isinstance(now, torch.Tensor)
                        and now.shape == value.shape and now.dtype == value.dtype
                        and now is not value and _writable(now)):
                    now.copy_(value)
                else:
                    setattr(layer, name, copy.deepcopy(value))


def _writable(t: torch.Tensor) -> bool:
    """No two elements of `t` share memory (an expanded tensor cannot be copied into)."""
    return all(st != 0 or sz <= 1 for st, sz in zip(t.stride(), t.shape))


@dataclass
class Step:
    """One timed variant: `setup` (untimed) then `run` (timed) per round."""

    name: str
    run: Callable[[], object]
    setup: Callable[[], None] = lambda: None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    error: str | None = None

    def once(self, record: bool) -> None:
        if self.error is not None:
            return
        try:
            self.setup()
            w, c = time.perf_counter(), time.process_time()
            self.run()
            w, c = time.perf_counter() - w, time.process_time() - c
        except Exception as exc:  # noqa: BLE001 - reported (a compile that fails), not hidden
            text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            self.error = f"failed: {type(exc).__name__}: {text}"
            return
        if record:
            self.wall.append(w)
            self.cpu.append(c)

    def median(self, cpu: bool = False) -> float:
        return statistics.median(self.cpu if cpu else self.wall)


def interleave(steps: list[Step], repeat: int, warmup: int = 3) -> None:
    """Warm every step up (compiles), then `repeat` rounds of one call of each step, the
    order rotated round by round."""
    for _ in range(warmup):
        for s in steps:
            s.once(record=False)
    for r in range(repeat):
        k = r % len(steps)
        for s in steps[k:] + steps[:k]:
            s.once(record=True)


# ---- training steps -----------------------------------------------------------------------

def hf_train(model: torch.nn.Module, x: torch.Tensor, hidden: bool) -> Callable[[], None]:
    def run() -> None:
        out = model(x, use_cache=False)
        y = out.last_hidden_state if hidden else out.logits
        y.float().pow(2).mean().backward()
    return run


def hcdsl_train(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        model(x).float().pow(2).mean().backward()
    return run


# ---- decode steps from a fixed cache ------------------------------------------------------

class HFDecode:
    """transformers' model after the prompt: `step(run)` is one cached decode step of `run`
    (the model or its compiled form) from the cache as it was after the prompt."""

    def __init__(self, model: torch.nn.Module, prompt: torch.Tensor) -> None:
        with torch.no_grad():
            out = model(prompt, use_cache=True)
        self.cache, self.tok = out.cache, out.logits[:, -1:].argmax(-1)
        self.snapshot = CacheSnapshot(self.cache)

    def restore(self) -> None:
        self.snapshot.restore()

    def step(self, run: Callable[..., Any]) -> torch.Tensor:
        with torch.no_grad():
            return run(self.tok, cache=self.cache, use_cache=True).logits


class OwnDecode:
    """The wrapped model after the prompt, inside a decoding run (`stack` closes it): the
    same as HFDecode with the layers' own caches (the wrapped model's ForwardContext's
    transformers cache) and hcdsl's DecodeState position."""

    def __init__(self, wrapped: torch.nn.Module, prompt: torch.Tensor, stack: ExitStack,
                 length: int) -> None:
        self.state = stack.enter_context(decoding(wrapped, length))
        with torch.no_grad():
            self.tok = wrapped(prompt)[:, -1:].argmax(-1)
        self.state.advance(prompt.shape[1])
        self.position = int(self.state.position)
        contexts = {id(m.context): m.context for m in wrapped.modules()
                    if isinstance(m, Decodes) and m.context is not None}
        self.snapshots = [CacheSnapshot(c.cache) for c in contexts.values()]

    def restore(self) -> None:
        self.state.position.fill_(self.position)
        for s in self.snapshots:
            s.restore()

    def step(self, run: Callable[..., Any]) -> torch.Tensor:
        with torch.no_grad():
            return run(self.tok)


# ---- report -------------------------------------------------------------------------------

def ratio(a: Step, b: Step) -> str:
    if a.error or b.error or not a.wall or not b.wall:
        return "     -      "
    return f"{a.median() / b.median():5.2f} {a.median(True) / b.median(True):5.2f}"


def share(own: Step, res: Step) -> str:
    if own.error or res.error or not own.wall or not res.wall:
        return "      -       "
    w = (own.median() - res.median()) / own.median()
    c = (own.median(True) - res.median(True)) / own.median(True)
    return f"{w:6.1%} {c:6.1%}"


def times(steps: list[Step]) -> str:
    return "  ".join(f"{s.name} " + (s.error if s.error else f"{s.median() * 1e3:.2f} ms")
                     for s in steps)


def bench(key: str, repeat: int, compiled: bool, train: bool, decode: bool) -> None:
    label, make, hidden, make_lm = MODELS[key]
    if train:
        x = tokens()
        model = make().train()
        own = hcdsl.wrap(model).train()
        res = hcdsl.wrap(model, "residual").train()
        steps = [Step("hf", hf_train(model, x, hidden)), Step("own", hcdsl_train(own, x)),
                 Step("res", hcdsl_train(res, x))]
        if compiled:
            steps += [Step("hf_c", hf_train(torch.compile(model), x, hidden)),
                      Step("own_c", hcdsl_train(torch.compile(own, fullgraph=True), x)),
                      Step("res_c", hcdsl_train(torch.compile(res, fullgraph=True), x))]
        interleave(steps, repeat)
        s = {st.name: st for st in steps}
        print(f"{label:12s} train  eager    own/hf {ratio(s['own'], s['hf'])}   "
              f"share {share(s['own'], s['res'])}", flush=True)
        if compiled:
            print(f"{label:12s} train  compiled own/hf {ratio(s['own_c'], s['hf_c'])}   "
                  f"share {share(s['own_c'], s['res_c'])}   own_c/hf eager "
                  f"{ratio(s['own_c'], s['hf'])}", flush=True)
        print(f"{'':12s}   ({times(steps)})", flush=True)
    if decode:
        lm = make_lm().eval()
        w_lm = hcdsl.wrap(lm).eval()
        prompt = tokens(1, (2, PROMPT))
        with ExitStack() as stack:
            hf = HFDecode(lm, prompt)
            mine = OwnDecode(w_lm, prompt, stack, PROMPT + 2)
            steps = [Step("hf", lambda: hf.step(lm), hf.restore),
                     Step("own", lambda: mine.step(w_lm), mine.restore)]
            if compiled:
                c_lm, c_own = torch.compile(lm), torch.compile(w_lm)
                steps += [Step("hf_c", lambda: hf.step(c_lm), hf.restore),
                          Step("own_c", lambda: mine.step(c_own), mine.restore)]
            interleave(steps, repeat)
        s = {st.name: st for st in steps}
        print(f"{label:12s} decode eager    own/hf {ratio(s['own'], s['hf'])}", flush=True)
        if compiled:
            print(f"{label:12s} decode compiled own/hf {ratio(s['own_c'], s['hf_c'])}   "
                  f"own_c/hf eager {ratio(s['own_c'], s['hf'])}", flush=True)
        print(f"{'':12s}   ({times(steps)})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--eager-only", action="store_true", help="skip torch.compile")
    ap.add_argument("--models", default="ds,glm,qwen")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-decode", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at start; ratios: "
          "wall CPU", flush=True)
    for key in args.models.split(","):
        bench(key, args.repeat, not args.eager_only, not args.no_train, not args.no_decode)
    print(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} at the end", flush=True)


if __name__ == "__main__":
    main()
