"""SIGINT and SIGTERM during a run: the trainer stops with a message saying where the run
stands, instead of dying mid-line. A signal that arrives while a checkpoint is being written
waits until it is on disk (`held()`), so the checkpoint the message names is complete."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(KeyboardInterrupt):
    """Raised in the trainer's main thread by SIGINT or SIGTERM (a KeyboardInterrupt, so no
    `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class _State:
    holding = False
    pending: int | None = None


_state = _State()


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state.holding:
        _state.pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def stoppable() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted while inside (main thread only; elsewhere
    nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        _state.holding, _state.pending = False, None


@contextmanager
def held() -> Iterator[None]:
    """Signals wait until the block is done (then raise Interrupted)."""
    outer = _state.holding
    _state.holding = True
    try:
        yield
    finally:
        _state.holding = outer
        if not outer and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)
