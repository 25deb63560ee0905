"""The comparison run of docs/training.md: Pre-Norm, DHC x4, mHC x4 and MUDD on one small
byte-level model (d = 64, 3 blocks of [attention, MLP] = 6 layers, seq 128), trained on the
Python standard library's source with identical data order per seed, 3 seeds each.

    .venv/bin/python benchmarks/compare_run.py [OUT] [--steps N] [--seeds K] [--jobs J]

writes OUT (default out/compare_families) with the report (report.md, report.html, PNGs)
and copies the pictures to docs/ as training_*.png. Run it again to continue an interrupted run:
finished runs are kept, unfinished ones resume from their last checkpoint.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from hcdsl.train.compare import compare

TEMPLATE = """# {title} (benchmarks/compare_run.py)
model {name} {{
  dim = 64
  vocab = 256
  context = 128
  norm = layernorm
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=256)
  body = repeat 3 [attn, ffn]
  connect {connect}
}}
"""
FAMILIES = [  # (file stem, title, connect)
    ("pre_norm", "Pre-Norm residual", "residual"),
    ("dhc4", "dynamic Hyper-Connections, n = 4", "hyper(n=4, dynamic)"),
    ("mhc4", "manifold-constrained Hyper-Connections, n = 4", "mhc(n=4)"),
    ("mudd", "MUDD connections", "mudd"),
]
OPTIONS = {"batch": 16, "seq": 128, "lr": 2e-3, "warmup": 100, "schedule": "cosine",
           "eval_every": 100, "probe_every": 100, "ckpt_every": 500}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default="out/compare_families", type=Path)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--docs", type=Path, default=Path(__file__).parents[1] / "docs")
    args = ap.parse_args()
    spec_dir = args.out / "specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    specs = []
    for stem, title, connect in FAMILIES:
        path = spec_dir / f"{stem}.hc"
        path.write_text(TEMPLATE.format(title=title, name=stem, connect=connect))
        specs.append(str(path))
    t0 = time.perf_counter()
    report = compare(specs, args.out, args.seeds, {**OPTIONS, "steps": args.steps}, args.jobs)
    print(f"report: {report}; wall time {time.perf_counter() - t0:,.0f} s")
    args.docs.mkdir(parents=True, exist_ok=True)
    for png in sorted(args.out.glob("*.png")):
        shutil.copy(png, args.docs / f"training_{png.name}")


if __name__ == "__main__":
    main()
