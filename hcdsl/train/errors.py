"""The one error type of `hcdsl train` and `hcdsl compare`: a clear message, no traceback."""

from __future__ import annotations


class TrainError(Exception):
    """A mistake in the run's inputs (spec, data, checkpoint, options) or a run that must stop
    (a non-finite loss). str(err) is the whole message the user sees; nothing already
    written to the run folder is removed."""
