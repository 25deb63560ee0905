"""What one decoding step costs per connection, as a ratio to Pre-Norm with the same layers.

    .venv/bin/python benchmarks/decode.py                        # eager and compiled, batch 1, 8
    .venv/bin/python benchmarks/decode.py --modes compiled --batch 1 8 --cache 512
    .venv/bin/python benchmarks/decode.py --frozen --blocks 16   # freeze=True, 16 blocks
    .venv/bin/python benchmarks/decode.py --modes compiled --batch 1 --profile 12

Model: optimiser.py's (d = 256, `--blocks` x [attention(heads=4), mlp], vocab 512, fp32, torch
on one thread). `--frozen` compiles each model with `freeze=True` from frozen.py's "trained"
weights (init plus seeded noise). Each model (one instance per batch size) gets key/value
caches of `--cache` positions (512), filled by an eager prefill to `--cache` - `--steps` - 1;
the timed figure is one decode step (one new token per sequence: the whole graph on it, its
keys and values into the caches, attention over the cache), the model called directly
(eager) or through torch.compile(fullgraph=True) (only the step is compiled). Every round
rewinds the position counter to the same place, so the caches, and the compiled graph's
guards, stay those of the warm-up: the compiled step must not recompile after it, and the
number of dynamo frame compilations during the timed rounds is printed (0 expected).

Timing: every candidate (mode x batch x family) runs `--steps` steps per round, all
interleaved in one run, the order reversed every other round; per round the ratio to Pre-Norm
in the same mode and batch, of wall time (time.perf_counter) and of the process's CPU time
(time.process_time: what the step itself used, less disturbed by other processes on a shared
machine than wall time); printed: the median of the per-round ratios [min-max].
`--profile N`: after the timing, torch.profiler over `--steps` compiled (or eager, with
`--modes eager`) steps per family at the first batch size, the top N ops by self CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch._dynamo.utils import counters

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hcdsl  # noqa: E402
from hcdsl.nn.decode import decoding  # noqa: E402
from frozen import trained  # noqa: E402 - the same "trained" weights
from optimiser import spec  # noqa: E402 - the same generated specs

LAYERS = "layer attn = attention(heads=4)\n layer ffn = mlp"
FAMILIES = {"Pre-Norm": "residual", "DHC x4": "hyper(n=4, dynamic)", "mHC x4": "mhc(n=4)",
            "MUDD": "mudd"}


def compiles() -> int:
    """Graphs dynamo has compiled so far (a recompilation after a guard failure counts;
    torch 2.13 keeps no counters["frames"]["total"])."""
    return int(counters["stats"]["unique_graphs"])


class Candidate:
    """One family at one batch size in one mode: a model with its caches filled by a prefill,
    and the step to time."""

    def __init__(self, model: torch.nn.Module, mode: str, prompt: torch.Tensor,
                 cache: int, stack: contextlib.ExitStack) -> None:
        self.model = model
        self.state = stack.enter_context(decoding(model, cache))
        with torch.no_grad():
            model(prompt)  # eager prefill
        self.start = prompt.shape[1]
        self.state.advance(self.start)
        self.token = prompt[:, -1:]
        self.run = torch.compile(model, fullgraph=True) if mode == "compiled" else model

    @torch.no_grad()
    def steps(self, count: int) -> tuple[float, float]:
        """Wall and CPU seconds of `count` decode steps from the start position."""
        self.state.position.fill_(self.start)
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(count):
            self.run(self.token)
            self.state.advance(1)
        return time.perf_counter() - w0, time.process_time() - c0


def build(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[tuple, Candidate]:
    body = f"repeat {args.blocks} [attn, ffn]"
    cands: dict[tuple, Candidate] = {}
    for name, connect in FAMILIES.items():
        text = spec("m", connect, LAYERS, body)
        sd = trained(hcdsl.compile(text, seed=0)) if args.frozen else None
        for batch in args.batch:
            prompt = torch.randint(0, 512, (batch, args.cache - args.steps - 1),
                                   generator=torch.Generator().manual_seed(0))
            model = (hcdsl.compile(text, seed=0, state_dict=sd, freeze=True) if args.frozen
                     else hcdsl.compile(text, seed=0)).eval()
            for mode in args.modes:
                # eager and compiled share the instance (and its caches): each round rewinds
                cands[(mode, batch, name)] = Candidate(model, mode, prompt, args.cache, stack)
    return cands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", choices=["eager", "compiled"],
                    default=["eager", "compiled"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--cache", type=int, default=512, help="key/value cache positions")
    ap.add_argument("--blocks", type=int, default=4, help="[attention, mlp] blocks")
    ap.add_argument("--frozen", action="store_true", help="freeze=True, trained weights")
    ap.add_argument("--steps", type=int, default=20, help="timed decode steps per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per candidate")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="then profile the step per family: the top N ops")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"# decode step, d=256, vocab 512, {args.blocks} blocks, cache {args.cache}, "
          f"{'frozen, ' if args.frozen else ''}1 thread, torch {torch.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
          flush=True)
    with contextlib.ExitStack() as stack:
        cands = build(args, stack)
        t0 = time.perf_counter()
        for c in cands.values():  # warm-up: compiles the steps
            c.steps(args.warmup)
        print(f"# warm-up (compiles) {time.perf_counter() - t0:.0f} s", flush=True)
        before = compiles()
        wall: dict[tuple, list[float]] = {k: [] for k in cands}
        cpu: dict[tuple, list[float]] = {k: [] for k in cands}
        order = list(cands)
        for r in range(args.rounds):
            for key in (order if r % 2 == 0 else order[::-1]):
                w, c = cands[key].steps(args.steps)
                wall[key].append(w)
                cpu[key].append(c)
        recompiles = compiles() - before
        print(f"# dynamo frame compilations during the timed rounds: {recompiles}; "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"# ratio to Pre-Norm (same mode, batch), median [min-max] over {args.rounds} "
              "interleaved rounds")
        for mode in args.modes:
            for batch in args.batch:
                base = (mode, batch, "Pre-Norm")
                for name in FAMILIES:
                    key = (mode, batch, name)
                    ms = 1e3 * statistics.median(wall[key]) / args.steps
                    cms = 1e3 * statistics.median(cpu[key]) / args.steps
                    rw = [a / b for a, b in zip(wall[key], wall[base])]
                    rc = [a / b for a, b in zip(cpu[key], cpu[base])]
                    print(f"{mode:8s} batch {batch:2d}  {name:9s} wall {ms:7.2f} ms "
                          f"{statistics.median(rw):5.2f} [{min(rw):.2f}-{max(rw):.2f}]   "
                          f"cpu {cms:7.2f} ms {statistics.median(rc):5.2f} "
                          f"[{min(rc):.2f}-{max(rc):.2f}]", flush=True)
        if args.profile:
            profile(cands, args)
        if recompiles:
            sys.exit(f"the decode step recompiled {recompiles} time(s) after warm-up")


def profile(cands: dict[tuple, Candidate], args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    mode, batch = args.modes[-1], args.batch[0]
    for name in FAMILIES:
        c = cands[(mode, batch, name)]
        with prof(activities=[ProfilerActivity.CPU]) as p:
            c.steps(args.steps)
        events = p.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n## {name}, {mode}, batch {batch}: {total / 1e3 / args.steps:.2f} ms self CPU "
              f"per step, {sum(e.count for e in events) / args.steps:.0f} events per step")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.profile,
                           max_name_column_width=60))


if __name__ == "__main__":
    main()
