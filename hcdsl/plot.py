"""Pictures of the unfolded connection matrices (HC Figs. 7 and 10) and of the arrangement they
imply; for Frac-Connections also C^(0) by fraction (hcdsl/proofs/unfold.py). matplotlib
with the Agg backend: no display needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

from hcdsl.errors import CompileError  # noqa: E402
from hcdsl.lang.catalog import attends, layer_kind  # noqa: E402
from hcdsl.proofs.arrangement import arrangement, describe  # noqa: E402
from hcdsl.proofs.unfold import Unfolded, unfold  # noqa: E402

PANEL = 4.0  # inches per panel
DPI = 100
ATTN_COLOR = "#2ca02c"  # attending layers: green tick labels, as in the paper's figures


def short(kind: str) -> str:
    """A layer kind's label in the arrangement: its LayerKind's, else its first 6 letters."""
    record = layer_kind(kind)
    return record.short if record is not None and record.short else kind[:6]


def figure_size(unfolded: Sequence[Unfolded], streams: bool = True) -> tuple[int, int]:
    """Pixel (width, height) of the PNG that plot() writes."""
    cols = max(_panels(u, streams) for u in unfolded)
    return int(PANEL * cols * DPI), int((PANEL + 0.4) * len(unfolded) * DPI)


def _panels(u: Unfolded, streams: bool) -> int:
    return 2 + (len(u.Ci) if streams else 0) + (u.by_fraction is not None)


def _heatmap(ax: plt.Axes, u: Unfolded, m: np.ndarray, title: str, fractions: int = 1) -> None:
    """Rows k = 1..L+1, columns j = 0..L; with fractions f > 1 (C^(0) by fraction) each
    entry is an f x f block, rows k.c and columns j.f, ticks at the blocks' layers."""
    data = u.as_float(m) if u.exact else np.asarray(m, dtype=np.float64)
    f = fractions
    n = data.shape[0] // f  # L + 2
    shown = data[f:, :(n - 1) * f].copy()  # rows 1..L+1, columns 0..L
    layer_of_row = np.arange(shown.shape[0])[:, None] // f + 1
    layer_of_col = np.arange(shown.shape[1])[None, :] // f
    shown[layer_of_col >= layer_of_row] = np.nan  # j >= k: not a connection
    vmax = max(float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 0.0, 1e-9)
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d0d0d0")  # j >= k grey; zeros white
    im = ax.imshow(shown, cmap=cmap, norm=TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax),
                   interpolation="nearest", aspect="equal")
    L = n - 2
    step = max(1, (L + 1) // 12)
    centre = (f - 1) / 2  # a layer's tick in the middle of its block
    ax.set_xticks([j * f + centre for j in range(0, L + 1, step)])
    ax.set_xticklabels([str(j) for j in range(0, L + 1, step)], fontsize=7)
    ax.set_yticks([(k - 1) * f + centre for k in range(1, L + 2, step)])
    ax.set_yticklabels([str(k) for k in range(1, L + 2, step)], fontsize=7)
    for lab in [*ax.get_xticklabels(), *ax.get_yticklabels()]:  # both number layers 1..L
        k = int(lab.get_text())
        if 1 <= k <= L and attends(u.kinds[k - 1]):
            lab.set_color(ATTN_COLOR)
            lab.set_fontweight("bold")
    if f > 1:  # block edges
        for edge in range(f, shown.shape[1], f):
            ax.axvline(edge - 0.5, color="#888888", linewidth=0.3)
        for edge in range(f, shown.shape[0], f):
            ax.axhline(edge - 0.5, color="#888888", linewidth=0.3)
    what = "" if f == 1 else f" (fraction f of {f})"
    ax.set_xlabel(f"source j{what} (0 = embedding)", fontsize=8)
    ax.set_ylabel(f"layer k{what.replace('f of', 'c of')} ({L + 1} = readout)", fontsize=8)
    ax.set_title(title, fontsize=9)
    if L * f <= 12:  # small matrices: write the values in
        for (r, c), val in np.ndenumerate(shown):
            if np.isfinite(val) and abs(val) > 5e-7:
                text = f"{val:.2g}" if not float(val).is_integer() else str(int(val))
                ax.text(c, r, text, ha="center", va="center", fontsize=6,
                        color="white" if abs(val) > 0.6 * vmax else "black")
    plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)


