"""The frozen inference path (`hcdsl.compile(spec, state_dict=sd, freeze=True)`): one
inference forward (no_grad) of each family, plain and frozen, as a ratio to Pre-Norm with the
same layers.

    .venv/bin/python benchmarks/frozen.py [--rounds 5] [--steps 3] [--batch 8] [--seq 128]
                                          [--compile]

Model: optimiser.py's (d = 256, 4 x [attention(heads=4), mlp], vocab 512, fp32, one thread).
The weights stand for a trained model: every parameter of the model at init plus Gaussian
noise of std 0.02 (seeded), so no static coefficient is exactly its init (at init, freezing
SHC would fold it to one stream, which a trained model never allows). Freezing turns the
trained static coefficients into constants that the canonical passes fold; dynamic
connections have little to fold. Interleaved rounds (the order reversed every other
round); median of the per-round ratios [min-max], of wall time (time.perf_counter) and of the
process's CPU time (time.process_time: what the forward itself used, less disturbed by other
processes on a shared machine).
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
from optimiser import spec  # noqa: E402 - the same generated specs

LAYERS = "layer attn = attention(heads=4)\n layer ffn = mlp"
FAMILIES = {"Pre-Norm": "residual", "SHC x4": "hyper(n=4, static)",
            "DenseFormer 4x5": "denseformer(k=4, p=5)", "DHC x4": "hyper(n=4, dynamic)",
            "mHC x4": "mhc(n=4)", "MUDD": "mudd"}


def trained(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: v + 0.02 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--compile", action="store_true", help="torch.compile(fullgraph=True)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tokens = torch.randint(0, 512, (args.batch, args.seq),
                           generator=torch.Generator().manual_seed(0))
    runs = {}
    for name, connect in FAMILIES.items():
        text = spec("m", connect, LAYERS, "repeat 4 [attn, ffn]")
        sd = trained(hcdsl.compile(text, seed=0))
        for frozen in ((False, True) if name != "Pre-Norm" else (False,)):
            model = hcdsl.compile(text, seed=0, state_dict=sd, freeze=frozen).eval()
            fn = torch.compile(model, fullgraph=True) if args.compile else model
            label = f"{name}{', frozen' if frozen else ''}"
            runs[label] = fn
            with torch.no_grad():
                fn(tokens)
    ms: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    with torch.no_grad():
        for r in range(args.rounds):
            for label in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    runs[label](tokens)
                ms[label].append(1e3 * (time.perf_counter() - t0) / args.steps)
                cpu[label].append(1e3 * (time.process_time() - c0) / args.steps)
    mode = "compiled" if args.compile else "eager"
    print(f"inference forward, {mode}, batch {args.batch} x {args.seq}, / Pre-Norm, median "
          f"[min-max] over {args.rounds} rounds, wall and CPU time; torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.1f}")
    for label in runs:
        rs = [a / b for a, b in zip(ms[label], ms["Pre-Norm"])]
        rc = [a / b for a, b in zip(cpu[label], cpu["Pre-Norm"])]
        print(f"  {label:24} wall {statistics.median(rs):.2f} [{min(rs):.2f}-{max(rs):.2f}] "
              f"({statistics.median(ms[label]):.1f} ms)  cpu {statistics.median(rc):.2f} "
              f"[{min(rc):.2f}-{max(rc):.2f}] ({statistics.median(cpu[label]):.1f} ms)")


if __name__ == "__main__":
    main()
