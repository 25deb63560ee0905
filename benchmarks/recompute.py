"""Recomputation across layers (`hcdsl.compile(spec, recompute="layers")`): memory and time
of one training step (forward, cross-entropy, backward), eager or compiled, with and without
it, as a ratio to Pre-Norm with the same layers and no recomputation.

    .venv/bin/python benchmarks/recompute.py [--batch 16] [--seq 512] [--rounds 3]
                                             [--every 2,4] [--no-time] [--compile]
                                             [--blocks 16] [--only "DHC x4,MUDD"]

Model: optimiser.py's memory model (d = 256, `--blocks` (4) x [attention(heads=4), mlp],
vocab 512, fp32, torch on one thread). `--compile`: every model through torch.compile (one
warm-up step compiles it before anything is measured). `--only`: the families to run besides
Pre-Norm (the base), comma-separated. Per model: *peak*, the highest bytes allocated above the step's start
(torch.profiler's allocator events, hcdsl.bench.measure.peak_step_bytes); *kept*, the bytes
still allocated when forward and loss are done (what backward holds: saved tensors, the
selective checkpoint's cache, the segment boundaries), from the same events; both exact and
deterministic. *Time*: every model's step once per round, interleaved (the order reversed
every other round), after one warm-up step each; the median over rounds of the per-round
ratio to Pre-Norm, [min-max], of wall time and of the process's CPU time (time.process_time,
less disturbed by other processes), and the CPU-time ratio to the same family without
recomputation (the option's own cost). `--every` adds rows with a fixed segment length k
besides the memory model's choice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hcdsl  # noqa: E402
from hcdsl import memory  # noqa: E402
from hcdsl.bench.measure import kept_bytes, peak_step_bytes  # noqa: E402
from optimiser import spec  # noqa: E402 - the same generated specs

LAYERS = "layer attn = attention(heads=4)\n layer ffn = mlp"
FAMILIES = {"Pre-Norm": "residual", "DHC x4": "hyper(n=4, dynamic)", "mHC x4": "mhc(n=4)",
            "MUDD": "mudd"}


def step(model: torch.nn.Module, tokens: torch.Tensor,
         targets: torch.Tensor) -> tuple[float, float]:
    """Wall and CPU seconds of one training step."""
    w0, c0 = time.perf_counter(), time.process_time()
    F.cross_entropy(model(tokens).flatten(0, 1), targets.flatten()).backward()
    for p in model.parameters():
        p.grad = None
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--every", default="", help="extra fixed segment lengths, e.g. 2,4")
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile every model")
    ap.add_argument("--blocks", type=int, default=4, help="[attention, mlp] blocks")
    ap.add_argument("--only", default="", help='families besides Pre-Norm, e.g. "DHC x4,MUDD"')
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in only if f not in FAMILIES]
    if unknown:
        ap.error(f"--only: unknown family {unknown[0]!r}; the families: {', '.join(FAMILIES)}")
    families = {k: v for k, v in FAMILIES.items() if k == "Pre-Norm" or not only or k in only}
    body = f"repeat {args.blocks} [attn, ffn]"
    mode = "compiled" if args.compile else "eager"
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"{mode}, {args.blocks} blocks, batch {args.batch} x {args.seq}", flush=True)
    tokens = torch.randint(0, 512, (args.batch, args.seq))
    targets = torch.randint(0, 512, (args.batch, args.seq))
    extra = [int(k) for k in args.every.split(",") if k]
    rows: list[tuple[str, torch.nn.Module]] = []
    plain: dict[str, str] = {}  # row label: the label of its family without recomputation
    for name, connect in families.items():
        text = spec(name.split()[0].replace("-", "_"), connect, LAYERS, body)
        rows.append((f"{name}", hcdsl.compile(text, seed=0)))
        plain[name] = name
        k = memory.layers_per_segment(hcdsl.lower(text))
        for every in [k, *[e for e in extra if e != k]]:
            label = f"{name} + layers k={every}" + (" (model)" if every == k else "")
            rows.append((label, hcdsl.compile(text, seed=0, recompute="layers",
                                              recompute_every=every)))
            plain[label] = name
    if args.compile:
        rows = [(label, torch.compile(model)) for label, model in rows]
        for label, model in rows:  # compile before measuring anything
            t0 = time.perf_counter()
            step(model, tokens, targets)
            print(f"  compiled {label} in {time.perf_counter() - t0:.0f} s", flush=True)
    base_peak = base_kept = 0
    results: dict[str, list[float]] = {}
    for label, model in rows:
        peak = peak_step_bytes(model, tokens, targets, torch.device("cpu")) or 0
        kept = kept_bytes(model, tokens, targets, torch.device("cpu"))
        if not base_peak:
            base_peak, base_kept = peak, kept
        results[label] = [peak, kept]
        print(f"  {label:30} peak {peak / 2**20:7.1f} MiB {peak / base_peak:5.2f}x   "
              f"kept {kept / 2**20:7.1f} MiB {kept / base_kept:5.2f}x", flush=True)
    if args.no_time:
        return
    for _, model in rows:  # warm-up
        step(model, tokens, targets)
    wall: dict[str, list[float]] = {label: [] for label, _ in rows}
    cpu: dict[str, list[float]] = {label: [] for label, _ in rows}
    for r in range(args.rounds):
        for label, model in (rows if r % 2 == 0 else rows[::-1]):
            w, c = step(model, tokens, targets)
            wall[label].append(w)
            cpu[label].append(c)
    base = rows[0][0]

    def cell(a: list[float], b: list[float]) -> str:
        rs = [x / y for x, y in zip(a, b)]
        return f"{statistics.median(rs):5.2f} [{min(rs):.2f}-{max(rs):.2f}]"

    print(f"{mode} step time, median [min-max] over {args.rounds} interleaved rounds, load "
          f"{os.getloadavg()[0]:.1f}: wall / Pre-Norm, CPU / Pre-Norm, CPU / same family "
          "without recomputation")
    for label in wall:
        print(f"  {label:30} {1e3 * statistics.median(wall[label]):8.1f} ms  "
              f"wall {cell(wall[label], wall[base])}  cpu {cell(cpu[label], cpu[base])}  "
              f"own {cell(cpu[label], cpu[plain[label]])}", flush=True)


if __name__ == "__main__":
    main()
