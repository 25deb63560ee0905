"""Pictures of training runs (matplotlib, Agg backend): loss curves with seeds as bands,
the dense connection matrix C^(0) over time (HC paper arXiv 2409.19606, Figs. 7-8 style, as
hcdsl/plot.py draws it: RdBu centred at 0, j >= k grey, attention layers' ticks green),
representation collapse (HC Fig. 3) and mHC stability.

Each function takes plain data (lists of dicts as read from a run's JSONL files) and a path,
writes one PNG and returns its path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hcdsl.lang.catalog import attends  # noqa: E402

DPI = 120
ATTN_COLOR = "#2ca02c"
COLORS = plt.get_cmap("tab10").colors
STYLES = ["-", "--", "-.", ":"]  # with the colours: overlapping curves stay distinguishable
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
CELL_FONT = 7  # points: numbers are written into cells only where they fit at this size
ROW_SCALE_RATIO = 10.0  # rows whose largest |values| differ more than this get their own scale

Series = list[dict]  # rows of one run's metrics.jsonl or probes.jsonl


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(y) < window:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:window] / np.arange(1, window)
    return np.concatenate([head, (c[window:] - c[:-window]) / window])


def _band(ax: plt.Axes, runs: Sequence[tuple[np.ndarray, np.ndarray]], i: int,
          label: str, marker: bool = False) -> None:
    """Mean over runs (seeds) as a line, min..max as a band, on the steps all runs share;
    the i-th spec gets its own colour, line style and marker."""
    runs = [r for r in runs if len(r[0])]
    if not runs:
        return
    color = COLORS[i % len(COLORS)]
    n = min(len(x) for x, _ in runs)
    x = runs[0][0][:n]
    ys = np.stack([y[:n] for _, y in runs])
    ax.plot(x, ys.mean(0), color=color, label=label, ls=STYLES[i % len(STYLES)],
            marker=MARKERS[i % len(MARKERS)] if marker else None, markersize=4,
            markevery=max(1, n // 12), lw=1.6, fillstyle="none")
    if len(runs) > 1:
        ax.fill_between(x, ys.min(0), ys.max(0), color=color, alpha=0.2, lw=0)


def loss_curves(groups: dict[str, list[Series]], out: Path) -> Path:
    """Training loss (moving average) and validation loss per spec; seeds as bands."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=DPI)
    for i, (label, runs) in enumerate(groups.items()):
        train, val = [], []
        for rows in runs:
            steps = np.array([r["step"] for r in rows], dtype=float)
            loss = np.array([r["loss"] for r in rows], dtype=float)
            train.append((steps, _smooth(loss, max(1, len(loss) // 50))))
            ev = [r for r in rows if r.get("val_loss") is not None]
            val.append((np.array([r["step"] for r in ev], float),
                        np.array([r["val_loss"] for r in ev], float)))
        _band(a, train, i, label)
        _band(b, val, i, label, marker=True)
    for ax, title in ((a, "training loss (moving average)"), (b, "validation loss")):
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats / token)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _zoom(a)
    fig.tight_layout()
    return _save(fig, out)


def _zoom(ax: plt.Axes) -> None:
    """Leave out the first steps' large losses: the y range ends at the 92nd percentile."""
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.zeros(1)])
    if len(ys) > 10:
        lo, hi = float(np.min(ys)), float(np.percentile(ys, 92))
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))


