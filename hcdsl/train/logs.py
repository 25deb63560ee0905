"""What a run writes while it trains: metrics.jsonl (one JSON line per optimizer step, plus
val_loss on evaluation steps), probes.jsonl (one line per probe), TensorBoard events when
`torch.utils.tensorboard` imports, and a rich progress bar with tokens/s, loss and ETA.
Only rank 0 writes. On resume, lines after the checkpoint's step are dropped first, so the
files read as if the run had never stopped."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

from hcdsl.train.errors import TrainError

METRICS, PROBES = "metrics.jsonl", "probes.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a log; a torn last line (a run killed, or a disk full, mid-write) is
    left out. A damaged line before the last is an error naming it."""
    if not path.exists():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text(errors="replace").splitlines(),
                                                1) if line.strip()]
    rows = []
    for k, (i, line) in enumerate(lines):
        try:
            row = json.loads(line)
        except ValueError:
            if k == len(lines) - 1:
                break  # torn: the write that was cut off
            raise TrainError(f"{path}:{i}: not a JSON line; the log is damaged") from None
        rows.append(row)
    return rows


def truncate(path: Path, after_step: int) -> None:
    """Keep the lines whose step is <= after_step (a torn last line goes too); written to a
    temporary file and renamed, so the log is never left half-written."""
    if path.exists():
        keep = [r for r in read_jsonl(path) if r.get("step", 0) <= after_step]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
        os.replace(tmp, path)


class RunLog:
    def __init__(self, run: Path, total: int, start: int, label: str, enabled: bool,
                 progress: bool, tensorboard: bool) -> None:
        self.enabled = enabled
        self.run = run
        self.tb = None
        self.bar: Progress | None = None
        if not enabled:
            return
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass  # optional: tensorboard is not installed
            else:
                self.tb = SummaryWriter(str(run / "tensorboard"), purge_step=start + 1)
        if progress:
            self.bar = Progress(
                TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[tps]} tok/s  loss {task.fields[loss]}"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task("train", total=total, completed=start,
                                          tps="-", loss="-")
            self.bar.start()

    def step(self, row: dict) -> None:
        if not self.enabled:
            return
        self._append(METRICS, row)
        if self.tb is not None:
            for key in ("loss", "lr", "grad_norm", "tokens_per_s", "val_loss"):
                if key in row and row[key] is not None and math.isfinite(row[key]):
                    self.tb.add_scalar(f"train/{key}" if key != "val_loss" else "val/loss",
                                       row[key], row["step"])
        if self.bar is not None:
            self.bar.update(self.task, completed=row["step"], loss=f"{row['loss']:.4f}",
                            tps=f"{row['tokens_per_s']:,.0f}")

    def probe(self, row: dict) -> None:
        if self.enabled:
            self._append(PROBES, row)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            Console(stderr=True).print(text, markup=False, highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    def _append(self, name: str, row: dict) -> None:
        with open(self.run / name, "a") as f:
            f.write(json.dumps(row) + "\n")
