"""What the optimiser buys: one training step (forward + cross-entropy + backward) of each
family against hcdsl's own Pre-Norm with the same layers, eager and compiled, with the
optimisation passes and without the ones that target the connection's cost; and the memory
of one step, plain and with recompute=True.

    .venv/bin/python benchmarks/optimiser.py [--rounds 9] [--no-compile] [--memory-only]

It runs `hcdsl bench`'s machinery (hcdsl/bench/) on generated specs, so the method is the
one `hcdsl bench` prints: interleaved rounds, candidate and Pre-Norm back to back, the
median of the per-round ratios (min-max in brackets); torch on one thread. Memory is exact,
not timed: peak = highest bytes allocated above the step's start (torch.profiler's
allocator events), saved = bytes autograd keeps for backward.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from hcdsl.bench import Settings, run_bench

FAMILIES = {"DHC x4": "hyper(n=4, dynamic)", "DFC m=4": "frac(m=4, dynamic)",
            "mHC x4": "mhc(n=4)", "MUDD": "mudd"}
PARALLEL = {"PTB": "parallel(shared)"}  # attention and MLP of a block read one value
OPT = ("split-stack-mix", "merge-sibling-mixes", "fuse-parallel-inputs")
SHAPES = {  # name: (layers, body, batch, seq)
    "mlp": ("layer ffn = mlp(hidden=1024)", "repeat 4 [ffn]", 8, 128),
    "blocks": ("layer attn = attention(heads=4)\n layer ffn = mlp", "repeat 4 [attn, ffn]", 8,
               128),
}
MEMORY_BATCH = (16, 512)


def spec(name: str, connect: str, layers: str, body: str) -> str:
    return (f"model {name} {{\n dim = 256\n vocab = 512\n {layers}\n body = {body}\n"
            f" connect {connect}\n}}\n")


def families(shape: str) -> dict[str, str]:
    """The connections timed on a shape: parallel blocks only where a block has two layers;
    MUDD's q, k, v ways need attention, so MLP-only blocks get mudd(ways=1)."""
    if shape == "blocks":
        return {**FAMILIES, **PARALLEL}
    return {**FAMILIES, "MUDD": "mudd(ways=1)"}


def write_specs(folder: Path, shape: str) -> list[str]:
    layers, body, _, _ = SHAPES[shape]
    paths = []
    for i, connect in enumerate(families(shape).values()):
        path = folder / f"{shape}_{i}.hc"
        path.write_text(spec(f"{shape}_{i}", connect, layers, body))
        paths.append(str(path))
    return paths


def speed(folder: Path, args: argparse.Namespace) -> None:
    print("training step / Pre-Norm, median [min-max] over rounds:")
    for shape, (_, _, batch, seq) in SHAPES.items():
        paths = write_specs(folder, shape)
        for label, disable in (("optimised", ()), ("without the new passes", OPT)):
            report = run_bench(paths, Settings(
                batch=batch, seq=seq, rounds=args.rounds, steps=args.steps,
                compile=not args.no_compile, package=False, memory=False, threads=1,
                disable=disable, infer=False))
            for mode in ["train eager"] + ([] if args.no_compile else ["train compiled"]):
                cells = []
                for name, pair in zip(families(shape), report.pairs):
                    m = pair.mode(mode)
                    r = m.ratio if m is not None else None
                    cells.append(f"{name} " + (f"{r.median:.2f} [{r.min:.2f}-{r.max:.2f}]"
                                               if r is not None else "failed"))
                print(f"  {shape:6} {mode:14} {label:22} " + "  ".join(cells), flush=True)


def memory(folder: Path) -> None:
    batch, seq = MEMORY_BATCH
    paths = write_specs(folder, "blocks")[:len(FAMILIES)]
    rows: dict[str, list[str]] = {name: [] for name in FAMILIES}
    ways = {"without the new passes": (OPT, False), "optimised": ((), False),
            "optimised + recompute": ((), True)}
    for disable, recompute in ways.values():
        report = run_bench(paths, Settings(batch=batch, seq=seq, rounds=1, warmup=1, steps=1,
                                           compile=False, package=False, threads=1,
                                           recompute=recompute, disable=disable, infer=False))
        for name, pair in zip(FAMILIES, report.pairs):
            mem = pair.memory
            rows[name].append(f"peak {mem.peak_ratio:.2f}x saved {mem.saved_ratio:.2f}x")
    print(f"memory of one eager training step, d = 256, 4 attention+MLP blocks, batch "
          f"{batch} x {seq}, / Pre-Norm:")
    for name, cells in rows.items():
        print(f"  {name:8} " + "   ".join(f"{way}: {cell}" for way, cell in zip(ways, cells)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=2, help="timed steps per model and round")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--memory-only", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.memory_only:
            speed(Path(tmp), args)
        memory(Path(tmp))


if __name__ == "__main__":
    main()
