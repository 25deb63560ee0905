"""The interleaved rounds of `hcdsl bench` and its report.

Each candidate (a spec's model, or a hyper-connections package model) is paired with its
Pre-Norm baseline. After a warm-up (which compiles), every round times, for each pair and each
mode (train/infer x eager/compiled), `steps` steps of the candidate and `steps` steps of its
baseline back to back (the candidate first in even rounds, the baseline first in odd ones),
so the two see the same machine load; the pair's figure is the median over rounds of the
per-round ratio candidate / baseline, with the min-max. On a noisy machine ratios taken
this way are much steadier than absolute times (see benchmarks/README.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from hcdsl.bench import measure, package
from hcdsl.bench.models import baseline_key, build_pairs, params
from hcdsl.spec import ModelSpec

MODES: tuple[tuple[str, bool], ...] = (("train", False), ("train", True),
                                       ("infer", False), ("infer", True))
MEMORY_METHOD = (
    "memory (eager, one training step, ratio to Pre-Norm): peak = highest bytes allocated "
    "above the step's start ({peak}); kept = bytes allocated by forward + loss and still "
    "allocated when backward starts (the same allocator count: sees what checkpointing keeps); "
    "saved (JSON only) = bytes of tensors saved for backward "
    "(torch.autograd.graph.saved_tensors_hooks, unique storages, parameters excluded; blind "
    "to what a checkpoint keeps)")


def mode_name(kind: str, compiled: bool) -> str:
    return f"{kind} {'compiled' if compiled else 'eager'}"


@dataclass
class Settings:
    batch: int = 8
    seq: int = 128
    rounds: int = 5
    warmup: int = 2
    steps: int = 3  # timed steps per candidate per round
    compile: bool = True
    device: str = "cpu"
    seed: int = 0
    package: bool = True  # also run the hyper-connections package's counterparts
    memory: bool = True
    threads: int = 0  # torch intra-op threads for the run (0: leave torch's setting)
    recompute: bool = False  # compile the specs with recompute=True (hcdsl.compile)
    # recomputation across layers: the specs (not their Pre-Norm baselines) compiled with
    # recompute="layers", k = recompute_every (0: the memory model's choice)
    recompute_layers: bool = False
    recompute_every: int = 0
    disable: tuple[str, ...] = ()  # passes left out of the pipeline (hcdsl.compile)
    infer: bool = True  # also time inference (no_grad forward), besides the training step


@dataclass
class Spread:
    median: float
    min: float
    max: float

    @staticmethod
    def of(xs: list[float]) -> "Spread":
        return Spread(statistics.median(xs), min(xs), max(xs))


@dataclass
class ModeResult:
    mode: str  # "train eager", "train compiled", "infer eager", "infer compiled"
    ratio: Spread | None  # candidate / baseline, one value per round
    ms: float | None  # the candidate's median ms per step
    base_ms: float | None  # the baseline's
    note: str = ""


@dataclass
class Memory:
    saved_bytes: int
    base_saved_bytes: int
    saved_ratio: float
    kept_bytes: int | None
    base_kept_bytes: int | None
    kept_ratio: float | None
    peak_bytes: int | None
    base_peak_bytes: int | None
    peak_ratio: float | None


@dataclass
class PairResult:
    label: str  # "hcdsl DHC x4", "hyper-connections DHC x4"
    spec: str
    family: str
    source: str  # "hcdsl" | "hyper-connections"
    baseline: str
    params: int
    base_params: int
    modes: list[ModeResult] = field(default_factory=list)
    memory: Memory | None = None
    compile_s: dict[str, float] = field(default_factory=dict)  # first call, compiled modes
    notes: list[str] = field(default_factory=list)

    def mode(self, name: str) -> ModeResult | None:
        return next((m for m in self.modes if m.mode == name), None)


@dataclass
class BenchReport:
    settings: Settings
    machine: dict[str, Any]
    memory_method: str
    package: str  # "hyper-connections 0.4.11" or the not-installed message
    pairs: list[PairResult]
    baselines_ms: dict[str, dict[str, float]]  # baseline label -> mode -> median ms/step
    notes: list[str]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "device": str(device), "dtype": "float32",
    }
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            info["cpu"] = names[0]
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@dataclass
class _Pair:
    result: PairResult
    model: nn.Module
    base: nn.Module
    vocab: int


@dataclass
class _Runner:
    """One model's step functions and what happened to them."""

    label: str
    model: nn.Module
    steps: dict[str, measure.Step] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # mode -> error message
    losses: dict[str, float] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)
    ms: dict[str, list[float]] = field(default_factory=dict)
    saved: int = 0
    kept: int | None = None
    peak: int | None = None


