"""`hcdsl bench A.hc [B.hc ...]`: the cost of each spec's connection as ratios to Pre-Norm.

hcdsl/cli/__init__.py wires it in with `register(app)`. Errors follow the app's policy
(hcdsl/cli/app.py): a bad spec prints its located errors and exits 1, bad usage (e.g. an
unavailable --device) exits 2, anything else is reported as a bug (exit 3). The progress bar
goes to stderr, so `--json` output on stdout stays clean.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner imports torch: only when `bench` runs (hcdsl --version must not)
    from hcdsl.bench.runner import BenchReport, PairResult


def register(app: typer.Typer) -> None:
    """Add the `bench` command to the hcdsl app."""
    app.command("bench")(bench)



def bench(
    files: list[str] = typer.Argument(..., metavar="A.hc [B.hc ...]", help=".hc spec files"),
    batch: int = typer.Option(8, "--batch", min=1, help="sequences per step"),
    seq: int = typer.Option(128, "--seq", min=2, help="tokens per sequence"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="interleaved timing rounds"),
    warmup: int = typer.Option(2, "--warmup", min=1,
                               help="untimed steps per model and mode (the first compiles)"),
    steps: int = typer.Option(3, "--steps", min=1,
                              help="timed steps per model, mode and round"),
    no_compile: bool = typer.Option(False, "--no-compile", help="eager only"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(0, "--threads", min=0,
                                help="torch threads for the run (0: torch's default)"),
    package: bool = typer.Option(True, "--package/--no-package",
                                 help="also run the hyper-connections package's DHC/FC/mHC"),
    memory: bool = typer.Option(True, "--memory/--no-memory",
                                help="measure one eager training step's memory"),
    infer: bool = typer.Option(True, "--infer/--no-infer",
                               help="also time inference, besides the training step"),
    disable: list[str] = typer.Option([], "--disable", metavar="PASS",
                                      help="leave a pass out (repeatable; a wrong name lists them)"),
    recompute: bool = typer.Option(False, "--recompute",
                                   help="recompute the connection in backward (less memory)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output on stdout"),
) -> None:
    """Time each spec against Pre-Norm with the same layers: training step and inference,
    eager and compiled, as ratios (median, min-max over interleaved rounds), and memory."""
    # here: hcdsl.cli imports this module to register it
    from hcdsl.bench.runner import Settings, run_bench
    from hcdsl.cli.app import command, parse_device

    settings = Settings(batch=batch, seq=seq, rounds=rounds, warmup=warmup, steps=steps,
                        compile=not no_compile, device=parse_device(device), seed=seed,
                        package=package, memory=memory, threads=threads, recompute=recompute,
                        disable=tuple(disable), infer=infer)
    err = Console(stderr=True, highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with command("bench"), Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("building", total=None)

        def progress(what: str, done: int, total: int) -> None:
            bar.update(task, description=escape(what), completed=done, total=total)

        report = run_bench(files, settings, progress)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=_jsonable))
        return
    print_report(report, Console(highlight=False, width=None if sys.stdout.isatty() else 180))


def _jsonable(x: object) -> object:
    return None if isinstance(x, float) and math.isnan(x) else str(x)


def _cell(p: PairResult, name: str) -> str:
    m = p.mode(name)
    if m is None:
        return "-"
    if m.ratio is None:
        return "failed" if m.note else "-"
    r = m.ratio
    return f"{r.median:.2f} ({r.min:.2f}-{r.max:.2f})"


def _mem(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}x"


def _mib(x: int | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def print_report(report: BenchReport, out: Console) -> None:
    """The human-readable report: settings, the ratio table, baselines' ms, memory, notes."""
    s, m = report.settings, report.machine
    out.print(f"hcdsl bench: {m.get('cpu', m['machine'])}, {m['cpu_count']} cores, "
              f"{m['threads']} threads, device {m['device']}, torch {m['torch']}, fp32"
              + (f"; load average {m['load_average_at_start']:.1f} at start"
                 if m.get("load_average_at_start") is not None else ""))
    out.print(f"tokens: batch {s.batch} x seq {s.seq}; {s.rounds} rounds x {s.steps} steps "
              f"per model and mode, interleaved (candidate and Pre-Norm back to back, alternating "
              f"which goes first); warm-up {s.warmup}"
              f"{'; compiled: torch.compile(fullgraph=True)' if s.compile else '; eager only'}"
              f"{'; specs compiled with recompute=True' if s.recompute else ''}"
              f"{'; passes disabled: ' + ', '.join(s.disable) if s.disable else ''}")
    out.print("ratio to Pre-Norm with the same layers: median over rounds (min-max); "
              "< 1 is faster")
    from hcdsl.bench.runner import mode_name

    modes = [mode_name(k, c) for k, c in (("train", False), ("train", True),
                                          ("infer", False), ("infer", True))
             if (s.compile or not c) and (s.infer or k == "train")]
    table = Table()
    table.add_column("candidate", no_wrap=True)
    table.add_column("spec", no_wrap=True)
    for name in modes:
        table.add_column(name, justify="right", no_wrap=True)
    if s.memory:
        table.add_column("peak mem", justify="right", no_wrap=True)
        table.add_column("saved for bwd", justify="right", no_wrap=True)
    for p in report.pairs:
        row = [escape(p.label),
               escape(Path(p.spec).name if p.source == "hcdsl" else "(same shapes)")]
        row += [_cell(p, name) for name in modes]
        if s.memory and p.memory is not None:
            row += [_mem(p.memory.peak_ratio), _mem(p.memory.saved_ratio)]
        table.add_row(*row)
    out.print(table)
    for label, ms in report.baselines_ms.items():
        out.print(f"{escape(label)} ms/step (median): " +
                  ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
    if s.memory:
        out.print(report.memory_method)
        for p in report.pairs:
            if p.memory is not None:
                mem = p.memory
                out.print(f"  {escape(p.label)}: peak {_mib(mem.peak_bytes)} MiB vs "
                          f"{_mib(mem.base_peak_bytes)}; saved {_mib(mem.saved_bytes)} MiB vs "
                          f"{_mib(mem.base_saved_bytes)}")
    if s.compile:
        for p in report.pairs:
            if p.compile_s:
                out.print(f"compile (first call) {escape(p.label)}: " + ", ".join(
                    f"{k.split()[0]} {v:.1f} s" for k, v in p.compile_s.items()))
    out.print(f"package: {escape(report.package)}")
    for p in report.pairs:
        for note in p.notes:
            out.print(f"note: {escape(p.label)}: {escape(note)}")
        for mres in p.modes:
            if mres.note:
                out.print(f"note: {escape(p.label)} {mres.mode}: {escape(mres.note)}")
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    out.print(f"wall time {report.wall_s:.0f} s")
