"""`hcdsl train`, `hcdsl compare`, and the hidden `hcdsl worker` that compare starts for each
of its runs.

Their options are generated from TrainConfig's fields (hcdsl/train/config.py): a field is a
flag (`eval_every` is `--eval-every`; a bool is `--compile/--no-compile`) whose type, default
and help are the field's; `--set FIELD=VALUE` sets any field as well (and wins over a flag).
Only options given on the command line reach the trainer, so a default is decided once, in
TrainConfig. Errors are typed (hcdsl/train/errors.py) and their exit status is the policy's
(app.py): 1 for a mistake, 128 + the signal's number for a signal, 3 for a bug.
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Optional, Union, get_args, get_origin

import typer
from pydantic.fields import FieldInfo
from rich.markup import escape

from hcdsl.cli.app import app, command
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError, training_errors

# not compare's options: the fields it sets for each of its runs (train/compare.py: plan), and
# resume_from (one checkpoint cannot continue several runs)
COMPARE_SETS = frozenset({"spec", "out", "seed", "data_seed", "resume", "progress",
                          "resume_from"})
SET_HELP = "FIELD=VALUE: any field of the run's config.json (repeatable; wins over a flag)"

# --help groups the options in panels; every TrainConfig field but `spec` is in exactly one
# (tests/apps/test_cli.py checks it, so a new field cannot be left out)
PANELS: dict[str, tuple[str, ...]] = {
    "Data": ("data", "tokenizer", "max_bytes", "val_fraction", "seq", "batch", "accum",
             "data_seed"),
    "Optimisation": ("steps", "lr", "min_lr_ratio", "schedule", "warmup", "decay_fraction",
                     "weight_decay", "beta1", "beta2", "clip", "seed"),
    "Model and device": ("precision", "device", "compile", "recompute", "threads",
                         "check_memory"),
    "Parallel (under torchrun)": ("fsdp", "pp", "pp_split", "pp_schedule", "timeout"),
    "Validation, probes and checkpoints": ("eval_every", "val_sequences", "probe_every",
                                           "probe_sequences", "ckpt_every",
                                           "keep_checkpoints"),
    "Run folder": ("out", "resume", "resume_from", "stop_at", "progress", "tensorboard"),
}
PANEL_OF = {field: panel for panel, fields in PANELS.items() for field in fields}


def flag(field: str) -> str:
    """The command-line name of a TrainConfig field."""
    return "--" + field.replace("_", "-")


def field_type(annotation: Any) -> tuple[type, str | None]:
    """The type a field's flag parses (X of `X | None`; str for a Literal, whose choices
    pydantic checks) and its metavar (the choices of a Literal)."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Literal:
        return str, "[" + "|".join(str(c) for c in get_args(annotation)) + "]"
    return annotation, None


def default_text(field: str, info: FieldInfo) -> str | None:
    """What --help shows as a field's default (nothing for a required or None one)."""
    if info.is_required() or info.default is None:
        return None
    if isinstance(info.default, bool):
        return flag(field) if info.default else "--no-" + flag(field)[2:]
    return str(info.default)


def field_option(field: str, *short: str, shown: str | None = None) -> inspect.Parameter:
    """The typer option of one TrainConfig field: default None (not given: TrainConfig's
    default applies), its help the field's description and default (or `shown`)."""
    info = TrainConfig.model_fields[field]
    kind, metavar = field_type(info.annotation)
    decls = (f"{flag(field)}/--no-{flag(field)[2:]}" if kind is bool else flag(field), *short)
    shown = shown or default_text(field, info)
    suffix = escape(f" [default: {shown}]") if shown else ""  # escaped: not rich markup
    option = typer.Option(None, *decls, metavar=metavar, show_default=False,
                          help=f"{info.description}{suffix}", rich_help_panel=PANEL_OF[field])
    return inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=option,
                             annotation=Optional[kind])  # noqa: UP007 - typer needs Optional


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)


