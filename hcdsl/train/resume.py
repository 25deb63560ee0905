"""What a run folder holds, checked once it is locked (lock.py): a new run, or which
checkpoints a resume may continue from, newest first.

- a folder that holds a run is only continued with --resume, with the same settings, the
  same spec text (spec.hc) and the same data (data.json's SHA-256: a replaced data file is
  refused, and data.json is never rewritten);
- an empty or damaged config.json does not make a run with good checkpoints unresumable: the
  settings recorded in its newest readable checkpoint stand in (and config.json is rewritten);
- `--resume-from DIR` (a checkpoint folder, or a run folder: its newest good checkpoint)
  continues only the same model: the checkpoint's spec, parsed and normalised, must equal
  this one (a different spec with the same parameter shapes, `tanh` switched off say, is
  refused), and its recorded settings too (out and the runtime switches aside).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import ValidationError

from hcdsl.compiler import checked
from hcdsl.errors import HcError
from hcdsl.frontend.source import text_source
from hcdsl.proofs.run_folder import META, step_folders
from hcdsl.spec import ModelSpec
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError
from hcdsl.train.prepare import Prepared

CONFIG, SPEC, DATA = "config.json", "spec.hc", "data.json"


@dataclass
class Plan:
    candidates: list[Path]  # checkpoint folders to try, newest first ([]: a new run)
    fallback: bool  # a damaged one is skipped with a warning (else it is an error)
    rewrite: set[str]  # files of the run folder (re)written before the first step
    warnings: list[str]


def plan(cfg: TrainConfig, prep: Prepared) -> Plan:
    """Raises TrainError when the run folder may not be (re)used as asked."""
    if cfg.resume_from is not None:
        return _resume_from(cfg, prep)
    recorded = cfg.out / CONFIG
    steps = step_folders(cfg.out)
    if not recorded.exists() and not steps:
        return Plan([], False, {CONFIG, SPEC, DATA}, [])
    if not cfg.resume:
        raise TrainError(f"{cfg.out} holds a run already: pass --resume to continue it, "
                         "or choose another --out")
    notes: list[str] = []
    rewrite: set[str] = set()
    old = _read_config(recorded)
    if old is None:
        old, where = _config_from_checkpoints(steps, recorded)
        notes.append(f"{recorded} is empty or unreadable: the settings recorded in {where} "
                     "are used, and config.json is written again")
        rewrite.add(CONFIG)
    spec_file = cfg.out / SPEC
    if spec_file.is_file() and spec_file.read_text(errors="replace") != prep.text:
        raise TrainError(f"--resume {cfg.out}: its run trained another spec (see {spec_file}); "
                         "resume it with that spec, or choose another --out")
    if not spec_file.is_file():
        rewrite.add(SPEC)
    diff = [k for k in cfg.differences(old) if k != "spec"]
    if diff:
        raise TrainError(f"--resume {cfg.out}: its run was started with other settings "
                         f"({', '.join(f'{k}={getattr(old, k)!r}' for k in diff)}); resume "
                         "with the same ones, or choose another --out")
    if not _same_data(cfg.out / DATA, prep, cfg):
        rewrite.add(DATA)
    return Plan(list(reversed(steps)), True, rewrite, notes)


def _resume_from(cfg: TrainConfig, prep: Prepared) -> Plan:
    src = cfg.resume_from
    assert src is not None
    if (src / META).is_file():
        candidates, fallback = [src], False
    else:
        candidates, fallback = list(reversed(step_folders(src))), True
        if not candidates:
            raise TrainError(f"--resume-from {src}: not a checkpoint folder (no meta.pt) nor "
                             "a run folder with checkpoints (no checkpoints/step_N/meta.pt)")
    meta = _meta(candidates[0])
    if meta is None:
        raise TrainError(f"--resume-from {candidates[0]}: its meta.pt cannot be read safely, "
                         "or is not a checkpoint of hcdsl train")
    same_run = src.resolve() in (cfg.out.resolve(), *[
        p.resolve() for p in step_folders(cfg.out)])
    if (cfg.out / CONFIG).exists() and not same_run:
        raise TrainError(f"{cfg.out} holds another run: choose a new --out")
    _same_spec(meta, prep, candidates[0])
    if isinstance(meta.get("config"), dict):
        try:
            old = TrainConfig(**meta["config"])
        except ValidationError:
            old = None
        diff = [k for k in cfg.differences(old) if k != "spec"] if old else []
        if diff:
            raise TrainError(f"--resume-from {candidates[0]}: it was trained with other settings "
                             f"({', '.join(f'{k}={getattr(old, k)!r}' for k in diff)}); "
                             "continue with the same ones")
    return Plan(candidates, fallback, {CONFIG, SPEC, DATA}, [])


def _same_spec(meta: dict, prep: Prepared, folder: Path) -> None:
    """The checkpoint's spec, normalised (parsed and validated), is this run's."""
    text = meta.get("spec")
    if not isinstance(text, str):
        return  # an older checkpoint without its spec: the parameter signature decides
    try:
        theirs = checked(text_source(text, f"{folder}/meta.pt")).spec
    except HcError:
        theirs = None
    mine = prep.source.spec
    if theirs != mine:
        fields = _spec_fields(theirs, mine)
        raise TrainError(f"--resume-from {folder} was written for another spec (model "
                         f"'{meta.get('model', '?')}'; differs in: {fields}); resume it with "
                         "its own spec (its text is in the run's spec.hc), or start a new run")


def _spec_fields(a: ModelSpec | None, b: ModelSpec) -> str:
    if a is None:
        return "its spec text no longer parses"
    da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
    return ", ".join(k for k in db if da.get(k) != db[k]) or "?"


def _read_config(path: Path) -> TrainConfig | None:
    try:
        return TrainConfig(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):  # ValidationError is a ValueError
        return None


def _meta(folder: Path) -> dict | None:
    try:
        meta = torch.load(folder / META, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable file: not usable
        return None
    return meta if isinstance(meta, dict) and {"step", "signature"} <= set(meta) else None


def _config_from_checkpoints(steps: list[Path], recorded: Path) -> tuple[TrainConfig, Path]:
    for folder in reversed(steps):
        meta = _meta(folder)
        try:
            return TrainConfig(**meta["config"]), folder  # type: ignore[index]
        except (TypeError, KeyError, ValidationError):
            continue
    raise TrainError(f"{recorded} is empty or unreadable and no checkpoint records the run's "
                     "settings: restore config.json, or choose another --out")


def _same_data(path: Path, prep: Prepared, cfg: TrainConfig) -> bool:
    """False when data.json is missing or unreadable (it is written again); TrainError when
    it records other data than this run reads."""
    try:
        recorded = json.loads(path.read_text())
        sha = recorded["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    now = prep.data.info
    if sha != now["sha256"]:
        raise TrainError(f"--resume {cfg.out}: the data changed since the run started ("
                         f"{recorded.get('source', '?')}: {recorded.get('bytes', '?')} bytes "
                         f"with SHA-256 {sha[:12]}..., now {now['bytes']:,} bytes with "
                         f"{now['sha256'][:12]}...); resume with the data it was trained on, "
                         "or choose another --out")
    return True


def write(cfg: TrainConfig, prep: Prepared, names: set[str]) -> None:
    """The run's config.json, spec.hc and data.json (rank 0, before the first step); each
    written to a temporary file and renamed, so a full disk never leaves one empty."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    info = {**prep.data.info, "seq": cfg.seq, "train_sequences": prep.batches.windows,
            "val_sequences": int(prep.val.shape[0])}
    texts = {CONFIG: cfg.model_dump_json(indent=2) + "\n", SPEC: prep.text,
             DATA: json.dumps(info, indent=2) + "\n"}
    for name in sorted(names):
        write_atomic(cfg.out / name, texts[name])


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
