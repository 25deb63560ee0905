"""The `hcdsl` command: check, show, stats, run, demo.

Every mistake in a spec (HcError) or at build time (CompileError) prints as a clean message
on stderr with exit status 1, never a traceback; bad usage exits with status 2.
Other modules add commands with a `register(app)` function called at the end of this file.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Optional

import torch
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import hcdsl
from hcdsl import cli_prove
from hcdsl.errors import CompileError, HcError
from hcdsl.ir.types import IRTypeError
from hcdsl.ir.verify import IRVerifyError
from hcdsl.passes.pipeline import DEFAULT
from hcdsl.schemes import desugar
from hcdsl.spec import Matrix
from hcdsl.stats import Stats, stats

app = typer.Typer(
    name="hcdsl", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="hcdsl: a compiler for how the layers of a deep network connect.",
)


def console() -> Console:
    """Rich output on stdout; 120 columns when piped, so tables are not squeezed."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


RUN_LIMIT = 50_000_000  # `hcdsl demo` runs specs up to this many parameters; larger: counted


class Failed(Exception):
    """A command failed; the message was already printed."""


@contextmanager
def reported(what: str) -> Iterator[None]:
    """Turn spec and build errors into clean stderr messages (raises Failed)."""
    try:
        yield
    except HcError as exc:
        typer.echo(exc.render(), err=True)
        raise Failed from None
    except CompileError as exc:
        typer.echo(f"{what}: error: {exc}", err=True)
        raise Failed from None
    except (IRVerifyError, IRTypeError) as exc:  # a compiler bug, not the user's mistake
        typer.echo(f"{what}: internal compiler error (please report it): {exc}", err=True)
        raise Failed from None


def exit_on_failure(fn):  # noqa: ANN001, ANN201 - a decorator for command bodies
    """Failed -> exit status 1."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        try:
            return fn(*args, **kwargs)
        except Failed:
            raise typer.Exit(1) from None

    return wrapper


# -- formatting -------------------------------------------------------------------------
def fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def fmt_matrix(m: Matrix) -> str:
    cells = [[fmt_num(v) for v in row] for row in m]
    width = max(len(c) for row in cells for c in row)
    return "\n".join("[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)


def fmt_params(p: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(p) >= size:
            return f"{p / size:.2f}{unit}"
    return str(p)


def fmt_percent(p: float) -> str:
    """Two significant digits at least, never an exponent: +0.000065%, +0.033%, +1.072%."""
    if p == 0:
        return "0%"
    digits = max(3, 1 - math.floor(math.log10(abs(p))))
    return f"{p:+.{digits}f}%"


def fmt_extra(p: int) -> str:
    return f"{p:+,}" if p else "0"


def matrices_table(st: Stats) -> Table:
    table = Table()
    for col in ("layers", "M", "weights"):
        table.add_column(col)
    for where, step in st.matrix_groups():
        kind = "dynamic" if step.dynamic else "learned" if step.learn else "fixed"
        table.add_row(escape(where), escape(fmt_matrix(step.matrix)), kind)
    return table


def summary_table(st: Stats) -> Table:
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in (
        ("layers (blocks)", f"{st.layers} ({st.blocks})"), ("streams", str(st.streams)),
        ("dim / vocab", f"{st.dim} / {st.vocab}"), ("params", f"{st.params:,}"),
        ("Pre-Norm params", f"{st.baseline_params:,}"),
        ("extra params", fmt_extra(st.extra_params)), ("extra %", fmt_percent(st.extra_percent)),
    ):
        table.add_row(what, escape(value))
    return table


# -- commands ---------------------------------------------------------------------------
def check_one(path: str) -> bool:
    """Parse, validate and lower a spec: an OK line, or its errors on stderr."""
    try:
        with reported(path):
            model = hcdsl.parse(path)
            hcdsl.lower(model)
            family = desugar(model).family
    except Failed:
        return False
    typer.echo(f"OK {path}: model {model.name}, {family}, {len(model.sequence)} layers")
    return True


@app.command()
def check(files: list[str] = typer.Argument(..., metavar="FILE...", help=".hc spec files")) -> None:
    """Parse, validate and lower each spec: one OK line per file, or every error."""
    results = [check_one(f) for f in files]
    if not all(results):
        raise typer.Exit(1)


@app.command()
@exit_on_failure
def show(
    file: str = typer.Argument(..., metavar="FILE"),
    ir: bool = typer.Option(False, "--ir", help="the IR, as a canonical text dump"),
    code: bool = typer.Option(False, "--code", help="the generated torch.fx code"),
    dot: bool = typer.Option(False, "--dot", help="the IR as Graphviz DOT"),
    arrangement: bool = typer.Option(
        False, "--arrangement", help="which layers the static connections run in parallel"),
    no_passes: bool = typer.Option(False, "--no-passes", help="the IR before the passes"),
) -> None:
    """Show what a spec compiles to: --ir, --code, --dot or --arrangement."""
    if ir + code + dot + arrangement != 1:
        raise typer.BadParameter("choose exactly one of --ir, --code, --dot, --arrangement")
    from hcdsl.ir.dump import dump, to_dot

    passes = None if no_passes else DEFAULT
    with reported(file):
        if arrangement:
            typer.echo(cli_prove.arrangement_text(file))
            return
        if code:
            with torch.device("meta"):  # shapes only: no weights are allocated
                module = hcdsl.compile(file, passes=passes)
            typer.echo(module.code.strip())
            return
        graph = hcdsl.lower(file, passes=passes)
        typer.echo(dump(graph) if ir else to_dot(graph), nl=False)


@app.command("stats")
@exit_on_failure
def stats_cmd(
    file: str = typer.Argument(..., metavar="FILE"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Parameters, extra parameters over Pre-Norm, and the static connection matrices."""
    with reported(file):
        st = stats(file)
    if as_json:
        typer.echo(json.dumps(st.model_dump(mode="json"), indent=2))
        return
    typer.echo(f"{st.name}: {st.family}")
    console().print(summary_table(st))
    if not st.matrices:
        typer.echo("no step matrices: the state is a history of block outputs, read by "
                   "depth-wise aggregates")
        return
    typer.echo("step matrices at init, M = [[0, OUT], [READ, RES]] (rows: layer output, "
               "streams; columns: reads, new streams; HC: [[0, B], [A_m, A_r]], FC: "
               "[[0, diag(B)], [Y, A]]):")
    console().print(matrices_table(st))


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return device


