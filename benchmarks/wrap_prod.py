"""hcdsl.wrap of the multi-stream transformers models (DeepSeek-V4, GLM-5-next, Qwen4-exp) vs
transformers' own forward, on the tiny configs of tests/apps/test_wrap_multistream.py: the time of
one training step (forward, backward) of each, eager, and with --compile also the wrapped
model under torch.compile (fullgraph; DeepSeek-V4 only: its compile takes minutes here).

    .venv/bin/python benchmarks/wrap_prod.py [--repeat N] [--compile]

prints one line per model: the median step time of transformers, of the wrapped model, and
their ratio (wrapped / transformers). Tiny models on CPU: the ratio measures the overhead
of the wrapping (adapters, generator modules, fx graph), not the layers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hcdsl  # noqa: E402
from tests.apps.test_wrap_multistream import (  # noqa: E402
    ds_model, glm_model, qwen_model, tokens,
)


def step_time(fn, repeat: int) -> float:  # noqa: ANN001
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def theirs_step(model: torch.nn.Module, x: torch.Tensor, hidden: bool):  # noqa: ANN201
    def run() -> None:
        out = model(x, use_cache=False)
        y = out.last_hidden_state if hidden else out.logits
        y.float().pow(2).mean().backward()
    return run


def ours_step(model: torch.nn.Module, x: torch.Tensor):  # noqa: ANN201
    def run() -> None:
        model(x).float().pow(2).mean().backward()
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = tokens()
    for name, make, hidden in (("DeepSeek-V4", ds_model, False),
                               ("GLM-5-next", glm_model, True),
                               ("Qwen4-exp", qwen_model, False)):
        model = make().train()
        wrapped = hcdsl.wrap(model).train()
        t_hf = step_time(theirs_step(model, x, hidden), args.repeat)
        t_ours = step_time(ours_step(wrapped, x), args.repeat)
        line = (f"{name:12s} transformers {t_hf * 1e3:8.1f} ms   wrapped eager "
                f"{t_ours * 1e3:8.1f} ms   ratio {t_ours / t_hf:5.2f}")
        if args.compile and name == "DeepSeek-V4":
            compiled = torch.compile(wrapped, fullgraph=True)
            t_c = step_time(ours_step(compiled, x), args.repeat)
            line += f"   wrapped compiled {t_c * 1e3:8.1f} ms   ratio {t_c / t_hf:5.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
