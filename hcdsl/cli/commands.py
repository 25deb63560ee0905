"""`hcdsl check`, `show`, `stats`, `run`, `demo`. check, show --ir/--dot and stats never import
torch; run, show --code and demo do, when they build a module."""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

from hcdsl.cli.app import Failed, app, command, parse_device, reported
from hcdsl.cli.stages import as_json as stages_json, stage_plan, tables as stage_tables
from hcdsl.cli.tables import (
    console, demo_row, demo_table, fmt_params, matrices_table, summary_table, traffic_table,
)
from hcdsl.compiler import Compilation
from hcdsl.counts import Stats, stats
from hcdsl.errors import CompileError, HcError
from hcdsl.frontend.source import read_path
from hcdsl.ir.dump import dump, to_dot
from hcdsl.passes.pipeline import DEFAULT
from hcdsl.schemes.program import Program
from hcdsl.traffic import traffic

RUN_LIMIT = 50_000_000  # `hcdsl demo` runs specs up to this many parameters; larger: counted


def check_one(path: str) -> bool:
    """Parse, validate and lower a spec: an OK line, or its errors on stderr."""
    try:
        with reported(path):
            program = Compilation.load(Path(path), once=True)
            program.ir()
    except Failed:
        return False
    typer.echo(f"OK {path}: model {program.spec.name}, {program.scheme.family}, "
               f"{len(program.spec.sequence)} layers")
    return True


@app.command()
def check(files: list[str] = typer.Argument(..., metavar="FILE...", help=".hc spec files")) -> None:
    """Parse, validate and lower each spec: one OK line per file, or every error."""
    results = [check_one(f) for f in files]
    if not all(results):
        raise typer.Exit(1)


@app.command()
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
    passes = None if no_passes else DEFAULT
    with command(file):
        program = Compilation.load(Path(file), once=True)
        if arrangement:
            from hcdsl.proofs.arrangement import arrangement_text
            from hcdsl.proofs.unfold import UnfoldError

            try:
                typer.echo(arrangement_text(program))
            except UnfoldError as exc:  # a state hcdsl cannot unfold: the user's answer
                raise CompileError(f"no arrangement: {exc}") from None
        elif code:
            typer.echo(generated_code(program, passes))
        else:
            graph = program.ir(passes)
            typer.echo(dump(graph) if ir else to_dot(graph), nl=False)


def generated_code(program: Program, passes: list[str] | None) -> str:
    """The fx code of a spec, built on the meta device (no weights allocated)."""
    import torch

    import hcdsl

    with torch.device("meta"):
        return hcdsl.compile(program, passes=passes).code.strip()


def history_wording(st: Stats) -> str:
    """What `hcdsl stats` says of a spec without step matrices: a history of the embedding
    and one entry per layer (attention residuals, Multi-Head AttnRes) or per block
    (DenseFormer, MUDD, DCA), told apart by its size (st.streams: the history's length)."""
    per = ("layer" if st.streams == st.layers + 1 else
           "block" if st.streams == st.blocks + 1 else None)
    what = (f"a history of {st.streams} entries (the embedding, then one per {per})"
            if per else f"a history of {st.streams} entries")
    return f"no step matrices: the state is {what}, read by depth-wise aggregates"


