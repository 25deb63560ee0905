"""`hcdsl compare`: train several specs with identical data order and seeds, then report.

Run (spec i, seed s) trains with seed s and data_seed s, so every spec sees the same batches
in the same order for a given seed. Each run is its own process (`python -m hcdsl
worker`, worker.py), so its peak memory is its own and `jobs` runs can share the machine;
each lands in OUT/runs/LABEL-sS/ and the report in OUT/. Run again with the same
arguments to continue: finished runs are kept, interrupted ones resume from their last
checkpoint (a worker dies with this process, so none is left training after a kill).

OUT is locked while compare runs (OUT/compare.lock). compare.json is its marker and
manifest (manifest.py): an --out holding a file compare would write but did not (a user's
own report.html, say), or one changed since, is refused before anything is written; so is
a rerun whose settings differ from those its runs were started with.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

import hcdsl
from hcdsl.compiler import Compilation
from hcdsl.train import manifest, signals
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import Stopped, TrainError
from hcdsl.train.lock import FolderLock
from hcdsl.train.loop import where
from hcdsl.train.prepare import read_spec, spec_errors
from hcdsl.train.report import load_run, slug, write
from hcdsl.train.samples import sample_run
from hcdsl.train.worker import PARENT, command_line

REPORT_FILES = ("report.html", "report.md", "table.json", "loss.png", "paired.png",
                "collapse.png", "mhc.png")


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
        cfg = TrainConfig(spec=s, out=out)
        name = s if isinstance(cfg.spec_source(), Path) else "<spec text>"
        with spec_errors(name):
            hcdsl.stats(Compilation.from_source(read_spec(cfg), once=True))
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
    ours = [*REPORT_FILES, *[f"matrices_{slug(label)}.png" for label in names],
            *[f"configs/{c.out.name}.json" for c in configs]]
    with signals.stoppable(), FolderLock(out, "compare.lock", "hcdsl compare"):
        files = manifest.read(out, ours)
        _same_settings(configs)
        files.update({name: None for name in ours})  # being (re)written by compare
        record = {"specs": specs, "labels": names, "seeds": seeds,
                  "options": options or {}}
        manifest.write(out, record, files)
        (out / "configs").mkdir(exist_ok=True)
        try:
            failures = _run_all(configs, out, jobs, progress)
        except signals.Interrupted as exc:
            done = sum(_finished(c) for c in configs)
            raise Stopped(f"compare stopped by {exc.name}: {done} of {len(configs)} runs "
                          "finished, each other one at its last checkpoint ("
                          + "; ".join(f"{c.out.name}: {where(c.out)}" for c in configs
                                      if not _finished(c))
                          + "); run the same command again to continue",
                          128 + exc.signum) from None
        groups = {label: [load_run(c.out) for lab, c in planned if lab == label]
                  for label in names}
        first = configs[0]
        busy = sum(r.summary.get("wall_seconds", 0.0) for runs in groups.values() for r in runs)
        notes = [f"{len(configs)} runs: {len(specs)} spec(s) x {seeds} seed(s), {first.steps} "
                 f"steps each, global batch {first.batch * first.accum} x {first.seq} tokens, "
                 f"{first.tokenizer} tokens, data: {first.data or 'Python stdlib source'}, "
                 f"lr {first.lr} ({first.schedule}); {busy:,.0f} s of training in all, "
                 f"{jobs} run(s) at a time",
                 *[f"FAILED {f}" for f in failures]]
        with signals.held():
            texts = {label: sample_run(runs[0].folder) for label, runs in groups.items()
                     if runs and runs[0].summary.get("done")}
            path = write(out, groups, "hcdsl compare", notes, baseline=base, samples=texts)
            manifest.write(out, record, {name: manifest.sha256(out / name) for name in ours
                                         if (out / name).is_file()})
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


def _same_settings(configs: list[TrainConfig]) -> None:
    """A run folder already holding a run with other settings or another spec: refused
    here, before compare writes anything (rather than by its worker, after)."""
    for cfg in configs:
        try:
            old = TrainConfig.model_validate_json((cfg.out / "config.json").read_text())
        except (OSError, ValueError):
            continue  # a new run, or one its worker recovers or refuses with a reason
        diff = [k for k in cfg.differences(old) if k != "spec"]
        spec_file = cfg.out / "spec.hc"
        if spec_file.is_file() and spec_file.read_text(errors="replace") != \
                read_spec(cfg).text:
            diff.append("spec (the text differs from the run's spec.hc)")
        if diff:
            raise TrainError(f"{cfg.out} holds a run started with other settings ("
                             + ", ".join(d if d.startswith("spec") else
                                         f"{d}={getattr(old, d)!r}" for d in diff)
                             + "): rerun compare with the same ones, or choose another --out")


def _finished(cfg: TrainConfig) -> bool:
    """The run is done with these very settings (else its worker resumes it, or says why
    it cannot)."""
    try:
        recorded = TrainConfig.model_validate_json((cfg.out / "config.json").read_text())
        summary = json.loads((cfg.out / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return not cfg.differences(recorded) and bool(summary.get("done", False))


def _run_all(configs: list[TrainConfig], out: Path, jobs: int, progress: bool) -> list[str]:
    todo = [c for c in configs if not _finished(c)]
    running: list[tuple[TrainConfig, subprocess.Popen, object]] = []
    failures: list[str] = []
    total = sum(c.steps for c in configs)
    bar = Progress(TextColumn("[bold]compare[/bold]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("steps"), TimeRemainingColumn(), console=Console(stderr=True),
                   disable=not progress)
    env = {**os.environ, PARENT: str(os.getpid())}
    try:
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
                    proc = subprocess.Popen(command_line(path), stdout=log,
                                            stderr=subprocess.STDOUT, env=env)
                    running.append((cfg, proc, log))
                time.sleep(0.5)
                for item in list(running):
                    cfg, proc, log = item
                    if proc.poll() is not None:
                        log.close()
                        running.remove(item)
                        if proc.returncode != 0:
                            lines = (cfg.out / "worker.log").read_text(
                                errors="replace").strip().splitlines()
                            failures.append(f"{cfg.out.name}: "
                                            f"{lines[-1] if lines else 'no output'}")
                bar.update(task, completed=sum(_done_steps(c) for c in configs))
    finally:  # stopped (a signal, an error): the workers stop too, at once
        for _, proc, log in running:
            proc.terminate()
        for _, proc, log in running:
            proc.wait()
            log.close()
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
