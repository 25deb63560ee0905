"""What produced a run, for its summary and the comparison report: hcdsl's version and, when
it runs from a git checkout, the commit (with "+dirty" when the tree has uncommitted changes);
torch's and Python's versions."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

import hcdsl


def git_commit(package: Path) -> str | None:
    """HEAD (short) of the git checkout whose top folder holds `package`, "+dirty" appended
    when tracked files have changes; None when hcdsl is not run from its own checkout (an
    installed wheel inside some other repository must not report that repository)."""
    try:
        top = subprocess.run(["git", "-C", str(package), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=10, check=True)
        if Path(top.stdout.strip()).resolve() != package.parent:
            return None
        head = subprocess.run(["git", "-C", str(package), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(package), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def provenance() -> dict[str, str | None]:
    return {"hcdsl": hcdsl.__version__,
            "hcdsl_commit": git_commit(Path(hcdsl.__file__).resolve().parent),
            "torch": torch.__version__, "python": platform.python_version()}
