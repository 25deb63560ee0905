"""The one error type of `hcdsl train` and `hcdsl compare`: a clear message, no traceback."""

from __future__ import annotations

import errno


class TrainError(Exception):
    """A mistake in the run's inputs (spec, data, checkpoint, options) or a run that must stop
    (a non-finite loss). str(err) is the whole message the user sees; nothing already
    written to the run folder is removed."""


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
