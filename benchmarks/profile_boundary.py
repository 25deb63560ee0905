"""Where mHC x4's compiled training step spends its time over Pre-Norm's, by part of the
layer boundary (mHC, arXiv 2512.24880, §4.1-4.3).

    .venv/bin/python benchmarks/profile_boundary.py [--steps 5] [--parts-only] [--fused]
                                                    [--old-sinkhorn]
    .venv/bin/python benchmarks/profile_boundary.py --paths 5 --steps 2

Two views, both on optimiser.py's "blocks" shape (d = 256, 4 x [attention, MLP], vocab 512,
batch 8 x 128, fp32, torch on one thread):

1. The whole step, compiled (`torch.compile(fullgraph=True)` of forward + loss, then
   backward) under torch.profiler with inductor's kernel profiling on, so every generated C++
   kernel, extern GEMM and custom op is an event: the self time per event, grouped into
   extern GEMMs, the Sinkhorn op (forward and backward), fused C++ kernels, and the rest;
   mHC x4 against Pre-Norm.
2. The parts of one boundary alone, each compiled, forward + backward, on a (B, T, n, C)
   state of the same shape: the coefficient projection x φ (one GEMM), the RMS norm of the
   flat state, the Sinkhorn op, the read (h_in = H_preᵀ H) and the write + mix
   (H' = H_resᵀ H + H_postᵀ o), then the whole boundary as the unfused lowering emits it,
   and, with --fused, as the fused one does (hcdsl/nn/boundary.py). Times x 8 boundaries
   against the step's difference say which part the gap is. "coefficients (GeneratorCoef)" is
   the module mHC runs as (a generator with mHC's parameters, hcdsl/nn/generator.py);
   ManifoldCoef (hcdsl/nn/manifold.py) is the papers' reference the tests compare it to.
   --old-sinkhorn adds the Sinkhorn op before the (n, n, N) layout (benchmarks/boundary.py's
   copy), so the two are timed in one run.

--paths ROUNDS: only the whole compiled step of Pre-Norm, mHC x4 (the generator's one-GEMM mHC
step) and mHC x4 by the generator's general path (as before that step), interleaved rounds.

Read ratios within one run; absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hcdsl  # noqa: E402
from hcdsl.bench import measure  # noqa: E402
from hcdsl.nn.boundary import boundary_write  # noqa: E402
from hcdsl.nn.generator import GeneratorCoef  # noqa: E402
from hcdsl.nn.manifold import ManifoldCoef  # noqa: E402
from hcdsl.nn.ops import mix_streams  # noqa: E402
from hcdsl.nn.sinkhorn import sinkhorn  # noqa: E402

SPEC = """model m {{
 dim = 256
 vocab = 512
 layer attn = attention(heads=4)
 layer ffn = mlp
 body = repeat 4 [attn, ffn]
 connect {connect}
}}
"""
B, T, N, C = 8, 128, 4, 256
WRAPPERS = ("Torch-Compiled", "CompiledFunction", "## ",
            "autograd::engine::evaluate_function: CompiledFunctionBackward")


def bench(fn: Callable[[], object], steps: int) -> float:
    """Median ms of `steps` calls after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def group(name: str) -> str:
    if "sinkhorn_backward" in name:
        return "sinkhorn op, backward"
    if "sinkhorn" in name:
        return "sinkhorn op, forward"
    if name.startswith("cpp_fused") or name.startswith("kernel_cpp"):
        return "fused C++ kernels"
    if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                "mkldnn::_linear_pointwise", "aten::_scaled_dot_product_flash_attention_for_cpu",
                "aten::_scaled_dot_product_flash_attention_for_cpu_backward"):
        return "extern GEMM / attention"
    return "other ops"


