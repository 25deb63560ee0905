"""The fused layer boundary and recomputation across layers, compiled: one training step
(forward, cross-entropy, backward; `torch.compile(fullgraph=True)`) of each family against
Pre-Norm with the same layers, with and without the fused boundary (hcdsl/nn/boundary.py),
and with `recompute="layers"`; time as interleaved ratios and the peak bytes of one compiled
step.

    .venv/bin/python benchmarks/boundary.py [--rounds 3] [--steps 2] [--batch 8] [--seq 128]
                                            [--blocks 4] [--no-recompute]
                                            [--only "mHC x4;mHC x4, unfused"]

Model: optimiser.py's (d = 256, [attention(heads=4), mlp] x blocks, vocab 512, fp32, torch on
one thread). Every model compiles once (warm-up), then each round times `steps` steps of every
model back to back; a model's figure is the median over rounds of its per-round ratio to
Pre-Norm [min-max], in wall time and in the process's CPU time (torch on one thread, so CPU
time is the work done, steadier than wall time when other processes share the cores). Peak: the highest bytes allocated above a compiled step's start
(torch.profiler's allocator events), exact.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hcdsl  # noqa: E402
from hcdsl.backends import fx as fx_backend  # noqa: E402
from hcdsl.bench import measure  # noqa: E402
from optimiser import spec  # noqa: E402 - the same generated specs

LAYERS = "layer attn = attention(heads=4)\n layer ffn = mlp"
FAMILIES = {"Pre-Norm": "residual", "DHC x4": "hyper(n=4, dynamic)", "mHC x4": "mhc(n=4)",
            "MUDD": "mudd"}


def variants(recompute: bool) -> list[tuple[str, str, bool, str | bool]]:
    """(label, connect, fused, recompute)."""
    out = [(name, c, True, False) for name, c in FAMILIES.items()]
    out += [(f"{name}, unfused", FAMILIES[name], False, False) for name in ("DHC x4", "mHC x4")]
    if recompute:
        out += [(f"{name}, layers", c, True, "layers") for name, c in FAMILIES.items()]
    return out


def build(connect: str, fused: bool, recompute: str | bool, blocks: int) -> torch.nn.Module:
    fx_backend.FUSE_BOUNDARY = fused
    try:
        return hcdsl.compile(spec("m", connect, LAYERS, f"repeat {blocks} [attn, ffn]"),
                             seed=0, recompute=recompute)
    finally:
        fx_backend.FUSE_BOUNDARY = True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--no-recompute", action="store_true")
    ap.add_argument("--only", default="", help="variant labels, ';'-separated (Pre-Norm always)")
    args = ap.parse_args()
    only = {x.strip() for x in args.only.split(";") if x.strip()} | {"Pre-Norm"}
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, load {os.getloadavg()[0]:.1f}, batch {args.batch} x "
          f"{args.seq}, {args.blocks} blocks", flush=True)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 512, (args.batch, args.seq), generator=g)
    targets = torch.randint(0, 512, (args.batch, args.seq), generator=g)
    steps, peaks = {}, {}
    for label, connect, fused, recompute in variants(not args.no_recompute):
        if args.only and label not in only:
            continue
        model = build(connect, fused, recompute, args.blocks)
        step = measure.train_step(model, tokens, targets, compiled=True)
        step()  # compiles
        step()
        peaks[label] = measure._profiler_peak(torch.device("cpu"), step)
        steps[label] = step
        print(f"  compiled {label}", flush=True)
    ms: dict[str, list[float]] = {k: [] for k in steps}
    cpu: dict[str, list[float]] = {k: [] for k in steps}  # process CPU time: load-robust
    for r in range(args.rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for label in order:
            c0 = time.process_time()
            ms[label].append(measure.time_steps(steps[label], args.steps, torch.device("cpu")))
            cpu[label].append(1e3 * (time.process_time() - c0) / args.steps)
    base_peak = peaks["Pre-Norm"]
    print(f"compiled training step / Pre-Norm, median [min-max] over {args.rounds} rounds; "
          f"peak of one compiled step / Pre-Norm's ({base_peak / 2**20:.0f} MiB); "
          f"load {os.getloadavg()[0]:.1f}")
    for label in steps:
        rs = [a / b for a, b in zip(ms[label], ms["Pre-Norm"])]
        cs = [a / b for a, b in zip(cpu[label], cpu["Pre-Norm"])]
        print(f"  {label:22} time {statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}]"
              f"  ({statistics.median(ms[label]):.0f} ms)  CPU time {statistics.median(cs):.2f}"
              f" [{min(cs):.2f}-{max(cs):.2f}]  peak {peaks[label] / base_peak:.2f}x")


if __name__ == "__main__":
    main()
