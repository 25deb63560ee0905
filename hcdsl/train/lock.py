"""One process at a time in a run folder: `OUT/run.lock` (and `OUT/compare.lock` for a
comparison's folder), an advisory fcntl lock held for the life of the run.

The file says who holds it (pid, host, start time, command), so a second trainer is refused
with a message naming the holder. The kernel releases the lock when its process dies, however
it dies (kill -9 included), so a lock file left by a dead process is simply taken over; the
file stays, emptied when its holder ends normally. Without fcntl (Windows) nothing is locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from hcdsl.train.errors import TrainError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None  # type: ignore[assignment]


class FolderLock:
    """`with FolderLock(folder, "run.lock", "training run"):` holds the folder's lock."""

    def __init__(self, folder: Path, name: str, what: str, wait: float = 0.0) -> None:
        self.folder, self.path, self.what, self.wait = folder, folder / name, what, wait
        self.fd: int | None = None
        self.created = False  # the folder did not exist: removed again if left empty
        self.made_file = False  # the lock file did not exist before this acquire

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.release(remove=kind is not None and self.made_file)  # refused: leave no trace

    def acquire(self) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise TrainError(f"{self.folder} is a file, not a folder: choose another --out")
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.made_file = not self.path.exists()
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = holder_of(self.path)
                    os.close(self.fd)
                    self.fd = None
                    raise TrainError(
                        f"{self.folder} is in use by another {self.what} ({holder}): wait "
                        "for it to end or stop it, or choose another --out") from None
                time.sleep(0.2)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "start": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)}
        os.ftruncate(self.fd, 0)  # a dead holder's record, if any, is taken over
        os.pwrite(self.fd, (json.dumps(info) + "\n").encode(), 0)

    def release(self, remove: bool = False) -> None:
        """Unlock; `remove`: delete the lock file too. A folder this lock created and
        nothing else was written to is removed."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        if remove or self.created and [p.name for p in self.folder.iterdir()] == [
                self.path.name]:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)  # closing releases the lock
        self.fd = None
        if self.created and not any(self.folder.iterdir()):
            self.folder.rmdir()  # nothing was written: leave no folder behind


def holder_of(path: Path) -> str:
    """Who holds a lock file, as its record says."""
    try:
        info = json.loads(path.read_text())
        return (f"pid {info['pid']} on {info['host']}, since {info['start']}: "
                f"{info['command']}")
    except (OSError, ValueError, KeyError, TypeError):
        return f"a process that has not written {path.name} yet"