def with_options(own: list[inspect.Parameter], fields: list[inspect.Parameter],
                 ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the parameters `own`, then the fields' options, then --set."""
    set_ = _param("set_", Optional[list[str]],  # noqa: UP007 - typer needs Optional
                  typer.Option(None, "--set", metavar="FIELD=VALUE", help=SET_HELP,
                               rich_help_panel="Run folder"))

    def decorate(body: Callable[..., None]) -> Callable[..., None]:
        body.__signature__ = inspect.Signature([*own, *fields, set_])  # type: ignore[attr-defined]
        return body
    return decorate


def options(given: dict[str, Any], sets: list[str] | None) -> dict[str, Any]:
    """The options given on the command line: the flags that were, then every --set."""
    out = {k: v for k, v in given.items() if v is not None}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in TrainConfig.model_fields:
            raise TrainError(f"--set {item}: expected FIELD=VALUE with FIELD one of: "
                             + ", ".join(TrainConfig.model_fields))
        out[key.strip()] = value.strip()
    return out


@app.command("train")
@with_options(
    [_param("spec", Path, typer.Argument(..., metavar="SPEC", help="a .hc file"))],
    [field_option("out", "-o", shown="runs/SPEC-sSEED"),
     *[field_option(f) for f in TrainConfig.model_fields if f not in ("spec", "out")]])
def train_cmd(spec: Path, set_: list[str] | None = None, **given: Any) -> None:
    """Train a spec's model; logs, checkpoints, probes and pictures go to the run folder."""
    with command("train"), training_errors():
        opts = options(given, set_)
        out = opts.get("out") or Path("runs") / f"{spec.stem}-s{opts.get('seed', 0)}"
        cfg = TrainConfig(**{**opts, "spec": str(spec), "out": out})
        run_train(cfg)


def run_train(cfg: TrainConfig) -> None:
    """The run, then (rank 0) its report and a one-line summary."""
    from hcdsl.train.loop import train  # torch: only when a command trains
    from hcdsl.train.report import load_run, write

    summary = train(cfg)
    if os.environ.get("RANK", "0") != "0":
        return
    write(cfg.out / "report", {cfg.out.name: [load_run(cfg.out)]},
          f"hcdsl train {cfg.spec}", [f"run folder {cfg.out}"])
    loss = summary["final_val_loss"]
    typer.echo(f"{cfg.out}: {summary['steps']} steps, validation loss "
               f"{'-' if loss is None else f'{loss:.4f}'}, "
               f"{summary['tokens_per_s'] or 0:,.0f} tokens/s; report "
               f"{cfg.out / 'report' / 'report.html'}")


@app.command("compare")
@with_options(
    [_param("specs", list[Path], typer.Argument(..., metavar="SPEC...", help=".hc files")),
     _param("out", Path, typer.Option(Path("runs/compare"), "--out", "-o",
                                      help="report folder")),
     _param("seeds", int, typer.Option(1, "--seeds", min=1, help="seeds 0..K-1 per spec")),
     _param("jobs", int, typer.Option(1, "--jobs", min=1,
                                      help="runs at a time (1 thread each)")),
     _param("baseline", Optional[Path], typer.Option(  # noqa: UP007 - typer needs Optional
         None, "--baseline", help="the spec every other is compared to, seed by seed "
         "(default: the first)"))],
    [field_option(f) for f in TrainConfig.model_fields if f not in COMPARE_SETS])
def compare_cmd(specs: list[Path], out: Path, seeds: int, jobs: int, baseline: Path | None,
                set_: list[str] | None = None, **given: Any) -> None:
    """Train several specs with the same data order and seeds; write a report with
    paired differences to a baseline."""
    with command("compare"), training_errors():
        from hcdsl.train.compare import compare  # torch: only when a command trains

        path = compare([str(s) for s in specs], out, seeds, options(given, set_), jobs,
                       baseline=None if baseline is None else str(baseline))
    typer.echo(f"report: {path} (and {path.with_suffix('.md')})")


@app.command("worker", hidden=True)
def worker_cmd(config: Path = typer.Argument(..., metavar="CONFIG.json")) -> None:
    """One run of `hcdsl compare`, in its own process (compare starts it)."""
    with command("worker"), training_errors():
        from hcdsl.train.worker import run_worker  # torch: only in the worker's process

        run_worker(config)
