"""compare.json: the marker and manifest of a comparison's folder. It records the files
`hcdsl compare` wrote there with their SHA-256 (None: being written when compare stopped), so
a rerun overwrites its own files and nothing else: a file compare would write that it did
not (a user's report.html), or one edited since, is refused."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from hcdsl.train.errors import TrainError

MARKER = "compare.json"
WRITER = "hcdsl compare"


def read(out: Path, ours: list[str]) -> dict[str, str | None]:
    """The files compare wrote in `out` (name -> SHA-256; None: being written when it
    stopped); TrainError when `out` holds one of `ours` that compare did not write."""
    marker = out / MARKER
    files: dict[str, str | None] = {}
    if marker.exists():
        try:
            record = json.loads(marker.read_text())
        except (OSError, ValueError):
            record = None
        if not (isinstance(record, dict) and record.get("written_by") == WRITER
                and isinstance(record.get("files"), dict)):
            raise TrainError(f"{marker} was not written by hcdsl compare (or is damaged): "
                             "choose another --out")
        files = record["files"]
    for name in ours:
        path = out / name
        if path.exists() and (name not in files or files[name] not in (None, sha256(path))):
            changed = "was changed since hcdsl compare wrote it" if name in files else \
                "was not written by hcdsl compare"
            raise TrainError(f"--out {out}: {path} {changed}; compare would overwrite it: "
                             "move it, or choose another --out")
    return files


def write(out: Path, record: dict, files: dict[str, str | None]) -> None:
    """compare.json: what compare was asked (`record`) and the files it wrote."""
    tmp = out / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"written_by": WRITER, **record, "files": files}, indent=2,
                              default=str) + "\n")
    os.replace(tmp, out / MARKER)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