@app.command("stats")
def stats_cmd(
    file: str = typer.Argument(..., metavar="FILE"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    traffic_: bool = typer.Option(False, "--traffic", help="the connection's memory traffic "
                                  "per token and layer, unfused and fused"),
    pp: Optional[int] = typer.Option(None, "--pp", min=1, help="pipeline stages: what each "  # noqa: UP007
                                     "cut sends per token, each stage's parameters, FLOPs "
                                     "and activation memory"),
    pp_split: Optional[str] = typer.Option(None, "--pp-split", help="layers per stage, "  # noqa: UP007
                                           "e.g. 3,5 (default: balanced by FLOPs)"),
    seq: int = typer.Option(128, "--seq", min=1, help="with --pp: tokens per sequence"),
    batch: int = typer.Option(1, "--batch", min=1, help="with --pp: sequences per "
                              "micro-batch"),
) -> None:
    """Parameters, extra parameters over Pre-Norm, and the static connection matrices."""
    if pp is not None or pp_split is not None:
        pipeline_stats(file, pp or len((pp_split or "").split(",")), pp_split, seq, batch,
                       as_json)
        return
    if traffic_:
        with command(file):
            program = Compilation.load(Path(file), once=True)
            mine = traffic(program)
            base = traffic(program.baseline())
        if as_json:
            typer.echo(json.dumps({"spec": mine.model_dump(), "pre_norm": base.model_dump()},
                                  indent=2))
            return
        typer.echo(f"{mine.name}: {mine.family}: the connection's memory traffic per token "
                   f"and layer, C = dim = {mine.dim} (fp32: x4 bytes; bf16: x2)")
        console().print(traffic_table(mine, base))
        return
    with command(file):
        st = stats(Path(file))
    if as_json:
        typer.echo(json.dumps(st.model_dump(mode="json"), indent=2))
        return
    typer.echo(f"{st.name}: {st.family}")
    console().print(summary_table(st))
    if not st.matrices:
        typer.echo(history_wording(st))
        return
    typer.echo("step matrices at init, M = [[0, OUT], [READ, RES]] (rows: layer output, "
               "streams; columns: reads, new streams; HC: [[0, B], [A_m, A_r]], FC: "
               "[[0, diag(B)], [Y, A]]):")
    console().print(matrices_table(st))


def pipeline_stats(file: str, stages: int, split: str | None, seq: int, batch: int,
                   as_json: bool) -> None:
    """`stats --pp N`: the stages of the spec (hcdsl/cli/stages.py), fp32 bytes."""
    with command(file):
        program = Compilation.load(Path(file), once=False)
        ir, plan = stage_plan(program, stages, split, seq)
    if as_json:
        typer.echo(json.dumps(stages_json(ir, plan, batch, seq, 4), indent=2))
        return
    typer.echo(f"{program.spec.name}: {program.scheme.family}: {len(plan.stages)} pipeline "
               f"stages of {plan.layers} layers (fp32: 4 bytes per element)")
    stage_table, cut_table = stage_tables(ir, plan, batch, seq, 4)
    console().print(stage_table)
    console().print(cut_table)


@app.command()
def run(
    file: str = typer.Argument(..., metavar="FILE"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile(fullgraph=True)"),
    batch: int = typer.Option(2, "--batch", min=1),
    seq: int = typer.Option(16, "--seq", min=2),
    steps: int = typer.Option(1, "--steps", min=1, help="forward+backward steps to time"),
    seed: int = typer.Option(0, "--seed", help="seeds the weights, the tokens and dropout"),
    no_memory_check: bool = typer.Option(
        False, "--no-memory-check", help="build even when the estimated memory (weights, "
                                         "gradients, activations) exceeds what is available"),
) -> None:
    """Build a spec and run forward+backward on random tokens."""
    import torch

    import hcdsl
    from hcdsl import memory
    from hcdsl.smoke import sample_input, train_step

    dev = torch.device(parse_device(device))
    with command(file):
        t0 = time.perf_counter()
        program = Compilation.load(Path(file), once=True)
        if not no_memory_check:
            est = program.estimate(batch=batch, seq=seq, use="run")
            memory.check(est, f"{file} at batch {batch} x seq {seq}")
            if dev.type == "cuda":
                memory.check(est, f"{file} at batch {batch} x seq {seq}", dev)
        model = hcdsl.compile(program, device=dev, seed=seed, check_memory=False)
        built = time.perf_counter() - t0
    if compile_:
        model = torch.compile(model, fullgraph=True)
    params = sum(p.numel() for p in model.parameters())
    typer.echo(f"built {file}: {params:,} params in {built:.2f} s on {dev}")
    gen = torch.Generator().manual_seed(seed)
    tokens = sample_input(program.spec, batch, seq, gen).to(dev)
    torch.manual_seed(seed)  # and what draws from the global generator (dropout)
    for i in range(steps):
        t0 = time.perf_counter()
        with command(file):
            logits, loss = train_step(model, tokens)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        wall = time.perf_counter() - t0
        note = " (includes torch.compile)" if compile_ and i == 0 else ""
        what = ("hidden states", "hidden states", "loss (mean square)") \
            if tokens.is_floating_point() else ("tokens", "logits", "loss")
        typer.echo(f"step {i + 1}: {what[0]} {tuple(tokens.shape)} -> {what[1]} "
                   f"{tuple(logits.shape)}, {what[2]} {loss:.4f}, forward+backward {wall:.3f} s"
                   f"{note}")


def _walk(folder, prefix: str = "") -> list[tuple[str, str | HcError]]:  # noqa: ANN001
    """(relative name, text) of every .hc file under a folder (a Traversable), subfolders
    included; a file that cannot be read as a spec gives its HcError instead of its text."""
    out: list[tuple[str, str | HcError]] = []
    for p in folder.iterdir():
        if p.is_dir() and not p.name.startswith(("_", ".")):
            out += _walk(p, f"{prefix}{p.name}/")
        elif p.name.endswith(".hc") and isinstance(p, Path):
            try:
                out.append((prefix + p.name, read_path(p).text))
            except HcError as exc:
                exc.filename = prefix + p.name
                out.append((prefix + p.name, exc))
        elif p.name.endswith(".hc"):  # a packaged spec: ours, always readable
            out.append((prefix + p.name, p.read_text()))
    return sorted(out, key=lambda item: item[0])


def bundled_specs() -> list[tuple[str, str]]:
    """(name, text) of the specs shipped in the package (specs/ and its subfolders)."""
    return [(name, text) for name, text in _walk(resources.files("hcdsl.specs"))
            if isinstance(text, str)]


def dir_specs(directory: Path) -> list[tuple[str, str | HcError]]:
    if not directory.is_dir():
        raise typer.BadParameter(f"not a directory: {directory}", param_hint="DIR")
    try:
        return _walk(directory)
    except OSError as exc:  # a folder we may not list
        raise typer.BadParameter(f"cannot read {exc.filename or directory}: "
                                 f"{exc.strerror or exc}", param_hint="DIR") from None


def demo_one(name: str, text: str | HcError) -> tuple[Program, Stats] | None:
    """Check and count one spec; errors printed with the spec's file name."""
    try:
        with reported(name):
            if isinstance(text, HcError):
                raise text
            try:
                program = Compilation.load(text)
                return program, stats(program)
            except HcError as exc:  # name the file, not <spec>
                exc.filename = name
                raise
    except Failed:
        return None


@app.command()
def demo(directory: Optional[Path] = typer.Argument(  # noqa: UP007 - typer needs Optional
        None, metavar="[DIR]", help="a folder of .hc specs (default: the bundled ones)")) -> None:
    """Check every spec, tabulate them, and run each small one once."""
    import torch

    import hcdsl
    from hcdsl.smoke import sample_input, train_step

    specs = bundled_specs() if directory is None else dir_specs(directory)
    if not specs:
        typer.echo(f"no .hc specs in {directory}", err=True)
        raise typer.Exit(1)
    table = demo_table()
    counted: list[tuple[str, Program, Stats]] = []
    failed = 0
    for name, text in specs:
        found = demo_one(name, text)
        demo_row(table, name, found[1] if found else None)
        if found is None:
            failed += 1
        else:
            counted.append((name, *found))
    console().print(table)
    for name, program, st in counted:
        if st.params > RUN_LIMIT:
            typer.echo(f"skip {name}: {fmt_params(st.params)} params (over "
                       f"{fmt_params(RUN_LIMIT)}): checked and counted, not run")
            continue
        try:
            with reported(name):
                t0 = time.perf_counter()
                model = hcdsl.compile(program, seed=0)
                tokens = sample_input(program.spec, 2, 16, torch.Generator().manual_seed(0))
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
