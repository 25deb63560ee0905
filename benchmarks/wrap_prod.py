"""hcdsl.wrap of the multi-stream transformers models (DeepSeek-V4, GLM-5-next, Qwen4-exp) vs
transformers' own forward, on the tiny configs of tests/apps/test_wrap_multistream.py.

    .venv/bin/python benchmarks/wrap_prod.py [--repeat N] [--compile] [--models ds,glm,qwen]

Per model, the median time of
- a training step (forward, backward) of transformers and of the wrapped model, eager;
- a decode step (one token after a 12-token prompt, with the caches: transformers' own
  DynamicCache, the wrapped model's layers' own caches through hcdsl.nn.decode), eager;
- the connection's share: the wrapped model's training step with its own connection vs with
  `residual` around the same layers (what the connection costs over Pre-Norm);
and with --compile the same under torch.compile: transformers' model compiled (default
options) and the wrapped model compiled with fullgraph=True for the training step
(torch.compile default options for the decode step, whose cache grows every step).

GLM-5-next and Qwen4-exp train on their linear-attention configs here (the compile tests'):
their indexed attention layers have data-dependent shapes in transformers' reference code
and do not compile with fullgraph (tests/apps/test_wrap_glm_qwen.py). They decode on the
tests' configs (a linear-attention and an indexed-attention block; GLM-5-next as
Glm5NextForConditionalGeneration): transformers' cache of a model with linear attention
only has no length (`get_seq_length` refuses). A compile that fails is reported as such, with
its error. Tiny models on one CPU thread: the
ratios measure the wrapping's and the connection's overhead, not the layers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hcdsl  # noqa: E402
from hcdsl.nn.decode import decoding  # noqa: E402
from tests.apps.test_wrap_multistream import (  # noqa: E402
    ds_model, glm_model, qwen_model, tokens,
)
from tests.apps.test_wrap_generate import glm_lm  # noqa: E402

LINEAR = ["linear_attention", "linear_attention"]
MODELS = {  # name -> (label, model to train, its output is hidden states, model to decode)
    "ds": ("DeepSeek-V4", lambda: ds_model(), False, ds_model),
    "glm": ("GLM-5-next", lambda: glm_model(layer_types=LINEAR), True, glm_lm),
    "qwen": ("Qwen4-exp", lambda: qwen_model(layer_types=LINEAR), False, qwen_model),
}
PROMPT = 12


def median_time(fn: Callable[[], None], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):  # warm-up (and compilation)
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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


def hf_decode(model: torch.nn.Module, prompt: torch.Tensor, repeat: int,
              warmup: int) -> float:
    """Median time of one cached decode step (transformers' own cache)."""
    times = []
    with torch.no_grad():
        out = model(prompt, use_cache=True)
        cache, tok = out.cache, out.logits[:, -1:].argmax(-1)
        for i in range(warmup + repeat):
            t = time.perf_counter()
            out = model(tok, cache=cache, use_cache=True)
            if i >= warmup:
                times.append(time.perf_counter() - t)
            tok = out.logits[:, -1:].argmax(-1)
    return statistics.median(times)


def hcdsl_decode(wrapped: torch.nn.Module, run: torch.nn.Module, prompt: torch.Tensor,
                 repeat: int, warmup: int) -> float:
    """Median time of one cached decode step of the wrapped model (`run`: it or its
    compiled form; the caches are the layers' own)."""
    times = []
    with torch.no_grad(), decoding(wrapped, PROMPT + warmup + repeat + 1) as state:
        tok = run(prompt)[:, -1:].argmax(-1)
        state.advance(PROMPT)
        for i in range(warmup + repeat):
            t = time.perf_counter()
            out = run(tok)
            if i >= warmup:
                times.append(time.perf_counter() - t)
            state.advance(1)
            tok = out[:, -1:].argmax(-1)
    return statistics.median(times)


def ms(t: float) -> str:
    return f"{t * 1e3:8.1f} ms"


def bench(key: str, repeat: int, compile_: bool) -> None:
    label, make, hidden, make_lm = MODELS[key]
    x = tokens()
    model = make().train()
    own = hcdsl.wrap(model).train()
    res = hcdsl.wrap(model, "residual").train()
    t_hf = median_time(hf_train(model, x, hidden), repeat)
    t_own = median_time(hcdsl_train(own, x), repeat)
    t_res = median_time(hcdsl_train(res, x), repeat)
    print(f"{label:12s} train eager     transformers {ms(t_hf)}   wrapped {ms(t_own)} "
          f"(x{t_own / t_hf:.2f})   wrapped with residual {ms(t_res)}   connection share "
          f"{(t_own - t_res) / t_own:5.1%}", flush=True)
    lm = make_lm().eval()
    w_lm = hcdsl.wrap(lm).eval()
    prompt = tokens(1, (2, PROMPT))
    d_hf = hf_decode(lm, prompt, repeat, 2)
    d_own = hcdsl_decode(w_lm, w_lm, prompt, repeat, 2)
    print(f"{label:12s} decode eager    transformers {ms(d_hf)}   wrapped {ms(d_own)} "
          f"(x{d_own / d_hf:.2f})", flush=True)
    if not compile_:
        return
    t0 = time.perf_counter()
    c_hf = median_time(hf_train(torch.compile(model), x, hidden), repeat)
    c_own = median_time(hcdsl_train(torch.compile(own, fullgraph=True), x), repeat)
    c_res = median_time(hcdsl_train(torch.compile(res, fullgraph=True), x), repeat)
    print(f"{label:12s} train compiled  transformers {ms(c_hf)}   wrapped {ms(c_own)} "
          f"(x{c_own / c_hf:.2f})   wrapped with residual {ms(c_res)}   connection share "
          f"{(c_own - c_res) / c_own:5.1%}   (vs eager transformers x{c_own / t_hf:.2f})",
          flush=True)
    cd_hf = attempt(lambda: hf_decode(torch.compile(lm), prompt, repeat, 4))
    cd_own = attempt(lambda: hcdsl_decode(w_lm, torch.compile(w_lm), prompt, repeat, 4))
    ratio = (f"(x{cd_own / cd_hf:.2f})" if isinstance(cd_hf, float) and isinstance(cd_own, float)
             else "")
    print(f"{label:12s} decode compiled transformers {show(cd_hf)}   wrapped {show(cd_own)} "
          f"{ratio}   (compiling and timing took {time.perf_counter() - t0:.0f} s)",
          flush=True)


def attempt(fn: Callable[[], float]) -> float | str:
    """The time, or why it could not be measured (a compile that fails)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported, not hidden
        first = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else ""
        return f"failed: {type(exc).__name__}: {first}"


def show(t: float | str) -> str:
    return ms(t) if isinstance(t, float) else t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--models", default="ds,glm,qwen")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for key in args.models.split(","):
        bench(key, args.repeat, args.compile)


if __name__ == "__main__":
    main()
