"""Pipeline parallelism (hcdsl.pipeline, issue 19): for a 16-block model cut into 2 stages,
what the cut sends per token for each family against Pre-Norm's, and the time of a training
step on 2 processes (gloo, 2 stages, GPipe over 4 micro-batches) against one process
running the whole model on the same global batch.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pipeline.py [--no-time] [--steps 6]
        [--picture docs/pipeline_stages.png]

Bytes: counted from the IR (hcdsl/ir/stages.py), fp32, per token of the micro-batch; the
backward pass sends the same amount back (the gradients of what crossed). Step time: the
median of the steps after 2 warm-up steps, 1 thread per process, CPU. On a CPU shared by
both ranks a pipeline cannot be faster than one process (the two stages share the cores,
and 2 stages over 4 micro-batches idle (S - 1) / (M + S - 1) = 20% of the time in GPipe's
bubble); the ratio measures the engine's and the cut's overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hcdsl
from hcdsl.ir.stages import plan

FAMILIES = {"Pre-Norm": "residual", "DHC x4": "hyper(n=4, dynamic)", "mHC x4": "mhc(n=4)",
            "FC x4 (dynamic)": "frac(m=4, dynamic)", "MUDD": "mudd",
            "DenseFormer": "denseformer", "attention residuals": "attnres"}
DIM, VOCAB, BLOCKS = 64, 256, 16


def spec(connect: str) -> str:
    return (f"model m {{\n  dim = {DIM}\n  vocab = {VOCAB}\n  layer attn = attention(heads=4)\n"
            f"  layer ffn = mlp(hidden={4 * DIM})\n  body = repeat {BLOCKS} [attn, ffn]\n"
            f"  connect {connect}\n}}\n")


def cut_bytes(connect: str, seq: int) -> tuple[int, tuple[int, int], str]:
    """(fp32 bytes per token crossing the cut, the split, the tensors)."""
    p = plan(hcdsl.lower(spec(connect)), 2, seq=seq)
    (cut,) = p.cuts
    tensors = f"{len(cut.values)} x " + ", ".join(sorted(set(cut.types)))
    return cut.elements * 4, p.split, tensors


def batches(steps: int, batch: int, seq: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, VOCAB, (batch, seq + 1), generator=g) for _ in range(steps)]


def one_process(connect: str, steps: int, batch: int, seq: int) -> float:
    torch.set_num_threads(1)
    model = hcdsl.compile(spec(connect), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for x in batches(steps, batch, seq):
        t0 = time.perf_counter()
        model(x[:, :-1], targets=x[:, 1:]).loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def worker(rank: int, port: int, out: str, connect: str, steps: int, batch: int, seq: int,
           microbatches: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=300))
    try:
        model = hcdsl.compile(spec(connect), seed=0)
        pipe = hcdsl.pipeline(model, stages=2, schedule="gpipe", microbatches=microbatches,
                              seq=seq)
        opt = torch.optim.AdamW(pipe.parameters(), lr=1e-3)
        times = []
        for x in batches(steps, batch, seq):
            dist.barrier()
            t0 = time.perf_counter()
            pipe.step(x[:, :-1], x[:, 1:])
            opt.step()
            opt.zero_grad()
            dist.barrier()
            times.append(time.perf_counter() - t0)
        if rank == 0:
            Path(out).write_text(json.dumps(statistics.median(times[2:])))
    finally:
        dist.destroy_process_group()


def pipelined(connect: str, steps: int, batch: int, seq: int, microbatches: int) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = Path(f"/tmp/hcdsl_pipeline_bench_{os.getpid()}.json")
    mp.start_processes(worker, nprocs=2, start_method="spawn",
                       args=(port, str(out), connect, steps, batch, seq, microbatches))
    value = json.loads(out.read_text())
    out.unlink()
    return value


def picture(path: Path, blocks: int = 4, stages: int = 3) -> None:
    """The stages of a small model for three families, and what crosses each cut."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    shown = {"Pre-Norm": "residual", "DHC x4 (n = 4 streams)": "hyper(n=4, dynamic)",
             "MUDD (a history of outputs)": "mudd"}
    colours = ["#dbe9f6", "#fde3c8", "#d9f0d3"]
    layers = 2 * blocks
    fig, axes = plt.subplots(len(shown), 1, figsize=(11, 1.9 * len(shown)))
    for ax, (name, connect) in zip(axes, shown.items()):
        text = spec(connect).replace(f"repeat {BLOCKS}", f"repeat {blocks}")
        p = plan(hcdsl.lower(text), stages, seq=64)
        x = 0.0
        starts = {}
        for s in p.stages:
            first, stop = s.layers
            boxes = (["embed"] if s.index == 0 else []) + [
                f"L{k + 1}\n{'attn' if k % 2 == 0 else 'ffn'}" for k in range(first, stop)] + (
                ["head"] if s.index == len(p.stages) - 1 else [])
            x0 = x
            for label in boxes:
                ax.add_patch(Rectangle((x + 0.1, 0.25), 0.8, 0.5, fc="white", ec="#555"))
                ax.text(x + 0.5, 0.5, label, ha="center", va="center", fontsize=7)
                x += 1
            ax.add_patch(Rectangle((x0, 0.1), x - x0, 0.8, fc=colours[s.index % 3],
                                   ec="none", zorder=-1))
            ax.text(x0 + 0.05, 0.82, f"stage {s.index}: {s.params:,} params", fontsize=7,
                    va="center")
            starts[s.index] = (x0, x)
            x += 0.8
        for c, s in zip(p.cuts, p.stages[1:]):
            end, begin = starts[s.index - 1][1], starts[s.index][0]
            ax.add_patch(FancyArrowPatch((end - 0.1, 0.5), (begin + 0.1, 0.5),
                                         arrowstyle="-|>", mutation_scale=10, color="#c0392b"))
            types = sorted(set(c.types))
            what = (f"{c.values[0]} {c.types[0]}" if len(c.values) == 1
                    else f"{', '.join(c.values)}: {len(c.values)} x {', '.join(types)}")
            ax.text((end + begin) / 2, -0.12, f"{what}\n{c.elements * 4:,} B / token",
                    ha="center", va="top", fontsize=7, color="#c0392b")
        ax.set_xlim(-0.2, x)
        ax.set_ylim(-0.75, 1.0)
        ax.axis("off")
        ax.set_title(name, fontsize=9, loc="left")
    fig.suptitle(f"{blocks} blocks cut into {stages} pipeline stages (dim {DIM}, fp32): "
                 "what crosses each cut", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--microbatches", type=int, default=4)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--no-time", action="store_true", help="bytes only")
    ap.add_argument("--picture", type=Path, help="also draw the stages of a small model here "
                    "(docs/pipeline_stages.png)")
    args = ap.parse_args()
    if args.picture:
        picture(args.picture)
    base = cut_bytes(FAMILIES["Pre-Norm"], args.seq)[0]
    print(f"{BLOCKS} blocks (attention + MLP, {2 * BLOCKS} layers), dim {DIM}, 2 stages; "
          f"step: batch {args.batch} x seq {args.seq}, GPipe over {args.microbatches} "
          f"micro-batches, 1 thread per process")
    head = "| family | split (layers) | sent per token (fp32) | x Pre-Norm | what crosses |"
    if not args.no_time:
        head += " step, 1 process | step, 2 stages | ratio |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, connect in FAMILIES.items():
        b, split, tensors = cut_bytes(connect, args.seq)
        row = f"| {name} | {split[0]} + {split[1]} | {b:,} B | {b / base:.2f} | {tensors} |"
        if not args.no_time:
            one = one_process(connect, args.steps, args.batch, args.seq)
            two = pipelined(connect, args.steps, args.batch, args.seq, args.microbatches)
            row += f" {one * 1e3:.0f} ms | {two * 1e3:.0f} ms | {two / one:.2f} |"
        print(row, flush=True)


if __name__ == "__main__":
    sys.exit(main())
