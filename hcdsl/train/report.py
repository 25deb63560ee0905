"""A comparison report from run folders: a table (final validation loss mean ± std over
seeds, its standard error, the value of every seed, tokens/s, parameters, peak memory),
paired differences to a baseline spec with a t interval (stats.py) and the sentence they
support, every run's settings, and the pictures of plots.py; as report.md (images beside it)
and report.html (self-contained: images embedded as base64, opens offline)."""

from __future__ import annotations

import base64
import html
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from hcdsl.train import plots, stats
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
        se, _ = _mean_std([x.get("final_val_se") for x in s])
        tps, _ = _mean_std([x.get("tokens_per_s") for x in s])
        mem, _ = _mean_std([x.get("peak_memory_mb") for x in s])
        wall, _ = _mean_std([x.get("wall_seconds") for x in s])
        rows.append({"spec": label, "family": first.get("family", "?"),
                     "params": first.get("params"), "seeds": len(s),
                     "val_loss_mean": mean, "val_loss_std": std, "val_se": se,
                     "val_windows": first.get("val_windows"),
                     "per_seed": {str(x.get("seed")): x.get("final_val_loss") for x in s},
                     "tokens_per_s": tps,
                     "peak_memory_mb": mem, "memory_kind": first.get("peak_memory_kind", ""),
                     "wall_seconds": wall, "steps": first.get("steps"),
                     "tokens": first.get("tokens")})
    return rows


def paired_to(groups: dict[str, list[Run]], baseline: str) -> list[stats.Paired]:
    """Each other spec's final validation loss minus the baseline's, seed by seed."""
    def per_seed(label: str) -> dict[int, float | None]:
        return {r.summary["seed"]: r.summary.get("final_val_loss")
                for r in groups[label] if r.summary and r.summary.get("done", True)}

    base = per_seed(baseline)
    return [stats.paired(label, baseline, per_seed(label), base)
            for label in groups if label != baseline]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _cells(row: dict) -> list[str]:
    loss = ("-" if row["val_loss_mean"] is None else
            f"{row['val_loss_mean']:.4f} ± {row['val_loss_std']:.4f}")
    seeds = ", ".join(f"{v:.4f}" for v in row["per_seed"].values() if v is not None) or "-"
    return [row["spec"], row["family"], _fmt(row["params"], ","), str(row["seeds"]), loss,
            _fmt(row["val_se"], ".4f"), seeds, _fmt(row["tokens_per_s"], ",.0f"),
            _fmt(row["peak_memory_mb"], ",.0f"), _fmt(row["wall_seconds"], ",.0f")]


HEAD = ["spec", "family", "params", "seeds", "final val loss (mean ± std over seeds)",
        "standard error of one run's val loss", "per seed (0, 1, ...)", "tokens/s",
        "peak memory (MiB)", "wall s / run"]
SAMPLES_NOTE = ("Each spec's seed-0 model at its last checkpoint continues the same prompt "
                "(temperature 0.8, top-k 40, the same sampling seed; key/value-cached "
                "decoding, hcdsl.generate).")
LEFT = 2  # the first columns are text (left-aligned); the rest numbers (right-aligned)


def _paired_cells(p: stats.Paired) -> list[str]:
    lo_hi = p.interval
    return [p.spec, p.baseline, str(p.n), ", ".join(f"{d:+.4f}" for d in p.diffs) or "-",
            _fmt(p.mean, "+.4f"), "-" if lo_hi is None else f"[{lo_hi[0]:+.4f}, {lo_hi[1]:+.4f}]"]


PAIRED_HEAD = ["spec", "baseline", "paired seeds", "difference per seed",
               "mean difference (nats)", "95% interval (t)"]


def markdown_table(head: list[str], rows: list[list[str]], left: int = LEFT) -> str:
    align = "|" + ":---|" * left + "---:|" * (len(head) - left)
    return "\n".join(["| " + " | ".join(head) + " |", align,
                      *["| " + " | ".join(r) + " |" for r in rows]])


def settings(groups: dict[str, list[Run]]) -> list[str]:
    """One line per setting shared by every run, then what differs (run by run)."""
    runs = [r for rs in groups.values() for r in rs]
    described = [(r.folder.name, _describe(r)) for r in runs]
    keys = list(dict.fromkeys(k for _, d in described for k in d))
    lines = []
    for k in keys:
        values = {d.get(k) for _, d in described}
        if len(values) == 1:
            lines.append(f"{k}: {values.pop()}")
        else:
            lines.append(f"{k}: " + "; ".join(f"{name} {d.get(k)}" for name, d in described))
    return lines


