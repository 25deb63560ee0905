"""The working tree's compiled speed against an earlier commit's, in one process, same weights.

    .venv/bin/python benchmarks/against_commit.py 1549c84 specs/proofs/dhc_n4.hc \
        specs/families/frac_tiny_dfc4.hc --mode infer --rounds 30

Issue 16 asks that the presets, once desugared to generator primitives, stay within 2% of
their speed before. Two `hcdsl bench` runs (one per tree) compare ratios to Pre-Norm taken in
different processes at different loads; here both trees' models live in one process: the
commit's `hcdsl` (with its `backends` and `grammar`) is extracted with `git archive` and
imported as `hcdsl_at_<commit>`. For each spec the commit's model, the working tree's (with
the commit's weights loaded strictly: the same state_dict) and the working tree's Pre-Norm
baseline are compiled (`torch.compile(fullgraph=True)`, hcdsl.bench.measure's steps; eager
with --eager), checked
equal on one batch, and timed in interleaved rounds (order alternating). The clock is the
thread's CPU time (`time.thread_time`, one torch thread), which other processes' load
disturbs far less than wall time. Reported: per round new/old, median and range.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

import hcdsl
from hcdsl.bench import measure
from hcdsl.compiler import Compilation

ROOT = Path(__file__).resolve().parent.parent


def extract(commit: str, into: Path) -> str:
    """The commit's package as an importable `hcdsl_at_<commit>` under `into`."""
    name = "hcdsl_at_" + re.sub(r"\W", "_", commit)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "hcdsl", "backends",
                              "grammar"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    pkg = into / name
    (into / "hcdsl").rename(pkg)
    for sub in ("backends", "grammar"):
        (into / sub).rename(pkg / sub)
    (pkg / "grammar" / "__init__.py").touch()
    pattern = re.compile(r"\bhcdsl(?=[.\s:])")  # imports, quoted module names, op library
    for py in pkg.rglob("*.py"):
        py.write_text(pattern.sub(name, py.read_text()))
    return name


def step_of(model: torch.nn.Module, tokens: torch.Tensor, mode: str,
            compiled: bool) -> Callable[[], object]:
    targets = torch.roll(tokens, 1, 1)
    step = (measure.train_step(model, tokens, targets, compiled) if mode == "train"
            else measure.infer_step(model, tokens, compiled))
    step()
    step()  # compiled, warm
    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commit")
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--mode", choices=("train", "infer"), default="train")
    ap.add_argument("--eager", action="store_true", help="time eager steps, not compiled")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch._dynamo.config.cache_size_limit = 64  # one compiled model per variant and spec
    torch._dynamo.config.accumulated_cache_size_limit = 512
    tmp = tempfile.TemporaryDirectory()
    sys.path.insert(0, tmp.name)
    old = importlib.import_module(extract(a.commit, Path(tmp.name)))
    old_compilation = importlib.import_module(old.__name__ + ".compiler").Compilation
    steps: dict[tuple[str, str], Callable[[], object]] = {}
    for spec in a.specs:
        comp = Compilation.load(Path(spec), once=True)
        vocab = comp.spec.vocab
        tokens = torch.randint(0, vocab, (a.batch, a.seq),
                               generator=torch.Generator().manual_seed(0))
        before = old.compile(old_compilation.load(Path(spec), once=True), seed=0)
        now = hcdsl.compile(comp, seed=0)
        now.load_state_dict(before.state_dict())
        with torch.no_grad():
            diff = (now(tokens) - before(tokens)).abs().max().item()
        print(f"{spec}: max |logits now - logits at {a.commit}| = {diff:.3g}")
        base = hcdsl.compile(comp.baseline(), seed=0)
        for label, model in (("old", before), ("new", now), ("pre", base)):
            steps[(spec, label)] = step_of(model, tokens, a.mode, not a.eager)
    cpu: dict[tuple[str, str], list[float]] = {k: [] for k in steps}
    keys = list(steps)
    for r in range(a.rounds):
        for key in keys if r % 2 else keys[::-1]:
            start = time.thread_time()
            for _ in range(a.steps):
                steps[key]()
            cpu[key].append((time.thread_time() - start) / a.steps * 1e3)
    print(f"{a.mode}, {'eager' if a.eager else 'compiled'}, {a.rounds} rounds x {a.steps} steps, thread CPU time; "
          f"old = {a.commit}, new = the working tree")
    for spec in a.specs:
        o, n, p = (cpu[(spec, x)] for x in ("old", "new", "pre"))
        ratio = sorted(y / x for x, y in zip(o, n))
        med = statistics.median
        print(f"  {spec}: new/old {med(ratio):.3f} [{ratio[0]:.3f}-{ratio[-1]:.3f}]; "
              f"/Pre-Norm old {med([x / z for x, z in zip(o, p)]):.3f} "
              f"new {med([y / z for y, z in zip(n, p)]):.3f}; "
              f"ms old {med(o):.1f} new {med(n):.1f} Pre-Norm {med(p):.1f}")


if __name__ == "__main__":
    main()