def whole_step(connect: str, steps: int) -> tuple[float, dict[str, float], int]:
    torch.manual_seed(0)
    model = hcdsl.compile(SPEC.format(connect=connect), seed=0)
    tokens = torch.randint(0, 512, (B, T))
    step = measure.train_step(model, tokens, tokens, compiled=True)
    ms = bench(step, steps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    by: dict[str, float] = defaultdict(float)
    count = 0
    for e in prof.events():
        if e.name.startswith(WRAPPERS):
            continue
        anc, inside = e, ""
        while anc is not None:  # the Sinkhorn op's own aten ops count as the op's
            if "sinkhorn" in anc.name:
                inside = anc.name
            anc = anc.cpu_parent
        key = group(inside) if inside else group(e.name)
        by[key] += e.self_cpu_time_total / 1e3 / steps
        count += 1
    return ms, dict(by), count // steps


def paths(rounds: int, steps: int) -> None:
    """The whole compiled training step of Pre-Norm, of mHC x4 as it runs (GeneratorCoef's
    one-GEMM mHC step, `_mhc_step`) and of mHC x4 through the generator's general path (the
    views: φ_res's columns gathered to RES order, Sinkhorn on the transpose; what main ran
    before the step path), interleaved in rounds (order reversed every other round): the
    median per-round ratio to Pre-Norm [min-max], wall and CPU time."""
    tokens = torch.randint(0, 512, (B, T))
    runs: dict[str, Callable[[], None]] = {}
    for name, connect, general in (("Pre-Norm", "residual", False),
                                   ("mHC x4", "mhc(n=4)", False),
                                   ("mHC x4, general path", "mhc(n=4)", True)):
        torch.manual_seed(0)
        model = hcdsl.compile(SPEC.format(connect=connect), seed=0)
        for m in model.modules():
            if isinstance(m, GeneratorCoef) and general:
                m.mhc_step = False
        runs[name] = measure.train_step(model, tokens, tokens, compiled=True)
        runs[name]()  # compile
        runs[name]()
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    for r in range(rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        got = {}
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                runs[name]()
            got[name] = (time.perf_counter() - w0, time.process_time() - c0)
        for name in runs:
            wall[name].append(got[name][0] / got["Pre-Norm"][0])
            cpu[name].append(got[name][1] / got["Pre-Norm"][1])
    print(f"compiled training step / Pre-Norm, median [min-max] over {rounds} rounds of "
          f"{steps} steps; load {os.getloadavg()[0]:.1f}")
    for name in runs:
        print(f"  {name:22} wall {statistics.median(wall[name]):.3f} "
              f"[{min(wall[name]):.3f}-{max(wall[name]):.3f}]  cpu "
              f"{statistics.median(cpu[name]):.3f} [{min(cpu[name]):.3f}-{max(cpu[name]):.3f}]",
              flush=True)


def live_coef() -> GeneratorCoef:
    """The first step generator of a compiled mHC x4 model: what mHC runs as."""
    model = hcdsl.compile(SPEC.format(connect="mhc(n=4)"), seed=0)
    return next(m for m in model.modules() if isinstance(m, GeneratorCoef) and m.role == "step")


def parts(steps: int, fused: bool, old: bool = False) -> dict[str, float]:
    """Forward + backward ms of each part of one boundary, compiled."""
    torch.manual_seed(0)
    coef = ManifoldCoef(N, C, init="paper")
    gen = live_coef()
    h = torch.randn(B, T, N, C, requires_grad=True)
    o = torch.randn(B, T, C, requires_grad=True)
    phi = torch.randn(N * C, 2 * N + N * N, requires_grad=True)
    logits = torch.randn(B, T, N, N, requires_grad=True)
    m = torch.softmax(torch.randn(B, T, N + 1, N + 1), -1).requires_grad_()

    def run(f: Callable[[], torch.Tensor]) -> Callable[[], None]:
        g = torch.compile(f, fullgraph=True)

        def go() -> None:
            g().sum().backward()
        return go

    cases: dict[str, Callable[[], torch.Tensor]] = {
        "projection x phi": lambda: h.flatten(-2) @ phi,
        "rms of flat state": lambda: torch.rsqrt(h.flatten(-2).pow(2).mean(-1) + 1e-6),
        "sinkhorn op": lambda: sinkhorn(logits, 20),
        "read h_in = pre^T H": lambda: mix_streams(h, m[..., 1:, :1]),
        "write+mix": lambda: mix_streams(h, m[..., 1:, 1:]) + o.unsqueeze(-2) * m[..., :1, 1:]
        .transpose(-1, -2),
        "coefficients (ManifoldCoef)": lambda: coef(h),
        "coefficients (GeneratorCoef)": lambda: gen(h),
    }
    if old:
        from boundary import old_sinkhorn  # benchmarks/boundary.py's copy of the old op
        cases["sinkhorn op, old layout"] = lambda: old_sinkhorn(logits, 20)

    def boundary() -> torch.Tensor:  # as the backend lowers one boundary (IR above)
        mm = coef(h)
        both = mix_streams(h, mm[..., 1:5, 0:5])
        x = both[..., 0:1, :].flatten(-2)
        y = F.rms_norm(x, (C,))
        return o.unsqueeze(-2) * mm[..., 0, 1:5, None] + both[..., 1:5, :] + y.sum()
    def fused_boundary() -> torch.Tensor:  # as the fused lowering emits it (nn/boundary.py)
        mm = coef(h)
        x = mix_streams(h, mm[..., 1:5, 0:1]).flatten(-2)
        y = F.rms_norm(x, (C,))
        return boundary_write(h, o, mm[..., 1:5, 1:5], mm[..., 0, 1:5]) + y.sum()
    cases["whole boundary, unfused"] = boundary
    if fused:
        cases["whole boundary, fused"] = fused_boundary
    return {name: bench(run(f), steps) for name, f in cases.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--parts-only", action="store_true")
    ap.add_argument("--paths", type=int, metavar="ROUNDS", default=0,
                    help="only the whole step of Pre-Norm and of mHC x4 by the mHC step path "
                         "and by the general path, interleaved over ROUNDS rounds of --steps")
    ap.add_argument("--fused", action="store_true")
    ap.add_argument("--old-sinkhorn", action="store_true",
                    help="also the Sinkhorn op before the (n, n, N) layout")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch._inductor.config.cpp.enable_kernel_profile = True
    print(f"torch {torch.__version__}, load {os.getloadavg()[0]:.1f}; B x T = {B} x {T}, "
          f"n = {N}, C = {C}")
    if args.paths:
        torch._inductor.config.cpp.enable_kernel_profile = False
        return paths(args.paths, args.steps)
    if not args.parts_only:
        rows = {}
        for name, connect in (("Pre-Norm", "residual"), ("mHC x4", "mhc(n=4)")):
            rows[name] = whole_step(connect, args.steps)
            ms, by, count = rows[name]
            print(f"{name:9} step {ms:7.1f} ms, {count} events/step: " +
                  ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(by.items())), flush=True)
        (a, ba, _), (b, bb, _) = rows["Pre-Norm"], rows["mHC x4"]
        print(f"ratio {b / a:.2f}; difference {b - a:.1f} ms: " + ", ".join(
            f"{k} {bb.get(k, 0) - ba.get(k, 0):+.1f}" for k in sorted(set(ba) | set(bb))))
    print("one boundary's parts, compiled, forward + backward, median ms (x 8 boundaries):")
    for name, ms in parts(args.steps, args.fused, args.old_sinkhorn).items():
        print(f"  {name:28} {ms:6.2f}  (x8: {8 * ms:6.1f})", flush=True)


if __name__ == "__main__":
    main()
