"""How the CLI prints numbers, matrices and the stats tables."""

from __future__ import annotations

import math
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hcdsl.counts import Stats
from hcdsl.traffic import Traffic
from hcdsl.spec import Matrix


def console() -> Console:
    """Rich output on stdout; 120 columns when piped, so tables are not squeezed."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def fmt_matrix(m: Matrix) -> str:
    cells = [[fmt_num(v) for v in row] for row in m]
    width = max(len(c) for row in cells for c in row)
    return "\n".join("[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells)


def fmt_params(p: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(p) >= size:
            return f"{p / size:.2f}{unit}"
    return str(p)


def fmt_percent(p: float) -> str:
    """Two significant digits at least, never an exponent: +0.000065%, +0.033%, +1.072%."""
    if p == 0:
        return "0%"
    digits = max(3, 1 - math.floor(math.log10(abs(p))))
    return f"{p:+.{digits}f}%"


def fmt_extra(p: int) -> str:
    return f"{p:+,}" if p else "0"


def matrices_table(st: Stats) -> Table:
    table = Table()
    for col in ("layers", "M", "weights"):
        table.add_column(col)
    for where, step in st.matrix_groups():
        kind = "dynamic" if step.dynamic else "learned" if step.learn else "fixed"
        table.add_row(escape(where), escape(fmt_matrix(step.matrix)), kind)
    return table


def summary_table(st: Stats) -> Table:
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in (
        ("layers (blocks)", f"{st.layers} ({st.blocks})"), ("streams", str(st.streams)),
        ("dim / vocab", f"{st.dim} / {st.vocab}"), ("params", f"{st.params:,}"),
        ("Pre-Norm params", f"{st.baseline_params:,}"),
        ("extra params", fmt_extra(st.extra_params)), ("extra %", fmt_percent(st.extra_percent)),
    ):
        table.add_row(what, escape(value))
    return table


def demo_table() -> Table:
    table = Table()
    for col, just in (("spec", "left"), ("family", "left"), ("layers", "right"),
                      ("streams", "right"), ("params", "right"), ("extra params", "right"),
                      ("extra %", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    return table


def demo_row(table: Table, name: str, st: Stats | None) -> None:
    if st is None:
        table.add_row(escape(name), "[red]error[/red]", "", "", "", "", "")
        return
    table.add_row(escape(name), escape(st.family), str(st.layers), str(st.streams),
                  fmt_params(st.params), fmt_extra(st.extra_params),
                  fmt_percent(st.extra_percent))


def traffic_table(t: Traffic, base: Traffic) -> Table:
    """Reads and writes per token and layer, in C and in fp32 bytes, against Pre-Norm."""
    table = Table()
    for col, just in (("", "left"), ("reads", "right"), ("writes", "right"),
                      ("fp32 bytes", "right"), ("kernels / layer", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    C = t.dim
    for label, tr, r, w, k in (
            (f"{t.family}, unfused (eager)", t, t.unfused_read, t.unfused_write, t.kernels),
            (f"{t.family}, fused (one kernel per run)", t, t.fused_read, t.fused_write, t.runs),
            ("Pre-Norm (the residual add)", base, base.unfused_read, base.unfused_write,
             base.kernels)):
        table.add_row(escape(label), f"{r / C:.2f} C", f"{w / C:.2f} C",
                      f"{4 * (r + w):,.0f}", str(k))
    return table
