"""How `hcdsl bench` prints its report: a rich table of the ratios, the baselines' times,
memory and notes (`print_report`), and the JSON form's values (`jsonable`). The command
itself is hcdsl/cli/bench.py."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hcdsl.bench.runner import BenchReport, PairResult, Settings, mode_name


def jsonable(x: object) -> object:
    """json.dumps' default: NaN as null, anything else as its text."""
    return None if isinstance(x, float) and math.isnan(x) else str(x)


def _cell(p: PairResult, name: str) -> str:
    m = p.mode(name)
    if m is None:
        return "-"
    if m.ratio is None:
        return "failed" if m.note else "-"
    r = m.ratio
    return f"{r.median:.2f} ({r.min:.2f}-{r.max:.2f})"


def _mem(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}x"


def _mib(x: int | None) -> str:
    return "-" if x is None else f"{x / 2**20:,.1f}"


def _layers(s: Settings) -> str:
    if not s.recompute_layers:
        return ""
    k = f"k = {s.recompute_every}" if s.recompute_every else "the memory model's k"
    return f'; specs compiled with recompute="layers" ({k}), Pre-Norm without'


def print_report(report: BenchReport, out: Console) -> None:
    """The human-readable report: settings, the ratio table, baselines' ms, memory, notes."""
    s, m = report.settings, report.machine
    out.print(f"hcdsl bench: {m.get('cpu', m['machine'])}, {m['cpu_count']} cores, "
              f"{m['threads']} threads, device {m['device']}, torch {m['torch']}, fp32"
              + (f"; load average {m['load_average_at_start']:.1f} at start"
                 if m.get("load_average_at_start") is not None else ""))
    out.print(f"tokens: batch {s.batch} x seq {s.seq}; {s.rounds} rounds x {s.steps} steps "
              f"per model and mode, interleaved (candidate and Pre-Norm back to back, alternating "
              f"which goes first); warm-up {s.warmup}"
              f"{'; compiled: torch.compile(fullgraph=True)' if s.compile else '; eager only'}"
              f"{'; specs compiled with recompute=True' if s.recompute else ''}"
              f"{_layers(s)}"
              f"{'; passes disabled: ' + ', '.join(s.disable) if s.disable else ''}")
    out.print("ratio to Pre-Norm with the same layers: median over rounds (min-max); "
              "< 1 is faster")
    modes = [mode_name(k, c) for k, c in (("train", False), ("train", True),
                                          ("infer", False), ("infer", True))
             if (s.compile or not c) and (s.infer or k == "train")]
    table = Table()
    table.add_column("candidate", no_wrap=True)
    table.add_column("spec", no_wrap=True)
    for name in modes:
        table.add_column(name, justify="right", no_wrap=True)
    if s.memory:
        table.add_column("peak mem", justify="right", no_wrap=True)
        table.add_column("kept for bwd", justify="right", no_wrap=True)
    for p in report.pairs:
        row = [escape(p.label),
               escape(Path(p.spec).name if p.source == "hcdsl" else "(same shapes)")]
        row += [_cell(p, name) for name in modes]
        if s.memory and p.memory is not None:
            row += [_mem(p.memory.peak_ratio), _mem(p.memory.kept_ratio)]
        table.add_row(*row)
    out.print(table)
    for label, ms in report.baselines_ms.items():
        out.print(f"{escape(label)} ms/step (median): " +
                  ", ".join(f"{k} {v:.1f}" for k, v in ms.items()))
    if s.memory:
        out.print(report.memory_method)
        for p in report.pairs:
            if p.memory is not None:
                mem = p.memory
                out.print(f"  {escape(p.label)}: peak {_mib(mem.peak_bytes)} MiB vs "
                          f"{_mib(mem.base_peak_bytes)}; kept {_mib(mem.kept_bytes)} MiB vs "
                          f"{_mib(mem.base_kept_bytes)}")
    if s.compile:
        for p in report.pairs:
            if p.compile_s:
                out.print(f"compile (first call) {escape(p.label)}: " + ", ".join(
                    f"{k.split()[0]} {v:.1f} s" for k, v in p.compile_s.items()))
    out.print(f"package: {escape(report.package)}")
    for p in report.pairs:
        for note in p.notes:
            out.print(f"note: {escape(p.label)}: {escape(note)}")
        for mres in p.modes:
            if mres.note:
                out.print(f"note: {escape(p.label)} {mres.mode}: {escape(mres.note)}")
    for note in report.notes:
        out.print(f"note: {escape(note)}")
    out.print(f"wall time {report.wall_s:.0f} s")