def paired_curves(groups: dict[str, list[Series]], seeds: dict[str, list[int]],
                  baseline: str, out: Path) -> Path | None:
    """Validation loss of each spec minus the baseline's at every evaluation, seed by seed
    (thin lines) and their mean (thick); below 0: better than the baseline."""
    base = {s: {r["step"]: r["val_loss"] for r in rows if r.get("val_loss") is not None}
            for s, rows in zip(seeds[baseline], groups[baseline])}
    fig, ax = plt.subplots(figsize=(8, 4), dpi=DPI)
    drawn = False
    for i, (label, runs) in enumerate(groups.items()):
        if label == baseline:
            continue
        color, diffs = COLORS[i % len(COLORS)], []
        for seed, rows in zip(seeds[label], runs):
            ref = base.get(seed, {})
            pts = [(r["step"], r["val_loss"] - ref[r["step"]]) for r in rows
                   if r.get("val_loss") is not None and r["step"] in ref]
            if pts:
                x, y = np.array(pts).T
                ax.plot(x, y, color=color, lw=0.7, alpha=0.5, ls=STYLES[i % len(STYLES)])
                diffs.append((x, y))
        if diffs:
            _band(ax, diffs, i, f"{label} - {baseline} (mean of {len(diffs)} seed(s))",
                  marker=True)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(f"val loss - {baseline}'s (nats)")
    ax.set_title(f"paired difference to {baseline} over training (thin: one seed)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def matrices_over_time(probes: Series, title: str, out: Path, panels: int = 5) -> Path | None:
    """C^(0) at up to `panels` probe steps (first, last and evenly between); one colour scale
    for all, or, when the rows' largest values differ by more than ROW_SCALE_RATIO (DHC's
    readout row against its layers' rows), each row on its own scale (said in the title).
    None when the run has no connection matrices."""
    have = [p for p in probes if "C0" in p.get("connections", {})]
    if not have:
        return None
    idx = sorted(set(np.linspace(0, len(have) - 1, min(panels, len(have))).round().astype(int)))
    chosen = [have[i] for i in idx]
    mats = [np.array(p["connections"]["C0"], dtype=float) for p in chosen]
    kinds = chosen[0]["connections"]["kinds"]
    shown = [_lower(m) for m in mats]
    scale, ratio = row_scales(shown)
    per_row = scale is not None
    panel = min(max(2.9, 0.5 * shown[0].shape[1]), 4.5)  # inches: room for the numbers
    fig, axes = plt.subplots(1, len(mats), figsize=(panel * len(mats) + 0.8, panel + 0.5),
                             dpi=DPI, squeeze=False)
    im = None
    for ax, m, p in zip(axes[0], shown, chosen):
        im = _heatmap(ax, m, kinds, scale, float(np.nanmax(np.abs(np.stack(shown)))) or 1.0)
        ax.set_title(f"step {p['step']}", fontsize=9)
    how = (f"colour: each row scaled to its own max |value| (rows differ up to {ratio:.0f}x); "
           "numbers: values" if per_row else "one colour scale")
    fig.suptitle(f"{title}: C^(0) at steps {', '.join(str(p['step']) for p in chosen)}\n"
                 f"rows: layer k's input (k = L+1: the readout); columns: source j "
                 f"(0 = embedding); {how}", fontsize=8)
    bar = fig.colorbar(im, ax=list(axes[0]), fraction=0.02, pad=0.02)
    bar.set_label("value / row max |value|" if per_row else "value", fontsize=7)
    return _save(fig, out)


def row_scales(shown: list[np.ndarray]) -> tuple[np.ndarray | None, float]:
    """(each row's largest |value| over all panels as a column, or None for one shared
    scale; the ratio of the largest row maximum to the smallest non-zero one)."""
    row_max = np.nanmax(np.abs(np.stack(shown)), axis=(0, 2))
    nonzero = row_max[row_max > 0]
    ratio = float(nonzero.max() / nonzero.min()) if len(nonzero) else 1.0
    if ratio <= ROW_SCALE_RATIO:
        return None, ratio
    return np.where(row_max > 0, row_max, 1.0)[:, None], ratio


def _lower(m: np.ndarray) -> np.ndarray:
    """C^(0) without its first row (nothing reads into the embedding) and last column; the
    entries j >= k (not yet computed) as NaN."""
    L2 = m.shape[0]
    shown = m[1:, :L2 - 1].copy()
    shown[np.triu(np.ones_like(shown, dtype=bool), k=1)] = np.nan
    return shown


def _heatmap(ax: plt.Axes, shown: np.ndarray, kinds: list[str], scale: np.ndarray | None,
             vmax: float) -> plt.AxesImage:
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="#d0d0d0")
    colour = shown / scale if scale is not None else shown
    top = 1.0 if scale is not None else vmax
    im = ax.imshow(colour, cmap=cmap, norm=TwoSlopeNorm(vcenter=0.0, vmin=-top, vmax=top),
                   interpolation="nearest", aspect="equal")
    L = shown.shape[0] - 1
    step = max(1, (L + 1) // 8)
    ax.set_xticks(range(0, L + 1, step), [str(j) for j in range(0, L + 1, step)], fontsize=7)
    ax.set_yticks([k - 1 for k in range(1, L + 2, step)],
                  [str(k) for k in range(1, L + 2, step)], fontsize=7)
    for lab in [*ax.get_xticklabels(), *ax.get_yticklabels()]:  # both number layers 1..L
        k = int(lab.get_text())
        if 1 <= k <= L and attends(kinds[k - 1]):
            lab.set_color(ATTN_COLOR)
            lab.set_fontweight("bold")
    if _cells_fit(ax, shown.shape[1]):
        for (r, c), val in np.ndenumerate(shown):
            if np.isfinite(val) and abs(val) > 5e-4:
                ax.text(c, r, f"{val:.2g}", ha="center", va="center", fontsize=CELL_FONT,
                        color="white" if abs(colour[r, c]) > 0.6 * top else "black")
    return im


def _cells_fit(ax: plt.Axes, columns: int) -> bool:
    """A cell is wide enough for a 4-character number at CELL_FONT points."""
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    return width_pt / columns >= 3.2 * CELL_FONT


def collapse_curves(groups: dict[str, list[Series]], out: Path) -> Path | None:
    """Left: cosine similarity of adjacent layers' inputs at the last probe, median with the
    5-95 percentile band (HC Fig. 3). Right: its mean over layers across training."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=DPI)
    drawn = False
    for i, (label, runs) in enumerate(groups.items()):
        color = COLORS[i % len(COLORS)]
        finals = [r[-1]["collapse"] for r in runs if r and r[-1].get("collapse")]
        if finals:
            layers = np.array([c["layer"] for c in finals[0]])
            med = np.mean([[c["median"] for c in f] for f in finals], axis=0)
            lo = np.mean([[c["p05"] for c in f] for f in finals], axis=0)
            hi = np.mean([[c["p95"] for c in f] for f in finals], axis=0)
            a.plot(layers, med, color=color, marker="o", markersize=3, label=label)
            a.fill_between(layers, lo, hi, color=color, alpha=0.15, lw=0)
            drawn = True
        over = [(np.array([p["step"] for p in r if p.get("collapse")], float),
                 np.array([np.mean([c["median"] for c in p["collapse"]])
                           for p in r if p.get("collapse")])) for r in runs]
        _band(b, over, i, label)
    if not drawn:
        plt.close(fig)
        return None
    a.set_xlabel("layer k")
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_ylabel("cos(input of layer k, input of layer k-1)")
    a.set_title("adjacent layers' inputs at the end (median, 5-95%)", fontsize=10)
    b.set_xlabel("step")
    b.set_ylabel("mean over layers of the median")
    b.set_title("collapse measure over training", fontsize=10)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def mhc_curves(groups: dict[str, list[Series]], out: Path) -> Path | None:
    """mHC: composed residual map's gains and the largest deviation from doubly stochastic
    (log scale, floored at 1e-9: Sinkhorn-Knopp ends on rows, so their sums are exact)."""
    colors = {k: COLORS[i % len(COLORS)] for i, k in enumerate(groups)}
    groups = {k: v for k, v in groups.items() if any(p.get("mhc") for r in v for p in r)}
    if not groups:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=DPI)
    for label, runs in groups.items():
        for key, style, ax in (("gain_fwd", "-", a), ("gain_bwd", "--", a),
                               ("max_row_dev", "-", b), ("max_col_dev", "--", b)):
            series = [(np.array([p["step"] for p in r if p.get("mhc")], float),
                       np.array([p["mhc"][key] for p in r if p.get("mhc")])) for r in runs]
            n = min(len(x) for x, _ in series)
            ys = np.stack([y[:n] for _, y in series]).mean(0)
            if ax is b:
                ys = np.maximum(ys, 1e-9)
            ax.plot(series[0][0][:n], ys, style, color=colors[label], label=f"{label} {key}")
    a.set_title("composed map prod H_res: max row (fwd) / column (bwd) abs sum", fontsize=10)
    b.set_title("max |row sum - 1| and |column sum - 1| of H_res", fontsize=10)
    b.set_yscale("log")
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out)


def _save(fig: plt.Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out
