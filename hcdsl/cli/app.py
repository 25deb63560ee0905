"""The `hcdsl` typer app and its one error policy.

- a mistake in a spec (HcError) prints its located rendering; a build or input problem
  (CompileError) prints `WHAT: error: message`; both exit 1 (`hcdsl prove` uses 2, as its
  1 means "not equivalent");
- bad usage (a wrong option, a missing argument) exits 2, from typer;
- anything else is a bug in hcdsl: it says so, with the traceback only behind `--debug`,
  and exits 3.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from hcdsl import __version__
from hcdsl.errors import CompileError, HcError

app = typer.Typer(
    name="hcdsl", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="hcdsl: a compiler for how the layers of a deep network connect.",
)
BUG_EXIT = 3
_state = {"debug": False}


class Failed(Exception):
    """A command failed; its message was already printed."""


@contextmanager
def reported(what: str) -> Iterator[None]:
    """Turn user mistakes into clean messages and anything else into a bug report; raises
    Failed (the caller decides the exit status) or exits BUG_EXIT."""
    try:
        yield
    except HcError as exc:
        typer.echo(exc.render(), err=True)
        raise Failed from None
    except CompileError as exc:
        typer.echo(f"{what}: error: {exc}", err=True)
        raise Failed from None
    except (Failed, typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the policy: anything else is our bug
        typer.echo(f"{what}: internal error in hcdsl {__version__} ({type(exc).__name__}: "
                   f"{exc}). This is a bug in hcdsl, not in your spec; please report it"
                   + (" with the traceback below." if _state["debug"] else
                      ". Run with `hcdsl --debug ...` for the traceback."), err=True)
        if _state["debug"]:
            traceback.print_exc(file=sys.stderr)
        raise typer.Exit(BUG_EXIT) from None


@contextmanager
def command(what: str, code: int = 1) -> Iterator[None]:
    """The body of a command: a user mistake exits `code` after its message."""
    try:
        with reported(what):
            yield
    except Failed:
        raise typer.Exit(code) from None


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
