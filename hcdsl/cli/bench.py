"""`hcdsl bench A.hc [B.hc ...]`: the cost of each spec's connection as ratios to Pre-Norm
(the library: hcdsl/bench/). Errors follow the app's policy (app.py): a bad spec prints its
located errors and exits 1, bad usage (e.g. an unavailable --device) exits 2, anything else
is reported as a bug (exit 3). The progress bar goes to stderr, so `--json` output on stdout
stays clean. The runner imports torch: it loads only when `bench` runs."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hcdsl.cli.app import app, command, parse_device


@app.command("bench")
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
    recompute_layers: bool = typer.Option(
        False, "--recompute-layers",
        help='recomputation across layers (recompute="layers"; Pre-Norm baselines without)'),
    recompute_every: int = typer.Option(0, "--recompute-every", min=0,
                                        help="layers per recomputed segment (0: the model's)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output on stdout"),
) -> None:
    """Time each spec against Pre-Norm with the same layers: training step and inference,
    eager and compiled, as ratios (median, min-max over interleaved rounds), and memory."""
    if recompute and recompute_layers:
        raise typer.BadParameter("choose --recompute or --recompute-layers, not both",
                                 param_hint="--recompute-layers")
    if recompute_every and not recompute_layers:
        raise typer.BadParameter("needs --recompute-layers", param_hint="--recompute-every")
    from hcdsl.bench.runner import Settings, run_bench  # torch: only when bench runs
    from hcdsl.bench.text import jsonable, print_report

    settings = Settings(batch=batch, seq=seq, rounds=rounds, warmup=warmup, steps=steps,
                        compile=not no_compile, device=parse_device(device), seed=seed,
                        package=package, memory=memory, threads=threads, recompute=recompute,
                        recompute_layers=recompute_layers, recompute_every=recompute_every,
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
        typer.echo(json.dumps(report.to_json(), indent=2, default=jsonable))
        return
    print_report(report, Console(highlight=False, width=None if sys.stdout.isatty() else 180))
