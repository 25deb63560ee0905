"""The engine's speed: lowering (parse + desugar + IR + passes) against depth for every
family, and the process time of the commands that must start instantly.

    .venv/bin/python benchmarks/engine.py

Lowering: `repeat K [attention, mlp]` at d = 256 (2K layers), best of 3 in one process.
Start-up: user + system CPU seconds of a fresh `hcdsl` process (best of 5), the grammar's
LALR tables already cached (~/.cache/hcdsl).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from hcdsl.compiler import Compilation

FAMILIES = ["residual", "residual(post)", "parallel(separate)", "hyper(n=4, static)",
            "hyper(n=4, dynamic)", "hyper(n=2, fixed)", "frac(m=4, dynamic)",
            "mhc(n=4)", "mudd", "denseformer(k=4, p=5)", "attnres"]
ROOT = Path(__file__).resolve().parents[1]
HCDSL = Path(sys.executable).with_name("hcdsl")


def spec(blocks: int, connect: str) -> str:
    return (f"model m {{\n  dim = 256\n  vocab = 1024\n  layer attn = attention(heads=4)\n"
            f"  layer ffn = mlp\n  body = repeat {blocks} [attn, ffn]\n  connect {connect}\n}}\n")


def lowering(blocks: int, connect: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        Compilation.load(spec(blocks, connect), once=True).ir()
        best = min(best, time.perf_counter() - start)
    return best


def cpu(args: list[str]) -> float:
    best = float("inf")
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([str(HCDSL), *args], capture_output=True, check=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return best


def main() -> None:
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    Compilation.load(spec(1, "residual"), once=True).ir()  # warm: grammar tables, imports
    sizes = (16, 32, 64, 128)
    print("lowering, seconds (blocks of [attention, mlp]):")
    print(f"  {'connect':24}" + "".join(f"{k:>9}" for k in sizes) + "   128/32")
    for connect in FAMILIES:
        times = [lowering(k, connect) for k in sizes]
        print(f"  {connect:24}" + "".join(f"{t:9.3f}" for t in times)
              + f"   {times[-1] / times[1]:5.1f}x", flush=True)
    print("start-up, CPU seconds of a fresh process:")
    for args in (["--version"], ["check", "specs/tiny_dhc4.hc"],
                 ["show", "--ir", "specs/tiny_dhc4.hc"], ["stats", "specs/olmo_1b_dhc4.hc"]):
        print(f"  hcdsl {' '.join(args):38} {cpu(args):.2f} s", flush=True)


if __name__ == "__main__":
    main()
