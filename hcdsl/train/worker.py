"""One run of `hcdsl compare` in its own process: `python -m hcdsl.train.worker CONFIG.json`.
Exit status 0 when the run finished, 1 with a one-line `error: ...` otherwise."""

from __future__ import annotations

import sys
from pathlib import Path

from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = TrainConfig.model_validate_json(Path(args[0]).read_text())
    from hcdsl.train.loop import train

    try:
        train(cfg)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