def _arrangement(ax: plt.Axes, u: Unfolded) -> None:
    groups = arrangement(u, tol=1e-6)
    ax.set_axis_off()
    ax.set_title("arrangement: " + describe(groups), fontsize=8, wrap=True)
    rows = len(groups) + 2
    width = max(len(g) for g in groups)
    ax.set_xlim(-0.5, width + 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    box_h = 0.6

    def box(x: float, y: float, w: float, label: str, color: str) -> None:
        ax.add_patch(Rectangle((x - w / 2, y - box_h / 2), w, box_h, facecolor=color,
                               edgecolor="black", linewidth=0.6))
        ax.text(x, y, label, ha="center", va="center", fontsize=7)

    centre = width / 2
    box(centre, 0, min(width, 2.0), "embedding h0", "#dddddd")
    for r, g in enumerate(groups, start=1):
        w = 0.9
        xs = [centre + (i - (len(g) - 1) / 2) for i in range(len(g))]
        for x, k in zip(xs, g):
            kind = u.kinds[k - 1]
            color = "#b7e4b7" if attends(kind) else "#c6dbef"
            box(x, r, w, f"{k} {short(kind)}", color)
        ax.add_patch(FancyArrowPatch((centre, r - 1 + box_h / 2), (centre, r - box_h / 2),
                                     arrowstyle="-|>", mutation_scale=7, linewidth=0.6))
    box(centre, rows - 1, min(width, 2.0), "readout", "#dddddd")
    ax.add_patch(FancyArrowPatch((centre, rows - 2 + box_h / 2), (centre, rows - 1 - box_h / 2),
                                 arrowstyle="-|>", mutation_scale=7, linewidth=0.6))


def plot(specs: Sequence[object], out: str | Path, streams: bool = True,
         unfolded: Sequence[Unfolded] | None = None, checkpoint: str | None = None,
         tokens: str | None = None) -> Path:
    """Heatmaps of C^(0) (and C^(i) when streams) plus the arrangement, one row per spec.
    CompileError (before any work) when `out` cannot be written: a folder, a missing folder,
    a format matplotlib does not write."""
    out = check_output(Path(out))
    us = list(unfolded) if unfolded is not None else [
        unfold(s, checkpoint=checkpoint, tokens=tokens) for s in specs]
    w, h = figure_size(us, streams)
    cols = max(_panels(u, streams) for u in us)
    fig, axes = plt.subplots(len(us), cols, figsize=(w / DPI, h / DPI), dpi=DPI, squeeze=False)
    for row, u in zip(axes, us):
        _heatmap(row[0], u, u.C0, f"{Path(u.name).stem}: C^(0) (layer inputs)")
        kind = "fraction" if u.fractions > 1 else "stream"
        for i, m in enumerate(u.Ci if streams else []):
            _heatmap(row[1 + i], u, m, f"C^({i + 1}) ({kind} {i + 1})")
        if u.by_fraction is not None:  # Frac-Connections: C^(0) by fraction
            _heatmap(row[_panels(u, streams) - 2], u, u.by_fraction, "C^(0) by fraction",
                     u.fractions)
        _arrangement(row[_panels(u, streams) - 1], u)
        for ax in row[_panels(u, streams):]:
            ax.set_axis_off()
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=DPI)
    except OSError as exc:
        raise CompileError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return out


def check_output(out: Path) -> Path:
    """out, if a picture can be written there; else a CompileError saying why."""
    formats = FigureCanvasBase.get_supported_filetypes()
    if out.is_dir():
        raise CompileError(f"{out} is a folder: give the picture's file name, e.g. {out}/c.png")
    if not out.parent.is_dir():
        raise CompileError(f"cannot write {out}: no folder {out.parent}")
    if out.suffix.lstrip(".").lower() not in formats:
        raise CompileError(f"cannot write {out}: the file name must end in one of "
                           + ", ".join(f".{f}" for f in sorted(formats)))
    return out
