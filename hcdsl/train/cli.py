"""The `train` and `compare` commands: `register(app)` adds them to a typer app.

Every option is a field of TrainConfig; the common ones have flags, any other is set with
`--set FIELD=VALUE` (e.g. `--set warmup=50 --set beta2=0.99`). Mistakes print one clear
message on stderr (a spec's errors with line and column) and exit with status 1; so does a
file that cannot be written (a full disk, a read-only --out); SIGINT/SIGTERM print where the
run stands and exit 128 + the signal's number; anything else is a bug, reported by the CLI's
policy (hcdsl/cli/app.py: exit 3). Under torchrun every rank that fails prints its message
(ranks other than 0 with a prefix).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import Stopped, TrainError, describe_os_error


def _fail(message: str, code: int = 1) -> None:
    located = ": error: " in message  # a spec's own errors, already "file:line:col: error:"
    rank = os.environ.get("RANK", "0")
    prefix = "" if rank == "0" else f"rank {rank}: "  # under torchrun: say which rank
    typer.echo(prefix + (message if located else f"error: {message}"), err=True)
    raise typer.Exit(code)


@contextmanager
def _policy(what: str) -> Iterator[None]:
    """The commands' errors: TrainError, bad options and unwritable files are one message;
    anything else goes to the CLI's policy (an internal error, exit 3)."""
    from hcdsl.cli.app import command  # here: hcdsl.cli imports this module

    with command(what):
        try:
            yield
        except ValidationError as exc:
            _fail(_pydantic_message(exc))
        except TrainError as exc:
            _fail(str(exc), exc.exit_code if isinstance(exc, Stopped) else 1)
        except OSError as exc:
            _fail(describe_os_error(exc))


def _pydantic_message(exc: ValidationError) -> str:
    return "; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                     for e in exc.errors())


def _sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key.strip() not in TrainConfig.model_fields:
            known = ", ".join(TrainConfig.model_fields)
            _fail(f"--set {item}: expected FIELD=VALUE with FIELD one of: {known}")
        out[key.strip()] = value.strip()
    return out


def _options(**given: object) -> dict:
    sets = _sets(given.pop("set_") or [])  # type: ignore[arg-type]
    return {**{k: v for k, v in given.items() if v is not None}, **sets}


def run_train(spec: Path, out: Path | None, seed: int, compile_: bool, fsdp: bool,
              resume: bool, no_progress: bool, opts: dict) -> None:
    """`hcdsl train`: the run, then its report (rank 0)."""
    from hcdsl.train.loop import train

    cfg = TrainConfig(**{**opts, "spec": str(spec), "seed": seed, "compile": compile_,
                         "fsdp": fsdp, "resume": resume, "progress": not no_progress,
                         "out": out or Path("runs") / f"{spec.stem}-s{seed}"})
    summary = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        from hcdsl.train.report import load_run, write

        write(cfg.out / "report", {cfg.out.name: [load_run(cfg.out)]},
              f"hcdsl train {spec}", [f"run folder {cfg.out}"])
        loss = summary["final_val_loss"]
        typer.echo(f"{cfg.out}: {summary['steps']} steps, validation loss "
                   f"{'-' if loss is None else f'{loss:.4f}'}, "
                   f"{summary['tokens_per_s'] or 0:,.0f} tokens/s; report "
                   f"{cfg.out / 'report' / 'report.html'}")


