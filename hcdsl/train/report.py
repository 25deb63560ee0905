"""A comparison report from run folders: a table (final validation loss mean ± std over
seeds, tokens/s, parameters, peak memory), the pictures of plots.py, as report.md (images
beside it) and report.html (self-contained: images embedded as base64, opens offline)."""

from __future__ import annotations

import base64
import html
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from hcdsl.train import plots
from hcdsl.train.logs import METRICS, PROBES, read_jsonl


@dataclass
class Run:
    folder: Path
    summary: dict
    metrics: list[dict]
    probes: list[dict]


def load_run(folder: Path) -> Run:
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(folder, summary, read_jsonl(folder / METRICS), read_jsonl(folder / PROBES))


def _mean_std(xs: list[float]) -> tuple[float | None, float | None]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def table(groups: dict[str, list[Run]]) -> list[dict]:
    rows = []
    for label, runs in groups.items():
        s = [r.summary for r in runs if r.summary]
        first = s[0] if s else {}
        mean, std = _mean_std([x.get("final_val_loss") for x in s])
        tps, _ = _mean_std([x.get("tokens_per_s") for x in s])
        mem, _ = _mean_std([x.get("peak_memory_mb") for x in s])
        wall, _ = _mean_std([x.get("wall_seconds") for x in s])
        rows.append({"spec": label, "family": first.get("family", "?"),
                     "params": first.get("params"), "seeds": len(s),
                     "val_loss_mean": mean, "val_loss_std": std, "tokens_per_s": tps,
                     "peak_memory_mb": mem, "memory_kind": first.get("peak_memory_kind", ""),
                     "wall_seconds": wall, "steps": first.get("steps"),
                     "tokens": first.get("tokens")})
    return rows


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _cells(row: dict) -> list[str]:
    loss = ("-" if row["val_loss_mean"] is None else
            f"{row['val_loss_mean']:.4f} ± {row['val_loss_std']:.4f}")
    return [row["spec"], row["family"], _fmt(row["params"], ","), str(row["seeds"]), loss,
            _fmt(row["tokens_per_s"], ",.0f"), _fmt(row["peak_memory_mb"], ",.0f"),
            _fmt(row["wall_seconds"], ",.0f")]


HEAD = ["spec", "family", "params", "seeds", "final val loss (mean ± std)", "tokens/s",
        "peak memory (MiB)", "wall s / run"]


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * 2 + "---:|" * (len(HEAD) - 2)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write(out: Path, groups: dict[str, list[Run]], title: str, notes: list[str]) -> Path:
    """Pictures, table.json, report.md and report.html in `out`; returns report.html."""
    out.mkdir(parents=True, exist_ok=True)
    rows = table(groups)
    (out / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    metrics = {k: [r.metrics for r in v] for k, v in groups.items()}
    probes = {k: [r.probes for r in v] for k, v in groups.items()}
    figures: list[tuple[str, Path | None]] = [
        ("Loss curves (seeds as min-max bands)", plots.loss_curves(metrics, out / "loss.png")),
        ("Representation collapse (HC arXiv 2409.19606, Fig. 3)",
         plots.collapse_curves(probes, out / "collapse.png")),
        ("mHC stability (arXiv 2512.24880)", plots.mhc_curves(probes, out / "mhc.png"))]
    missing = []
    for label, runs in groups.items():
        first = runs[0].probes if runs else []
        pic = plots.matrices_over_time(first, label, out / f"matrices_{slug(label)}.png")
        figures.append((f"Connection matrix C^(0) over training: {label} (seed "
                        f"{runs[0].summary.get('seed', 0) if runs else 0})", pic))
        if pic is None:
            reason = next((p["connections"].get("unavailable") for p in first
                           if "unavailable" in p.get("connections", {})), "no probes")
            missing.append(f"{label}: connection matrices {reason}")
    kinds = {r["memory_kind"] for r in rows if r["memory_kind"]}
    if "process RSS" in kinds:
        notes = [*notes, "peak memory: the run process's peak resident set size (Python, "
                 "torch and the data included; most of it is the same for every spec)"]
    shown = [(t, p) for t, p in figures if p is not None]
    md = [f"# {title}", "", *[f"- {n}" for n in notes + missing], "", markdown_table(rows), ""]
    md += [f"## {t}\n\n![{t}]({p.name})\n" for t, p in shown]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(_html(title, notes + missing, rows, shown))
    return out / "report.html"


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _html(title: str, notes: list[str], rows: list[dict], figures: list[tuple[str, Path]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEAD)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in _cells(r)) + "</tr>"
                   for r in rows)
    imgs = "".join(
        f"<h2>{e(t)}</h2><img alt='{e(t)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'>" for t, p in figures)
    notes_html = "".join(f"<li>{e(n)}</li>" for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th {{ background: #f0f0f0; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
img {{ max-width: 100%; border: 1px solid #eee; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
</style></head>
<body><h1>{e(title)}</h1><ul>{notes_html}</ul>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{imgs}
</body></html>
"""