def _describe(run: Run) -> dict[str, str]:
    cfg = _json(run.folder / "config.json")
    data = _json(run.folder / "data.json")
    s = run.summary
    if not cfg:
        return {}
    groups = ("weight decay on matrices of layers and dynamic-connection projections; none "
              "on static connection parameters, norms, biases and embeddings "
              "(hcdsl.param_groups, HC arXiv 2409.19606 §4)")
    return {
        "optimizer": f"AdamW, betas ({cfg['beta1']}, {cfg['beta2']}), weight decay "
                     f"{cfg['weight_decay']}: {groups}",
        "learning rate": f"peak {cfg['lr']}, {cfg['schedule']} schedule, warm-up "
                         f"{cfg['warmup']} steps, final lr {cfg['min_lr_ratio']} x peak"
                         + (f", decay over the last {cfg['decay_fraction']:.0%}"
                            if cfg["schedule"] == "wsd" else ""),
        "gradient clipping": "none" if not cfg["clip"] else f"global norm {cfg['clip']}",
        "batch": f"{s.get('global_batch', '?')} sequences x {cfg['seq']} tokens per step "
                 f"({cfg['batch']} per rank per micro-step, accum {cfg['accum']}, "
                 f"{s.get('world', 1)} rank(s)), {cfg['steps']} steps, "
                 f"{s.get('tokens', 0):,} tokens seen",
        "data": f"{data.get('source', '?')}, {data.get('bytes', 0):,} bytes, "
                f"{cfg['tokenizer']} tokens, sha256 {str(data.get('sha256', '?'))[:16]}",
        "validation": (f"{s.get('val_windows', data.get('val_sequences', '?'))} windows of "
                       f"{cfg['seq']} tokens, "
                       + ("every window of the held-out split (the last "
                          f"{cfg['val_fraction']:.0%} of the corpus)"
                          if cfg.get("val_sequences") is None else
                          f"a fixed-seed sample of {cfg['val_sequences']} windows of the "
                          f"held-out split (the last {cfg['val_fraction']:.0%})")),
        "precision and device": f"{s.get('precision', '?')} on {s.get('device', '?')}",
        "software": f"hcdsl {s.get('hcdsl', '?')} (commit {s.get('hcdsl_commit') or 'unknown'}),"
                    f" torch {s.get('torch', '?')}, Python {s.get('python', '?')}",
    }


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write(out: Path, groups: dict[str, list[Run]], title: str, notes: list[str],
          baseline: str | None = None, samples: dict[str, str] | None = None) -> Path:
    """Pictures, table.json, report.md and report.html in `out`; returns report.html.
    With more than one spec, each is compared to `baseline` (default: the first) seed by
    seed. `samples`: text generated by each spec's model (hcdsl/train/samples.py)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = table(groups)
    base = baseline or next(iter(groups))
    paired = paired_to(groups, base) if len(groups) > 1 else []
    what = _val_what(rows)
    sentences = [p.sentence(_val_scope(groups)) for p in paired]
    setting_lines = settings(groups)
    (out / "table.json").write_text(json.dumps({
        "rows": rows, "baseline": base,
        "paired": [{"spec": p.spec, "baseline": p.baseline, "seeds": list(p.seeds),
                    "diffs": list(p.diffs), "mean": p.mean, "half_width": p.half_width,
                    "interval": p.interval, "level": p.level, "sentence": s}
                   for p, s in zip(paired, sentences)],
        "settings": setting_lines}, indent=2) + "\n")
    metrics = {k: [r.metrics for r in v] for k, v in groups.items()}
    probes = {k: [r.probes for r in v] for k, v in groups.items()}
    seeds = {k: [r.summary.get("seed", 0) for r in v] for k, v in groups.items()}
    figures: list[tuple[str, Path | None]] = [
        ("Loss curves (mean over seeds; band: min-max over seeds)",
         plots.loss_curves(metrics, out / "loss.png")),
        (f"Validation loss minus {base}'s, seed by seed, over training",
         plots.paired_curves(metrics, seeds, base, out / "paired.png")
         if len(groups) > 1 else None),
        ("Representation collapse (HC arXiv 2409.19606, Fig. 3)",
         plots.collapse_curves(probes, out / "collapse.png")),
        ("mHC stability (arXiv 2512.24880)", plots.mhc_curves(probes, out / "mhc.png"))]
    missing = []
    for label, runs in groups.items():
        first = runs[0].probes if runs else []
        seed = runs[0].summary.get("seed", 0) if runs else 0
        pic = plots.matrices_over_time(first, f"{label}, seed {seed}",
                                       out / f"matrices_{slug(label)}.png")
        figures.append((f"Connection matrix C^(0) over training: {label} (seed {seed})", pic))
        if pic is None:
            reason = next((p["connections"].get("unavailable") for p in first
                           if "unavailable" in p.get("connections", {})), "no probes")
            missing.append(f"{label}: connection matrices {reason}")
    kinds = {r["memory_kind"] for r in rows if r["memory_kind"]}
    if "process RSS" in kinds:
        notes = [*notes, "peak memory: the run process's peak resident set size (Python, "
                 "torch and the data included; most of it is the same for every spec)"]
    shown = [(t, p) for t, p in figures if p is not None]
    results = markdown_table(HEAD, [_cells(r) for r in rows])
    md = [f"# {title}", "", *[f"- {n}" for n in notes + missing], "", "## Results", "",
          f"Validation loss: {what}.", "", results, ""]
    if paired:
        md += [f"## Paired differences to {base}", "", *[f"- {s}" for s in sentences], "",
               markdown_table(PAIRED_HEAD, [_paired_cells(p) for p in paired]), ""]
    md += ["## Settings", "", *[f"- {line}" for line in setting_lines], ""]
    if samples:
        md += ["## Samples", "", SAMPLES_NOTE, ""]
        md += [f"### {label}\n\n~~~~text\n{text}\n~~~~\n" for label, text in samples.items()]
    md += [f"## {t}\n\n![{t}]({p.name})\n" for t, p in shown]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text(_html(title, notes + missing, rows, what, paired,
                                           sentences, base, setting_lines, shown,
                                           samples or {}))
    return out / "report.html"


def _val_scope(groups: dict[str, list[Run]]) -> str:
    """A few words for the sentences: "whole split" or "a 128-window sample"."""
    sampled = {_json(r.folder / "config.json").get("val_sequences")
               for rs in groups.values() for r in rs}
    windows = {r.summary.get("val_windows") for rs in groups.values() for r in rs}
    if sampled == {None}:
        return "whole validation split"
    n = next(iter(windows)) if len(windows) == 1 else "?"
    return f"a fixed {n}-window sample of the validation split"


def _val_what(rows: list[dict]) -> str:
    windows = {r["val_windows"] for r in rows if r["val_windows"]}
    n = f"{windows.pop():,} windows" if len(windows) == 1 else "windows as in Settings"
    return (f"mean next-token loss in nats over the validation set ({n}); the standard "
            "error is one run's, from the spread of the per-window losses")


def slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in label)


def _html(title: str, notes: list[str], rows: list[dict], what: str,
          paired: list[stats.Paired], sentences: list[str], base: str,
          setting_lines: list[str], figures: list[tuple[str, Path]],
          samples: dict[str, str]) -> str:
    e = html.escape

    def table_html(head: list[str], cells: list[list[str]]) -> str:
        th = "".join(f"<th class='{'l' if i < LEFT else 'r'}'>{e(h)}</th>"
                     for i, h in enumerate(head))
        body = "".join("<tr>" + "".join(f"<td class='{'l' if i < LEFT else 'r'}'>{e(c)}</td>"
                                        for i, c in enumerate(r)) + "</tr>" for r in cells)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    imgs = "".join(
        f"<h2>{e(t)}</h2><img alt='{e(t)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'>" for t, p in figures)
    items = "".join(f"<li>{e(n)}</li>" for n in notes)
    pairs = "" if not paired else (
        f"<h2>Paired differences to {e(base)}</h2><ul class='sentences'>"
        + "".join(f"<li>{e(s)}</li>" for s in sentences) + "</ul>"
        + table_html(PAIRED_HEAD, [_paired_cells(p) for p in paired]))
    sets = "".join(f"<li>{e(x)}</li>" for x in setting_lines)
    texts = "" if not samples else (
        f"<h2>Samples</h2><p>{e(SAMPLES_NOTE)}</p>"
        + "".join(f"<h3>{e(label)}</h3><pre class='sample'>{e(text)}</pre>"
                  for label, text in samples.items()))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; }}
th {{ background: #f0f0f0; }} .l {{ text-align: left; }} .r {{ text-align: right; }}
img {{ max-width: 100%; border: 1px solid #eee; }}
pre.sample {{ background: #f7f7f7; padding: 8px; white-space: pre-wrap; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
</style></head>
<body><h1>{e(title)}</h1><ul>{items}</ul>
<h2>Results</h2><p>Validation loss: {e(what)}.</p>
{table_html(HEAD, [_cells(r) for r in rows])}
{pairs}
<h2>Settings</h2><ul class='settings'>{sets}</ul>
{texts}
{imgs}
</body></html>
"""