def train_step(model: torch.nn.Module, tokens: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Forward + backward of next-token cross-entropy; (logits, loss)."""
    logits = model(tokens)
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    return logits, loss.item()


@app.command()
@exit_on_failure
def run(
    file: str = typer.Argument(..., metavar="FILE"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile(fullgraph=True)"),
    batch: int = typer.Option(2, "--batch", min=1),
    seq: int = typer.Option(16, "--seq", min=2),
    steps: int = typer.Option(1, "--steps", min=1, help="forward+backward steps to time"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build a spec and run forward+backward on random tokens."""
    dev = _device(device)
    with reported(file):
        t0 = time.perf_counter()
        model = hcdsl.compile(file, device=dev, seed=seed)
        built = time.perf_counter() - t0
        vocab = model.hc_ir.payload("embed").vocab
    if compile_:
        model = torch.compile(model, fullgraph=True)
    params = sum(p.numel() for p in model.parameters())
    typer.echo(f"built {file}: {params:,} params in {built:.2f} s on {dev}")
    tokens = torch.randint(0, vocab, (batch, seq), device=dev, generator=None)
    for i in range(steps):
        t0 = time.perf_counter()
        logits, loss = train_step(model, tokens)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - t0
        note = " (includes torch.compile)" if compile_ and i == 0 else ""
        typer.echo(f"step {i + 1}: tokens {tuple(tokens.shape)} -> logits "
                  f"{tuple(logits.shape)}, loss {loss:.4f}, forward+backward {wall:.3f} s{note}")


def _walk(folder, prefix: str = "") -> list[tuple[str, str]]:  # noqa: ANN001 - Traversable
    """(relative name, text) of every .hc file under a folder, subfolders included."""
    out = []
    for p in folder.iterdir():
        if p.is_dir() and not p.name.startswith(("_", ".")):
            out += _walk(p, f"{prefix}{p.name}/")
        elif p.name.endswith(".hc"):
            out.append((prefix + p.name, p.read_text()))
    return sorted(out)


def bundled_specs() -> list[tuple[str, str]]:
    """(name, text) of the specs shipped in the package (specs/ and its subfolders)."""
    return _walk(resources.files("hcdsl.specs"))


def dir_specs(directory: Path) -> list[tuple[str, str]]:
    if not directory.is_dir():
        raise typer.BadParameter(f"not a directory: {directory}", param_hint="DIR")
    return _walk(directory)


def demo_one(name: str, text: str) -> Stats | None:
    """Check and count one spec; errors printed with the spec's file name."""
    try:
        with reported(name):
            try:
                return stats(text)
            except HcError as exc:  # name the file, not <spec>
                exc.filename = name
                raise
    except Failed:
        return None


@app.command()
def demo(directory: Optional[Path] = typer.Argument(  # noqa: UP007 - typer needs Optional
        None, metavar="[DIR]", help="a folder of .hc specs (default: the bundled ones)")) -> None:
    """Check every spec, tabulate them, and run each small one once."""
    specs = bundled_specs() if directory is None else dir_specs(directory)
    if not specs:
        typer.echo(f"no .hc specs in {directory}", err=True)
        raise typer.Exit(1)
    table = Table()
    for col, just in (("spec", "left"), ("family", "left"), ("layers", "right"),
                      ("streams", "right"), ("params", "right"), ("extra params", "right"),
                      ("extra %", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    counted: list[tuple[str, str, Stats]] = []
    failed = 0
    for name, text in specs:
        st = demo_one(name, text)
        if st is None:
            failed += 1
            table.add_row(escape(name), "[red]error[/red]", "", "", "", "", "")
            continue
        counted.append((name, text, st))
        table.add_row(escape(name), escape(st.family), str(st.layers), str(st.streams),
                      fmt_params(st.params), fmt_extra(st.extra_params),
                      fmt_percent(st.extra_percent))
    console().print(table)
    for name, text, st in counted:
        if st.params > RUN_LIMIT:
            typer.echo(f"skip {name}: {fmt_params(st.params)} params (over "
                       f"{fmt_params(RUN_LIMIT)}): checked and counted, not run")
            continue
        try:
            with reported(name):
                t0 = time.perf_counter()
                model = hcdsl.compile(text)
                tokens = torch.randint(0, st.vocab, (2, 16))
                logits, loss = train_step(model, tokens)
        except Failed:
            failed += 1
            continue
        typer.echo(f"ran  {name}: logits {tuple(logits.shape)}, loss {loss:.3f}, "
                   f"build+forward+backward {time.perf_counter() - t0:.2f} s")
    if failed:
        typer.echo(f"{failed} of {len(specs)} specs failed", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {len(specs)} specs OK")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hcdsl {hcdsl.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version,
                                       is_eager=True, help="print the version and exit")) -> None:
    """hcdsl: a compiler for how the layers of a deep network connect."""


# -- commands from other modules: each calls its register(app) here ---------------------
cli_prove.register(app)  # prove, unfold, plot


def main() -> None:
    app()
