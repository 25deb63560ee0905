"""Fuzzing hcdsl at scale: mutated specs, a differential run, and inputs at the size limits.

    .venv/bin/python benchmarks/fuzz.py                  # 10,000 mutants, 300 random specs
    .venv/bin/python benchmarks/fuzz.py --mutants 50000 --specs 1000 --seed 7
    .venv/bin/python benchmarks/fuzz.py --big-only --before /tmp/old  # old code's front end

1. Mutants (tests/fuzz.py: token and byte edits of the bundled specs) through hcdsl.parse,
   hcdsl.lower and hcdsl.stats: a crash is any exception but HcError/CompileError (or an
   HcError rendered without its summary line); a case over 2 s is slow, and over budget
   when it is not a valid spec of more than 256 layers (those may take 10 ms per layer
   more: tests/fuzz.py budget()); a case still running after --hang seconds is stopped
   (SIGALRM) and counted as a hang.
2. Differential (tests/differential.py): random small valid specs built by fx and reference,
   with and without passes, against the reference interpreter without passes, forward and
   gradients, float32 (1e-5) and float64 (1e-10): mismatches and errors are counted.
3. Big inputs (tests/fuzz.py big_inputs: a megabyte of numbers, brackets, comments, white
   space; just under the token limit: literal matrices, definitions, rules, blocks,
   errors): seconds for the front end (hcdsl.parse) and for parse + lower + stats.
   --before DIR times the front end of another checkout (e.g. `git archive <commit> | tar
   -x -C DIR`) in a subprocess, for a before/after table.

One thread (torch.set_num_threads(1)); the machine's other jobs show in the times.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from differential import compare, random_spec  # noqa: E402
from fuzz import DEADLINE, DEEP, PER_LAYER, Result, big_inputs, mutants, run_case  # noqa: E402

import hcdsl  # noqa: E402
from hcdsl.errors import CompileError, HcError  # noqa: E402


class Hang(Exception):
    """A case ran past the --hang limit."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def timed_case(text: str, hang: float) -> Result:
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, hang)
    t0 = time.perf_counter()
    try:
        return run_case(text)
    except Hang:
        return Result("hang", time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def fuzz_mutants(count: int, seed: int, hang: float) -> None:
    kinds: Counter[str] = Counter()
    slow: list[tuple[float, str]] = []
    over_budget = 0
    crashes: dict[str, tuple[str, str]] = {}
    worst = 0.0
    t0 = time.perf_counter()
    for name, text in mutants(count, seed):
        r = timed_case(text, hang)
        kinds[r.kind] += 1
        worst = max(worst, r.seconds)
        if r.seconds > DEADLINE:
            slow.append((r.seconds, f"{name} ({r.layers} layers)"))
        over_budget += r.over
        if r.kind == "crash":
            crashes.setdefault(r.detail.strip().splitlines()[-1][:100], (name, text))
    print(f"mutants: {count:,} (seed {seed}) in {time.perf_counter() - t0:.0f} s: "
          f"{kinds['ok']:,} ok, {kinds['error']:,} hcdsl errors, {kinds['crash']} crashes, "
          f"{kinds['hang']} hangs (> {hang:g} s), {len(slow)} over {DEADLINE:g} s "
          f"({over_budget} over budget: {DEADLINE:g} s, +{PER_LAYER * 1000:g} ms per layer "
          f"past {DEEP} layers); max {worst:.2f} s per case")
    for why, (name, text) in crashes.items():
        print(f"  crash {name}: {why}\n    {text[:200]!r}")
    for s, name in sorted(slow)[-5:]:
        print(f"  slow {name}: {s:.2f} s")


def differential(count: int, seed: int) -> None:
    counts: Counter[str] = Counter()
    worst = {torch.float32: 0.0, torch.float64: 0.0}
    t0 = time.perf_counter()
    for s in range(seed, seed + count):
        text = random_spec(s)
        for dtype in (torch.float32, torch.float64):
            try:
                diffs = compare(text, dtype, s)
            except (HcError, CompileError) as exc:
                counts["invalid spec"] += 1
                print(f"  spec {s} did not compile: {str(exc).splitlines()[0]}")
                continue
            except Exception as exc:  # noqa: BLE001 - what the run looks for
                counts["error"] += 1
                print(f"  spec {s} {dtype}: {type(exc).__name__}: {exc}")
                continue
            for d in diffs:
                counts["comparisons"] += 1
                if not "mhc(" in text:
                    worst[dtype] = max(worst[dtype], d.logits, d.grads)
                if not d.ok:
                    counts["mismatch"] += 1
                    print(f"  mismatch: spec {s} {dtype} {d}")
    print(f"differential: {count} random specs x fp32/fp64 x 3 ways = "
          f"{counts['comparisons']:,} comparisons in {time.perf_counter() - t0:.0f} s: "
          f"{counts['mismatch']} mismatches, {counts['error']} errors, "
          f"{counts['invalid spec']} invalid specs; largest difference (logits or relative "
          f"gradient, mHC excluded) fp32 {worst[torch.float32]:.1e}, fp64 "
          f"{worst[torch.float64]:.1e}")


BEFORE = """import sys, time
sys.setrecursionlimit(10000)
text = open(sys.argv[1], encoding="utf-8").read()
import hcdsl
t0 = time.perf_counter()
try:
    hcdsl.parse(text)
except Exception as exc:
    pass
print(time.perf_counter() - t0)
"""


def big(before: Path | None, limit: float) -> None:
    print("big inputs (bytes, tokens): front end = hcdsl.parse; all = parse + lower + stats"
          + ("; before = the front end of " + str(before) if before else ""))
    from hcdsl.frontend.source import count_tokens

    for name, text in big_inputs().items():
        t0 = time.perf_counter()
        try:
            hcdsl.parse(text)
            outcome = "ok"
        except (HcError, CompileError) as exc:
            outcome = "error: " + str(exc).splitlines()[0].split(": error: ")[-1][:60]
        front = time.perf_counter() - t0
        whole = run_case(text).seconds
        old = ""
        if before is not None:
            old = f"  before {_before(before, text, limit)}"
        print(f"  {name:26s} {len(text.encode()):>9,} B {count_tokens(text):>9,} tok  front end "
              f"{front:5.2f} s  all {whole:5.2f} s{old}  ({outcome})")


def _before(checkout: Path, text: str, limit: float) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".hc", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        out = subprocess.run([sys.executable, "-c", BEFORE, f.name], capture_output=True,
                             text=True, timeout=limit, cwd=tempfile.gettempdir(),
                             env={**os.environ, "PYTHONPATH": str(checkout)})
        return f"{float(out.stdout.split()[-1]):5.2f} s" if out.stdout.strip() else "crash"
    except subprocess.TimeoutExpired:
        return f"> {limit:g} s"
    finally:
        os.unlink(f.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=10_000)
    ap.add_argument("--specs", type=int, default=300, help="random specs, differential")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--hang", type=float, default=30.0, help="seconds before a case is a hang")
    ap.add_argument("--big-only", action="store_true", help="only the big inputs")
    ap.add_argument("--before", type=Path, help="a checkout whose front end to time too")
    ap.add_argument("--before-limit", type=float, default=120.0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.big_only:
        fuzz_mutants(args.mutants, args.seed, args.hang)
        differential(args.specs, args.seed)
    big(args.before, args.before_limit)


if __name__ == "__main__":
    main()
