"""What one decoding step costs per connection, as a ratio to Pre-Norm with the same layers.

    .venv/bin/python benchmarks/decode.py                 # eager and compiled, batch 1 and 8
    .venv/bin/python benchmarks/decode.py --no-compile    # eager only (seconds)

Model: speed.py's (d = 256, 4 blocks of [attention(heads=4), mlp(hidden=1024)], vocab 4096,
LayerNorm, fp32). Each family's key/value caches hold `--cache` positions (512) and are filled
to `--cache` - `--steps` - 1 by a prefill; the timed figure is one decode step (one new token
per sequence: the whole graph on it, its keys and values into the caches, attention over the
cache), the model called directly (eager) or through torch.compile(fullgraph=True) (two
graphs: the prefill's and the step's). Candidates are timed round-robin (`--steps` steps each,
`--rounds` rounds) and each figure is the median over rounds of the mean ms per step; ratios
are to Pre-Norm in the same mode and batch, taken in one run (the machine may be noisy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import hcdsl
from hcdsl.nn.decode import decoding

from speed import SPEC, add_model_args  # benchmarks/ is the script's folder

FAMILIES = [("Pre-Norm", "residual"), ("DHC x4", "hyper(n=4, dynamic)"),
            ("mHC x4", "mhc(n=4)"), ("MUDD", "mudd")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--cache", type=int, default=512, help="key/value cache positions")
    ap.add_argument("--steps", type=int, default=20, help="timed decode steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {name: hcdsl.compile(SPEC.format(dim=args.dim, vocab=args.vocab, heads=args.heads,
                                              hidden=args.hidden, blocks=args.blocks,
                                              connect=c), seed=0).eval()
              for name, c in FAMILIES}
    modes = ["eager"] + ([] if args.no_compile else ["compiled"])
    print(f"# decode step, d={args.dim}, {args.blocks} blocks, cache {args.cache}, "
          f"{args.threads} thread(s), torch {torch.__version__}, {platform.machine()}")
    for mode in modes:
        run = {k: (torch.compile(m, fullgraph=True) if mode == "compiled" else m)
               for k, m in models.items()}
        for batch in args.batches:
            times = {k: [] for k in models}
            prompt = torch.randint(0, args.vocab, (batch, args.cache - args.steps - 1),
                                   generator=torch.Generator().manual_seed(0))
            for _ in range(args.rounds):
                for name, model in models.items():
                    times[name].append(_time(model, run[name], prompt, args))
            base = statistics.median(times["Pre-Norm"])
            for name in models:
                ms = statistics.median(times[name])
                print(f"{mode:8s} batch {batch:2d}  {name:9s} {ms:8.2f} ms/step  "
                      f"{ms / base:5.2f}x Pre-Norm")


@torch.no_grad()
def _time(model: torch.nn.Module, run: torch.nn.Module, prompt: torch.Tensor,
          args: argparse.Namespace) -> float:
    """Mean ms of one decode step after a prefill of `prompt` (the first step is a warm-up)."""
    with decoding(model, args.cache) as state:
        run(prompt)
        state.advance(prompt.shape[1])
        token = prompt[:, -1:]
        run(token)
        state.advance(1)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            run(token)
            state.advance(1)
        return (time.perf_counter() - t0) / args.steps * 1e3


if __name__ == "__main__":
    main()
