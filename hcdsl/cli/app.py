"""The `hcdsl` typer app and its one error policy: every command's exit status is decided
here, from the type of what it raised.

- a mistake in a spec (HcError) prints its located rendering; a build or input problem
  (CompileError) prints `WHAT: error: message`; both exit 1 (`hcdsl prove`, `unfold` and
  `plot` use 2, as prove's 1 means "not equivalent");
- a training error (hcdsl.train.errors.TrainError) prints `error: message` (a SpecError, its
  located message as it is) and exits with the status it carries: 1, or 128 + the signal's
  number when a signal stopped the run (Stopped: 130, 143); under torchrun, ranks other than 0
  say which rank they are;
- bad usage (a wrong option, a missing argument, a BadParameter) exits 2, from typer;
- anything else is a bug in hcdsl: it says so, with the traceback only behind `--debug`,
  and exits 3.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from hcdsl import __version__
from hcdsl.errors import CompileError, HcError
from hcdsl.train.errors import TrainError

app = typer.Typer(
    name="hcdsl", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="hcdsl: a compiler for how the layers of a deep network connect.",
)
BUG_EXIT = 3
_state = {"debug": False}


class Failed(Exception):
    """A command failed; its message was already printed. `code`: the exit status it asks
    for (the policy's decision)."""

    def __init__(self, code: int = 1) -> None:
        super().__init__(code)
        self.code = code


def judge(exc: Exception, what: str, code: int = 1) -> tuple[str, int] | None:
    """The policy: (message, exit status) for a user's mistake, None for a bug in hcdsl.
    `code`: the command's status for a mistake in its input (1; 2 for prove)."""
    if isinstance(exc, HcError):
        return exc.render(), code
    if isinstance(exc, CompileError):
        return f"{what}: error: {exc}", code
    if isinstance(exc, TrainError):
        rank = os.environ.get("RANK", "0")
        prefix = "" if rank == "0" else f"rank {rank}: "  # under torchrun: say which rank
        return prefix + (str(exc) if exc.located else f"error: {exc}"), exc.exit_code
    return None


@contextmanager
def reported(what: str, code: int = 1) -> Iterator[None]:
    """Turn user mistakes into clean messages and anything else into a bug report; raises
    Failed (with the status the policy gives) or exits BUG_EXIT."""
    try:
        yield
    except (Failed, typer.Exit, typer.Abort, typer.BadParameter, KeyboardInterrupt):
        raise  # decided already, or bad usage (typer exits 2)
    except Exception as exc:  # noqa: BLE001 - the policy: anything not judged is our bug
        judged = judge(exc, what, code)
        if judged is not None:
            typer.echo(judged[0], err=True)
            raise Failed(judged[1]) from None
        typer.echo(f"{what}: internal error in hcdsl {__version__} ({type(exc).__name__}: "
                   f"{exc}). This is a bug in hcdsl, not in your spec; please report it"
                   + (" with the traceback below." if _state["debug"] else
                      ". Run with `hcdsl --debug ...` for the traceback."), err=True)
        if _state["debug"]:
            traceback.print_exc(file=sys.stderr)
        raise typer.Exit(BUG_EXIT) from None


@contextmanager
def command(what: str, code: int = 1) -> Iterator[None]:
    """The body of a command: a user mistake exits with the policy's status after its
    message (`code` for a mistake in a spec)."""
    try:
        with reported(what, code):
            yield
    except Failed as exc:
        raise typer.Exit(exc.code) from None


def parse_device(name: str) -> str:
    """A --device option: 'cpu', 'cuda', 'cuda:1', ... (typer.BadParameter when torch does not
    know it, or when it names CUDA on a machine without it)."""
    import torch  # here: the commands that take no device start without torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA is not available on this machine", param_hint="--device")
    return str(device)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hcdsl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
    debug: bool = typer.Option(False, "--debug", help="show the traceback of an internal "
                                                      "error"),
) -> None:
    """hcdsl: a compiler for how the layers of a deep network connect."""
    _state["debug"] = debug
