"""The errors of `hcdsl train` and `hcdsl compare`: a clear message, no traceback, and the
exit status each asks for (the CLI's one policy, hcdsl/cli/app.py, reads `exit_code`).

    TrainError   a mistake in the run's inputs or a run that must stop: exit 1
    SpecError    the spec's own errors, already located (`file:line:col: error: ...`)
    Stopped      a signal stopped the run: 128 + its number, as a shell reports it

`training_errors()` turns what the library lets through from pydantic (an option that does
not validate) and the file system (a file it cannot write) into TrainErrors.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError


class TrainError(Exception):
    """A mistake in the run's inputs (spec, data, checkpoint, options) or a run that must stop
    (a non-finite loss). str(err) is the whole message the user sees (after `error: `,
    unless `located`); nothing already written to the run folder is removed."""

    exit_code: int = 1
    located: bool = False  # the message names its place itself (`file:line:col: error:`)


class SpecError(TrainError):
    """The spec does not compile: its located rendering (file, line, column, the line, a
    caret, a hint) or `file: error: message`, printed as it is."""

    located = True


class Stopped(TrainError):
    """The run was stopped by a signal (SIGINT, SIGTERM); exit_code is 128 + its number, as
    a shell reports a process a signal ended."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe_os_error(exc: OSError) -> str:
    """One line for a file the run could not write or read, with a hint by errno."""
    what = exc.filename or "a file of the run"
    hint = {errno.ENOSPC: " (the disk is full: free some space)",
            errno.EROFS: " (a read-only file system: choose another --out)",
            errno.EACCES: " (choose a folder you may write to)",
            errno.ENOTDIR: " (--out must be a folder, not a file)",
            errno.EEXIST: " (--out must be a folder, not a file)"}.get(exc.errno or 0, "")
    return f"{what}: {exc.strerror or exc}{hint}"


def describe_options_error(exc: ValidationError) -> str:
    """The options that do not validate, each as its flag: `--warmup: Input should be ...`."""
    return "; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                     for e in exc.errors())


@contextmanager
def training_errors() -> Iterator[None]:
    """Around a run or a comparison: options that do not validate (pydantic) and files that
    cannot be written or read (OSError) become TrainErrors with one clear message."""
    try:
        yield
    except ValidationError as exc:
        raise TrainError(describe_options_error(exc)) from None
    except OSError as exc:
        raise TrainError(describe_os_error(exc)) from None
