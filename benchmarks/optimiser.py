"""What the optimiser buys: one training step (forward + cross-entropy + backward) of each
family against hcdsl's own Pre-Norm with the same layers, eager and compiled, with the
optimisation passes and without them; and the peak memory of one step, plain and with
recompute=True.

    .venv/bin/python benchmarks/optimiser.py [--rounds 15] [--no-compile] [--memory-only]

Times are CPU seconds of the main thread (torch on one thread), median over interleaved
rounds after warm-up, as ratios to Pre-Norm in the same run (min-max of the per-round
ratios in brackets). Memory: the peak resident set of a fresh process over one step, less
its size before the step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import hcdsl

FAMILIES = ["hyper(n=4, dynamic)", "frac(m=4, dynamic)", "mhc(n=4)", "mudd"]
OPT = ["split-stack-mix", "merge-sibling-mixes", "fuse-parallel-inputs"]
SHAPES = {  # name: (layers, body, batch, seq)
    "mlp": ("layer ffn = mlp(hidden=1024)", "repeat 4 [ffn]", 8, 128),
    "blocks": ("layer attn = attention(heads=4)\n layer ffn = mlp", "repeat 4 [attn, ffn]", 8,
               128),
}


def spec(connect: str, layers: str, body: str) -> str:
    return (f"model b {{\n dim = 256\n vocab = 512\n {layers}\n body = {body}\n"
            f" connect {connect}\n}}")


def step(model: torch.nn.Module, x: torch.Tensor) -> None:
    F.cross_entropy(model(x)[:, :-1].flatten(0, 1), x[:, 1:].flatten()).backward()


def ratios(models: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int) -> dict:
    for m in models.values():
        for _ in range(2):
            step(m, x)
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            start = time.thread_time()
            step(m, x)
            times[k].append(time.thread_time() - start)
    base = times["residual"]
    out = {}
    for k, ts in times.items():
        per_round = [t / b for t, b in zip(ts, base)]
        out[k] = (statistics.median(ts) / statistics.median(base), min(per_round),
                  max(per_round))
    return out


def speed(args: argparse.Namespace) -> None:
    for shape, (layers, body, batch, seq) in SHAPES.items():
        x = torch.randint(0, 512, (batch, seq), generator=torch.Generator().manual_seed(0))
        for compiled in ([False, True] if not args.no_compile else [False]):
            for label, disable in (("optimised", []), ("without the new passes", OPT)):
                models = {}
                for c in ["residual", *FAMILIES]:
                    m = hcdsl.compile(spec(c, layers, body), seed=0, disable=disable)
                    models[c] = torch.compile(m) if compiled else m
                r = ratios(models, x, args.rounds)
                mode = "compiled" if compiled else "eager"
                cells = "  ".join(f"{c.split('(')[0]} {r[c][0]:.2f} [{r[c][1]:.2f}-{r[c][2]:.2f}]"
                                  for c in FAMILIES)
                print(f"{shape:6} {mode:8} {label:22} {cells}", flush=True)


PEAK = """
import resource, sys, torch, torch.nn.functional as F, hcdsl
torch.set_num_threads(1)
m = hcdsl.compile(sys.argv[1], seed=0, recompute=sys.argv[2] == "1")
x = torch.randint(0, 512, (16, 512), generator=torch.Generator().manual_seed(0))
before = int(open("/proc/self/statm").read().split()[1]) * 4096
F.cross_entropy(m(x)[:, :-1].flatten(0, 1), x[:, 1:].flatten()).backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)
"""


def memory() -> None:
    layers, body, _, _ = SHAPES["blocks"]
    peaks = {}
    for c in ["residual", *FAMILIES]:
        for rc in ("0", "1"):
            out = subprocess.run([sys.executable, "-c", PEAK, spec(c, layers, body), rc],
                                 capture_output=True, text=True, check=True).stdout
            peaks[(c, rc)] = int(out.strip())
    base = peaks[("residual", "0")]
    print("peak memory of one step, d = 256, 4 blocks, batch 16 x 512, eager, / Pre-Norm:")
    for c in FAMILIES:
        print(f"  {c:22} plain {peaks[(c, '0')] / base:.2f}x   recompute "
              f"{peaks[(c, '1')] / base:.2f}x   ({peaks[(c, '1')] / 2**20:.0f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if not args.memory_only:
        speed(args)
    memory()


if __name__ == "__main__":
    main()
