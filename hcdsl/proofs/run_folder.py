"""The checkpoints of an `hcdsl train` run folder, by step number.

A run folder holds `checkpoints/step_N/` (N written with at least six digits, so step
1,000,000 is `step_1000000`); a folder is complete once it holds `meta.pt` (the trainer
writes `step_N.tmp` and renames it). Steps are ordered by their NUMBER, never by name:
`step_1000000` sorts after `step_999999`. The trainer (hcdsl/train/checkpoint.py) and the
commands that take `--checkpoint` (through hcdsl/proofs/checkpoint.py) use these functions.
"""

from __future__ import annotations

import re
from pathlib import Path

_STEP = re.compile(r"step_(\d+)")
STATE, META = "state.pt", "meta.pt"


def step_name(step: int) -> str:
    """The folder name of a checkpoint taken after `step` optimizer steps."""
    return f"step_{step:06d}"


def step_of(folder: Path) -> int | None:
    """The step of a checkpoint folder's name (`step_000042` -> 42); None for any other name
    (a `.tmp` folder of an unfinished write included)."""
    m = _STEP.fullmatch(folder.name)
    return int(m.group(1)) if m else None


def step_folders(run: Path) -> list[Path]:
    """The complete checkpoint folders of a run folder (those holding meta.pt), oldest
    first, by step number."""
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    found = [(step_of(p), p) for p in root.iterdir()]
    return [p for s, p in sorted((s, p) for s, p in found if s is not None)
            if p.is_dir() and (p / META).is_file()]


def state_files(path: Path) -> list[Path]:
    """The state.pt files a folder stands for, newest first: its own (a checkpoint folder),
    or every complete checkpoint's of a run folder. [] when it is neither."""
    if (path / STATE).is_file():
        return [path / STATE]
    return [p / STATE for p in reversed(step_folders(path)) if (p / STATE).is_file()]


def looked_for(path: Path) -> str:
    """What a folder given as a checkpoint was searched for, for an error message."""
    return (f"looked for {path / STATE} (a checkpoint folder) and "
            f"{path / 'checkpoints' / 'step_N' / STATE} (a run folder of `hcdsl train`)")


def load_failure(exc: BaseException) -> str:
    """Why torch.load refused a file, in one short line. (torch's own message for a file
    that is not a safe pickle suggests loading it with weights_only=False, which would let
    the file run code: never repeated here.)"""
    first = (str(exc).splitlines() or [""])[0]
    if first.startswith("Weights only load failed"):
        first = "not a tensor file that loads with weights_only"
    return f"{type(exc).__name__}: {first[:160]}"
