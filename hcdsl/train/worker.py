"""One run of `hcdsl compare` in its own process: `python -m hcdsl.train.worker CONFIG.json`.
Exit status 0 when the run finished, 1 with a one-line `error: ...` otherwise (128 + the
signal's number when a signal stopped it). It dies with `hcdsl compare` (lifeline.py), and
waits up to LOCK_WAIT seconds for a previous worker of its run folder to end (one that its
killed parent is still stopping), so a rerun resumes the run instead of sharing it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import Stopped, TrainError
from hcdsl.train.lifeline import die_with_parent

PARENT = "HCDSL_COMPARE_PID"  # set by compare: the pid this worker must die with
LOCK_WAIT = 30.0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if PARENT in os.environ:
        die_with_parent(int(os.environ[PARENT]))
    cfg = TrainConfig.model_validate_json(Path(args[0]).read_text())
    from hcdsl.train.loop import train

    try:
        train(cfg, lock_wait=LOCK_WAIT)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, Stopped) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
