"""`hcdsl compare`: train several specs with identical data order and seeds, then report.

Run (spec i, seed s) trains with seed s and data_seed s, so every spec sees the same batches
in the same order for a given seed. Each run is its own process (`python -m
hcdsl.train.worker`), so its peak memory is its own and `jobs` runs can share the machine;
each lands in OUT/runs/LABEL-sS/ and the report in OUT/. Run again with the same
arguments to continue: finished runs are kept, interrupted ones resume from their last
checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

import hcdsl
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError
from hcdsl.train.prepare import spec_errors
from hcdsl.train.report import load_run, write


def labels(specs: list[str]) -> list[str]:
    """File stems (model names for spec text), made unique with -2, -3, ..."""
    out: list[str] = []
    for s in specs:
        base = Path(s).stem if "\n" not in s and "{" not in s else hcdsl.parse(s).name
        label, k = base, 2
        while label in out:
            label, k = f"{base}-{k}", k + 1
        out.append(label)
    return out


def plan(specs: list[str], out: Path, seeds: int, options: dict,
         jobs: int) -> list[tuple[str, TrainConfig]]:
    """One validated config per (spec, seed); raises TrainError on a spec that does not
    compile or an option that does not validate, before anything runs."""
    if not specs:
        raise TrainError("compare needs at least one spec")
    for s in specs:
        source = TrainConfig(spec=s, out=out).spec_source()
        with spec_errors(str(source) if isinstance(source, Path) else "<spec text>"):
            hcdsl.stats(source)
    threads = options.pop("threads", None) or (1 if jobs > 1 else None)
    configs = []
    for spec, label in zip(specs, labels(specs)):
        for seed in range(seeds):
            fixed = {"spec": spec, "seed": seed, "data_seed": seed, "resume": True,
                     "out": out / "runs" / f"{label}-s{seed}", "progress": False,
                     "threads": threads}
            configs.append((label, TrainConfig(**{**options, **fixed})))
    return configs


def compare(specs: list[str], out: Path, seeds: int = 1, options: dict | None = None,
            jobs: int = 1, progress: bool = True, baseline: str | None = None) -> Path:
    """Train every (spec, seed), write the report; returns OUT/report.html. Every spec is
    compared seed by seed to `baseline` (one of `specs`; default the first)."""
    names = labels(specs)
    base = _baseline_label(specs, names, baseline)
    planned = plan(specs, out, seeds, dict(options or {}), jobs)
    configs = [c for _, c in planned]
    (out / "configs").mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(
        {"specs": specs, "labels": names, "seeds": seeds, "options": options or {}},
        indent=2, default=str) + "\n")
    failures = _run_all(configs, out, jobs, progress)
    groups = {label: [load_run(c.out) for lab, c in planned if lab == label] for label in names}
    first = configs[0]
    busy = sum(r.summary.get("wall_seconds", 0.0) for runs in groups.values() for r in runs)
    notes = [f"{len(configs)} runs: {len(specs)} spec(s) x {seeds} seed(s), {first.steps} steps "
             f"each, global batch {first.batch * first.accum} x {first.seq} tokens, "
             f"{first.tokenizer} tokens, data: {first.data or 'Python stdlib source'}, "
             f"lr {first.lr} ({first.schedule}); {busy:,.0f} s of training in all, "
             f"{jobs} run(s) at a time",
             *[f"FAILED {f}" for f in failures]]
    path = write(out, groups, "hcdsl compare", notes, baseline=base)
    if failures:
        raise TrainError(f"{len(failures)} run(s) failed (report written to {path}): "
                         + "; ".join(failures))
    return path


def _baseline_label(specs: list[str], names: list[str], baseline: str | None) -> str:
    """The label of the baseline spec: `baseline` names one of `specs` (as given, or the
    same file), or is one of their labels."""
    if baseline is None:
        return names[0]
    for spec, label in zip(specs, names):
        same_file = ("\n" not in spec and Path(spec).exists() and Path(baseline).exists()
                     and Path(spec).resolve() == Path(baseline).resolve())
        if baseline in (spec, label) or same_file:
            return label
    raise TrainError(f"--baseline {baseline} is not one of the compared specs "
                     f"({', '.join(names)}): name one of the SPEC files")


def _finished(cfg: TrainConfig) -> bool:
    """The run is done with these very settings (else its worker resumes it, or says why
    it cannot)."""
    summary, recorded = cfg.out / "summary.json", cfg.out / "config.json"
    if not (summary.exists() and recorded.exists()):
        return False
    same = not cfg.differences(TrainConfig.model_validate_json(recorded.read_text()))
    return same and json.loads(summary.read_text()).get("done", False)


def _run_all(configs: list[TrainConfig], out: Path, jobs: int, progress: bool) -> list[str]:
    todo = [c for c in configs if not _finished(c)]
    running: list[tuple[TrainConfig, subprocess.Popen, object]] = []
    failures: list[str] = []
    total = sum(c.steps for c in configs)
    bar = Progress(TextColumn("[bold]compare[/bold]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("steps"), TimeRemainingColumn(), console=Console(stderr=True),
                   disable=not progress)
    with bar:
        task = bar.add_task("runs", total=total,
                            completed=sum(_done_steps(c) for c in configs))
        while todo or running:
            while todo and len(running) < jobs:
                cfg = todo.pop(0)
                path = out / "configs" / f"{cfg.out.name}.json"
                path.write_text(cfg.model_dump_json(indent=2))
                cfg.out.mkdir(parents=True, exist_ok=True)
                log = open(cfg.out / "worker.log", "a")  # noqa: SIM115 - closed below
                proc = subprocess.Popen([sys.executable, "-m", "hcdsl.train.worker", str(path)],
                                        stdout=log, stderr=subprocess.STDOUT)
                running.append((cfg, proc, log))
            time.sleep(0.5)
            for item in list(running):
                cfg, proc, log = item
                if proc.poll() is not None:
                    log.close()
                    running.remove(item)
                    if proc.returncode != 0:
                        lines = (cfg.out / "worker.log").read_text().strip().splitlines()
                        failures.append(f"{cfg.out.name}: {lines[-1] if lines else 'no output'}")
            bar.update(task, completed=sum(_done_steps(c) for c in configs))
    return failures


def _done_steps(cfg: TrainConfig) -> int:
    path = cfg.out / "metrics.jsonl"
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read().decode(errors="replace").strip().splitlines()
    try:
        return int(json.loads(tail[-1])["step"]) if tail else 0
    except (ValueError, KeyError):
        return 0