def _pairs(paths: list[str], s: Settings, device: torch.device,
           notes: list[str]) -> tuple[list[_Pair], str]:
    built = build_pairs(paths, device, s.seed, "layers" if s.recompute_layers else s.recompute,
                        s.disable, s.recompute_every)
    pairs = [
        _Pair(PairResult(label=f"hcdsl {b.family}", spec=b.path, family=b.family,
                         source="hcdsl", baseline="hcdsl Pre-Norm", params=params(b.model),
                         base_params=params(b.base),
                         notes=[f"{b.shared_tensors} tensors shared with its Pre-Norm "
                                "baseline (same name and shape)"]),
              b.model, b.base, b.spec.vocab)
        for b in built]
    if not s.package:
        return pairs, "not run (--no-package)"
    if not package.installed():
        notes.append(package.MISSING)
        return pairs, package.MISSING
    status = f"{package.PACKAGE} {package.version()}"
    bases: dict[str, nn.Module] = {}
    out: list[_Pair] = []
    for b, pair in zip(built, pairs):
        out.append(pair)
        variant = package.counterpart(b.family)
        if variant is None:
            pair.result.notes.append(f"{package.PACKAGE} has no counterpart of {b.family}")
            continue
        spec: ModelSpec = b.spec
        try:
            key = baseline_key(spec)
            if key not in bases:
                bases[key] = package.build(spec, None, 1, b.base, device)
            model = package.build(spec, *variant, b.model, device)
        except package.UnsupportedSpec as exc:
            pair.result.notes.append(f"{package.PACKAGE}: {exc}")
            continue
        label = f"{package.PACKAGE} {package.describe(*variant)}"
        out.append(_Pair(PairResult(label=label, spec=b.path, family=package.describe(*variant),
                                    source=package.PACKAGE,
                                    baseline=f"{package.PACKAGE} {package.describe(None, 1)}",
                                    params=params(model), base_params=params(bases[key])),
                         model, bases[key], spec.vocab))
    return out, status


