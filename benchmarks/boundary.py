"""The fused layer boundary and recomputation across layers, compiled: one training step
(forward, cross-entropy, backward; `torch.compile(fullgraph=True)`) of each family against
Pre-Norm with the same layers, with and without the fused boundary (hcdsl/nn/boundary.py),
and with `recompute="layers"`; time as interleaved ratios and the peak bytes of one compiled
step.

    .venv/bin/python benchmarks/boundary.py [--rounds 3] [--steps 2] [--batch 8] [--seq 128]
                                            [--blocks 4] [--no-recompute]
                                            [--only "mHC x4;mHC x4, unfused"]
                                            [--old-sinkhorn]

Model: optimiser.py's (d = 256, [attention(heads=4), mlp] x blocks, vocab 512, fp32, torch on
one thread). Every model compiles once (warm-up), then each round times `steps` steps of every
model back to back; a model's figure is the median over rounds of its per-round ratio to
Pre-Norm [min-max], in wall time and in the process's CPU time (torch on one thread, so CPU
time is the work done, steadier than wall time when other processes share the cores). Peak: the highest bytes allocated above a compiled step's start
(torch.profiler's allocator events), exact.

--old-sinkhorn adds "mHC x4, old sinkhorn": mHC x4 with the Sinkhorn op as it was before the
(n, n, N) layout (hcdsl/nn/sinkhorn.py; kept below verbatim as `hcdsl_bench::sinkhorn_old`),
so the two ops are compared in one run.
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
from hcdsl.nn import generator  # noqa: E402
from optimiser import spec  # noqa: E402 - the same generated specs



# --- the Sinkhorn op before the (n, n, N) layout (hcdsl/nn/sinkhorn.py at 1549c84), verbatim
# but for its name: (..., n, n) layout, out-of-place steps, the same recomputing backward ---

def _old_steps(logits: torch.Tensor, iters: int, keep: list | None = None) -> torch.Tensor:
    x = torch.log_softmax(logits, dim=-2)
    if keep is not None:
        keep.append(x.exp())
    x = torch.log_softmax(x, dim=-1)
    p = x.exp()
    if keep is not None:
        keep.append(p)
    for _ in range(iters - 1):
        p = p / p.sum(dim=-2, keepdim=True)
        if keep is not None:
            keep.append(p)
        p = p / p.sum(dim=-1, keepdim=True)
        if keep is not None:
            keep.append(p)
    return p


@torch.library.custom_op("hcdsl_bench::sinkhorn_old", mutates_args=())
def _old_op(logits: torch.Tensor, iters: int) -> torch.Tensor:
    return _old_steps(logits.contiguous(), iters).contiguous()


@_old_op.register_fake
def _old_fake(logits: torch.Tensor, iters: int) -> torch.Tensor:
    return logits.new_empty(logits.shape)


@torch.library.custom_op("hcdsl_bench::sinkhorn_old_backward", mutates_args=())
def _old_backward_op(grad: torch.Tensor, logits: torch.Tensor, iters: int) -> torch.Tensor:
    mats: list = []
    _old_steps(logits.contiguous(), iters, keep=mats)
    g = grad * mats[-1]
    for k in range(len(mats) - 1, -1, -1):
        p = mats.pop()
        g = torch.addcmul(g, p, g.sum(dim=-1 if k % 2 else -2, keepdim=True), value=-1)
    return g.contiguous()


@_old_backward_op.register_fake
def _old_backward_fake(grad: torch.Tensor, logits: torch.Tensor, iters: int) -> torch.Tensor:
    return logits.new_empty(logits.shape)


def _old_setup(ctx, inputs, output) -> None:  # noqa: ANN001
    ctx.save_for_backward(inputs[0])
    ctx.iters = inputs[1]


def _old_backward(ctx, grad):  # noqa: ANN001, ANN201
    return torch.ops.hcdsl_bench.sinkhorn_old_backward(grad, ctx.saved_tensors[0],
                                                       ctx.iters), None


_old_op.register_autograd(_old_backward, setup_context=_old_setup)


def old_sinkhorn(logits: torch.Tensor, iters: int) -> torch.Tensor:
    return torch.ops.hcdsl_bench.sinkhorn_old(logits, int(iters))


def with_old_sinkhorn(step):  # noqa: ANN001, ANN201
    """`step` run with mHC's Sinkhorn hook (hcdsl.nn.generator.sinkhorn_paper) pointing at the
    old op, on every call (so dynamo's guards on the hook hold: no retrace)."""
    def run():  # noqa: ANN202
        saved = generator.sinkhorn_paper
        generator.sinkhorn_paper = old_sinkhorn
        try:
            return step()
        finally:
            generator.sinkhorn_paper = saved
    return run


LAYERS = "layer attn = attention(heads=4)\n layer ffn = mlp"
FAMILIES = {"Pre-Norm": "residual", "DHC x4": "hyper(n=4, dynamic)", "mHC x4": "mhc(n=4)",
            "MUDD": "mudd"}


def variants(recompute: bool, old: bool = False) -> list[tuple[str, str, bool, str | bool]]:
    """(label, connect, fused, recompute)."""
    out = [(name, c, True, False) for name, c in FAMILIES.items()]
    if old:
        out.append(("mHC x4, old sinkhorn", FAMILIES["mHC x4"], True, False))
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
    ap.add_argument("--old-sinkhorn", action="store_true",
                    help="also mHC x4 with the Sinkhorn op before the (n, n, N) layout")
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
    for label, connect, fused, recompute in variants(not args.no_recompute,
                                                         args.old_sinkhorn):
        if args.only and label not in only:
            continue
        model = build(connect, fused, recompute, args.blocks)
        step = measure.train_step(model, tokens, targets, compiled=True)
        if label.endswith("old sinkhorn"):
            step = with_old_sinkhorn(step)
        step()  # compiles
        step()
        peaks[label] = measure._allocator_sum(torch.device("cpu"), step, peak=True)
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