def register(app: typer.Typer) -> None:
    """Add `train` and `compare` to `app`."""

    @app.command("train")
    def train_cmd(
        spec: Path = typer.Argument(..., metavar="SPEC", help="a .hc file"),
        out: Optional[Path] = typer.Option(None, "--out", "-o",  # noqa: UP007 - typer
                                           help="run folder (default runs/SPEC-sSEED)"),
        steps: Optional[int] = typer.Option(None, "--steps", help="optimizer steps [1000]"),
        batch: Optional[int] = typer.Option(None, "--batch", help="sequences per rank [16]"),
        seq: Optional[int] = typer.Option(None, "--seq", help="tokens per sequence [128]"),
        accum: Optional[int] = typer.Option(None, "--accum", help="micro-steps per step [1]"),
        lr: Optional[float] = typer.Option(None, "--lr", help="peak learning rate [1e-3]"),
        schedule: Optional[str] = typer.Option(None, "--schedule", help="cosine|wsd|constant"),
        warmup: Optional[int] = typer.Option(None, "--warmup", help="warm-up steps [100]"),
        data: Optional[Path] = typer.Option(None, "--data", help="text file or folder "
                                            "[Python's stdlib source]"),
        tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="bytes|gpt2"),
        seed: int = typer.Option(0, "--seed"),
        precision: Optional[str] = typer.Option(None, "--precision", help="auto|fp32|bf16"),
        device: Optional[str] = typer.Option(None, "--device", help="auto|cpu|cuda|cuda:N"),
        compile_: bool = typer.Option(False, "--compile", help="torch.compile the model"),
        fsdp: bool = typer.Option(False, "--fsdp", help="under torchrun: FSDP2, not DDP"),
        eval_every: Optional[int] = typer.Option(None, "--eval-every"),
        probe_every: Optional[int] = typer.Option(None, "--probe-every"),
        ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every"),
        val_sequences: Optional[int] = typer.Option(
            None, "--val-sequences", min=1, help="validate on a fixed-seed sample of N "
            "windows [every window of the held-out split]"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in --out"),
        resume_from: Optional[Path] = typer.Option(None, "--resume-from",
                                                   help="continue from a checkpoint folder"),
        stop_at: Optional[int] = typer.Option(None, "--stop-at", help="stop after this step"),
        threads: Optional[int] = typer.Option(None, "--threads"),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="under torchrun: "
                                                "seconds to wait for a stalled rank [600]"),
        no_progress: bool = typer.Option(False, "--no-progress"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="FIELD=VALUE, any option"),
    ) -> None:
        """Train a spec's model; logs, checkpoints, probes and pictures go to the run folder."""
        with _policy("train"):
            run_train(spec, out, seed, compile_, fsdp, resume, no_progress, opts=_options(
                steps=steps, batch=batch, seq=seq, accum=accum, lr=lr, schedule=schedule,
                warmup=warmup, data=data, tokenizer=tokenizer, precision=precision,
                device=device, eval_every=eval_every, probe_every=probe_every,
                ckpt_every=ckpt_every, val_sequences=val_sequences,
                resume_from=resume_from, stop_at=stop_at,
                threads=threads, timeout=timeout, set_=set_))

    @app.command("compare")
    def compare_cmd(
        specs: list[Path] = typer.Argument(..., metavar="SPEC...", help=".hc files"),
        out: Path = typer.Option(Path("runs/compare"), "--out", "-o", help="report folder"),
        steps: Optional[int] = typer.Option(None, "--steps"),
        seeds: int = typer.Option(1, "--seeds", min=1, help="seeds 0..K-1 per spec"),
        jobs: int = typer.Option(1, "--jobs", min=1, help="runs at a time (1 thread each)"),
        batch: Optional[int] = typer.Option(None, "--batch"),
        seq: Optional[int] = typer.Option(None, "--seq"),
        lr: Optional[float] = typer.Option(None, "--lr"),
        schedule: Optional[str] = typer.Option(None, "--schedule"),
        warmup: Optional[int] = typer.Option(None, "--warmup"),
        data: Optional[Path] = typer.Option(None, "--data"),
        tokenizer: Optional[str] = typer.Option(None, "--tokenizer"),
        eval_every: Optional[int] = typer.Option(None, "--eval-every"),
        probe_every: Optional[int] = typer.Option(None, "--probe-every"),
        threads: Optional[int] = typer.Option(None, "--threads"),
        val_sequences: Optional[int] = typer.Option(
            None, "--val-sequences", min=1, help="validate on a fixed-seed sample of N "
            "windows instead of the whole held-out split (faster)"),
        baseline: Optional[Path] = typer.Option(
            None, "--baseline", help="the spec every other is compared to, seed by seed "
            "(default: the first)"),
        timeout: Optional[float] = typer.Option(None, "--timeout"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="FIELD=VALUE, any option"),
    ) -> None:
        """Train several specs with the same data order and seeds; write a report with
        paired differences to a baseline."""
        from hcdsl.train.compare import compare

        with _policy("compare"):
            opts = _options(steps=steps, batch=batch, seq=seq, lr=lr, schedule=schedule,
                            warmup=warmup, data=data, tokenizer=tokenizer,
                            eval_every=eval_every, probe_every=probe_every, threads=threads,
                            timeout=timeout, val_sequences=val_sequences, set_=set_)
            path = compare([str(s) for s in specs], out, seeds, opts, jobs,
                           baseline=None if baseline is None else str(baseline))
        typer.echo(f"report: {path} (and {path.with_suffix('.md')})")