def _tokens(vocab: int, s: Settings, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(s.seed)
    tokens = torch.randint(0, vocab, (s.batch, s.seq), generator=g)
    targets = torch.randint(0, vocab, (s.batch, s.seq), generator=g)
    return tokens.to(device), targets.to(device)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def run_bench(paths: list[str], settings: Settings,
              progress: Callable[[str, int, int], None] | None = None) -> BenchReport:
    """Build, warm up (compile), measure memory, and time the interleaved rounds.

    `progress(description, done, total)` is called as work advances (for a progress bar).
    Raises HcError / CompileError for a bad spec."""
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        return _run(paths, settings, progress)
    finally:
        torch.set_num_threads(threads)


def _run(paths: list[str], settings: Settings,
         progress: Callable[[str, int, int], None] | None) -> BenchReport:
    t_start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other work on the host
    s = settings
    device = torch.device(s.device)
    notes: list[str] = []
    pairs, pkg_status = _pairs(paths, s, device, notes)
    modes = [(k, c) for k, c in MODES if (s.compile or not c) and (s.infer or k == "train")]
    data = {v: _tokens(v, s, device) for v in {p.vocab for p in pairs}}

    runners: dict[int, _Runner] = {}
    for p in pairs:
        for module, label in ((p.model, p.result.label), (p.base, p.result.baseline)):
            if id(module) not in runners:
                runners[id(module)] = _Runner(label, module)
    vocab_of = {id(m): p.vocab for p in pairs for m in (p.model, p.base)}

    total = (len(runners) * len(modes) * max(1, s.warmup) + (len(runners) if s.memory else 0)
             + s.rounds * len(pairs) * len(modes) * 2)
    done = 0

    def tick(what: str, units: int = 1) -> None:
        nonlocal done
        done += units
        if progress is not None:
            progress(what, done, total)

    limit = max(64, 4 * len(runners))
    patch = {"recompile_limit": limit} if hasattr(torch._dynamo.config, "recompile_limit") \
        else {"cache_size_limit": limit}
    with torch._dynamo.config.patch(**patch):
        for r in runners.values():  # warm-up: the first compiled call compiles
            tokens, targets = data[vocab_of[id(r.model)]]
            for kind, compiled in modes:
                name = mode_name(kind, compiled)
                if progress is not None:
                    progress(f"warm-up {r.label}: {name}"
                             f"{' (compiling)' if compiled else ''}", done, total)
                warmed = 0
                try:
                    step = (measure.train_step(r.model, tokens, targets, compiled)
                            if kind == "train" else measure.infer_step(r.model, tokens, compiled))
                    for i in range(max(1, s.warmup)):
                        t0 = time.perf_counter()
                        out = step()
                        measure.sync(device)
                        if i == 0 and compiled:
                            r.compile_s[name] = time.perf_counter() - t0
                        warmed += 1
                        tick(f"warm-up {r.label}: {name}")
                    if kind == "train":
                        r.losses[name] = float(out)
                    r.steps[name] = step
                except Exception as exc:  # noqa: BLE001 - reported, the rest still runs
                    r.failed[name] = _short(exc)
                    tick(f"warm-up {r.label}: {name} failed", max(1, s.warmup) - warmed)
            eager, comp = r.losses.get("train eager"), r.losses.get("train compiled")
            if eager is not None and comp is not None and \
                    abs(eager - comp) > 1e-4 * max(1.0, abs(eager)):
                notes.append(f"{r.label}: compiled loss {comp:.6f} != eager loss {eager:.6f}")

        if s.memory:
            for r in runners.values():
                tokens, targets = data[vocab_of[id(r.model)]]
                if progress is not None:
                    progress(f"memory {r.label}", done, total)
                r.saved = measure.saved_tensor_bytes(r.model, tokens, targets)
                r.kept = measure.kept_bytes(r.model, tokens, targets, device)
                r.peak = measure.peak_step_bytes(r.model, tokens, targets, device)
                tick(f"memory {r.label}")

        ratios: dict[tuple[int, str], list[float]] = {}
        for rnd in range(s.rounds):
            for i, p in enumerate(pairs):
                a, b = runners[id(p.model)], runners[id(p.base)]
                for kind, compiled in modes:
                    name = mode_name(kind, compiled)
                    what = f"round {rnd + 1}/{s.rounds}: {p.result.label} vs Pre-Norm, {name}"
                    if name not in a.steps or name not in b.steps:
                        tick(what, 2)
                        continue
                    order = (a, b) if rnd % 2 == 0 else (b, a)  # alternate who goes first
                    t = {}
                    for r in order:
                        t[id(r)] = measure.time_steps(r.steps[name], s.steps, device)
                        tick(what)
                    ta, tb = t[id(a)], t[id(b)]
                    a.ms.setdefault(name, []).append(ta)
                    b.ms.setdefault(name, []).append(tb)
                    ratios.setdefault((i, name), []).append(ta / tb)

    baselines_ms: dict[str, dict[str, float]] = {}
    for i, p in enumerate(pairs):
        a, b = runners[id(p.model)], runners[id(p.base)]
        res = p.result
        for kind, compiled in modes:
            name = mode_name(kind, compiled)
            rs = ratios.get((i, name))
            note = a.failed.get(name) or b.failed.get(name) or ""
            if note:
                note = ("baseline: " if name in b.failed else "") + note
            res.modes.append(ModeResult(
                name, Spread.of(rs) if rs else None,
                statistics.median(a.ms[name]) if a.ms.get(name) else None,
                statistics.median(b.ms[name]) if b.ms.get(name) else None, note))
            if b.ms.get(name):
                baselines_ms.setdefault(res.baseline, {})[name] = statistics.median(b.ms[name])
        res.compile_s = dict(a.compile_s)
        if s.memory:
            res.memory = Memory(
                a.saved, b.saved, a.saved / b.saved if b.saved else float("nan"),
                a.kept, b.kept, a.kept / b.kept if a.kept is not None and b.kept else None,
                a.peak, b.peak,
                a.peak / b.peak if a.peak is not None and b.peak else None)
    peak_how = ("torch.cuda.max_memory_allocated" if device.type == "cuda"
                else "torch.profiler memory events")
    machine = machine_info(device)
    machine["load_average_at_start"] = load
    return BenchReport(s, machine, MEMORY_METHOD.format(peak=peak_how), pkg_status,
                       [p.result for p in pairs], baselines_ms, notes,
                       time.perf_counter() - t_start)
