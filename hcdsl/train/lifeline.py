"""A child process that dies with its parent: the runs of `hcdsl compare`
(`python -m hcdsl worker`) and the ranks torchrun starts. Killing the parent, even with
kill -9 (a closed terminal, the OOM killer), must not leave an orphan training in the run
folder that a rerun would share.

On Linux the kernel sends SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG); everywhere a
watchdog thread checks once a second that the parent is still the one we started with, and
sends SIGTERM to this process when it is not. SIGTERM stops the trainer with its usual
message (hcdsl/train/signals.py); the checkpoints on disk are intact.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 1.0


def die_with_parent(parent: int | None = None) -> None:
    """From now on, this process gets SIGTERM when `parent` (default: the current parent)
    ends. Returns at once; a no-op when the parent is already gone (SIGTERM is sent)."""
    parent = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # a libc without prctl: the watchdog below still works
    thread = threading.Thread(target=_watch, args=(parent,), name="hcdsl-lifeline",
                              daemon=True)
    thread.start()
    if os.getppid() != parent:  # the parent died before the watch began
        os.kill(os.getpid(), signal.SIGTERM)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
