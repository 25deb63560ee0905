"""One run of `hcdsl compare` in its own process: `python -m hcdsl --debug worker CONFIG.json`
(the hidden command in hcdsl/cli/train.py; its errors and exit status are the CLI's: 0 when
the run finished, 1 with an `error: ...` message, 128 + the signal's number when a signal
stopped it). It dies with `hcdsl compare` (lifeline.py), and waits up to LOCK_WAIT seconds
for a previous worker of its run folder to end (one that its killed parent is still
stopping), so a rerun resumes the run instead of sharing it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hcdsl.train.config import TrainConfig
from hcdsl.train.lifeline import die_with_parent
from hcdsl.train.loop import train

PARENT = "HCDSL_COMPARE_PID"  # set by compare: the pid this worker must die with
LOCK_WAIT = 30.0


def command_line(config: Path) -> list[str]:
    """The command line compare starts for the run whose config is in `config`."""
    return [sys.executable, "-m", "hcdsl", "--debug", "worker", str(config)]


def run_worker(config: Path) -> dict:
    """Train the run `config` (a config.json) describes; raises what train raises."""
    if PARENT in os.environ:
        die_with_parent(int(os.environ[PARENT]))
    cfg = TrainConfig.model_validate_json(config.read_text())
    return train(cfg, lock_wait=LOCK_WAIT)
