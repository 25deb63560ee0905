"""Checkpoints for exact resume: after stop + resume, the same losses as without stopping.

A checkpoint is a folder `checkpoints/step_NNNNNN/` holding
- meta.pt: step, data position, global batch, scheduler, every rank's RNG states (Python,
  NumPy, torch CPU and CUDA), the model's parameter signature and the spec text;
- state.pt (one process or DDP): the model's and the optimizer's state_dicts; or, with
  FSDP2, the sharded model and optimizer written by torch.distributed.checkpoint (DCP);
  or, with --pp, each pipeline stage's share written by DCP under the whole model's names
  (a stage holds the model's own modules), so it loads on any other cut of the model.
It is written to `step_NNNNNN.tmp` and renamed when complete, so a run killed while saving
keeps its previous checkpoint; only the newest `keep` are kept, newest by step NUMBER
(hcdsl/proofs/run_folder.py: `step_1000000` is newer than `step_999999`).

A checkpoint is only written when every weight is finite, so the one a NaN message names as
the last good one is good; `problem` says why a folder cannot be resumed from (unreadable,
truncated, another spec's tensors, non-finite weights), so a resume can fall back to the
previous one.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from hcdsl.proofs.run_folder import META, STATE, load_failure, step_folders
from hcdsl.train.parallel import Dist


def signature(model: nn.Module) -> dict[str, list[int]]:
    """Parameter and buffer names -> shapes: what a checkpoint must match to load."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (np_state[0], np_state[1].tolist(), *np_state[2:]),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(s: dict) -> None:
    random.setstate((s["python"][0], tuple(s["python"][1]), s["python"][2]))
    name, keys, *rest = s["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def latest(run: Path) -> Path | None:
    """The run's newest complete checkpoint folder, by step number."""
    done = step_folders(run)
    return done[-1] if done else None


def non_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [k for k, v in state.items() if isinstance(v, torch.Tensor)
            and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def problem(folder: Path, expect: dict[str, list[int]], fsdp: bool,
            pipeline: bool = False) -> str | None:
    """Why `folder` cannot be resumed from by this run's model (None: it can): an unreadable
    or foreign meta.pt, a missing or damaged state.pt, tensors of another spec, weights that
    are not finite. Reads the files; changes nothing."""
    try:
        meta = torch.load(folder / META, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a damaged checkpoint
        return f"its meta.pt cannot be read ({load_failure(exc)})"
    if not isinstance(meta, dict) or not {"step", "signature", "rng"} <= set(meta):
        return "its meta.pt is not a checkpoint of hcdsl train"
    mismatch = _differences(meta.get("signature", {}), expect)
    if mismatch:
        return f"it was written for another spec (model '{meta.get('model', '?')}'): {mismatch}"
    if meta.get("fsdp", False) != fsdp:
        return (f"it was written {'with' if meta.get('fsdp') else 'without'} --fsdp: resume "
                "it the same way")
    if meta.get("pipeline", False) != pipeline:
        return (f"it was written {'with' if meta.get('pipeline') else 'without'} --pp: "
                "resume it the same way (any stage count)")
    if fsdp or pipeline:
        return None if (folder / ".metadata").is_file() else "its .metadata (DCP) is missing"
    try:
        state = torch.load(folder / STATE, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - missing, truncated, random bytes, empty
        return f"its state.pt cannot be read ({load_failure(exc)})"
    if not (isinstance(state, dict) and isinstance(state.get("model"), dict)
            and isinstance(state.get("optim"), dict)):
        return "its state.pt holds no model and optimizer state"
    got = {k: list(v.shape) for k, v in state["model"].items() if isinstance(v, torch.Tensor)}
    mismatch = _differences(got, expect)
    if mismatch:
        return f"its state.pt holds another model's weights: {mismatch}"
    bad = non_finite(state["model"])
    if bad:
        return f"{len(bad)} of its weights are not finite (e.g. {bad[0]})"
    return None




def save(folder: Path, meta: dict, model: nn.Module, raw: nn.Module,
         optimizer: torch.optim.Optimizer, d: Dist, fsdp: bool, keep: int,
         parts: nn.Module | None = None) -> Path:
    """Every rank calls this (collectives inside); returns the checkpoint folder. parts:
    this rank's pipeline stages (--pp)."""
    final = folder.parent / folder.name
    tmp = folder.parent / (folder.name + ".tmp")
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(d)
    if fsdp or parts is not None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        msd, osd = get_state_dict(parts if parts is not None else model, optimizer,
                                  options=_options(parts))
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(tmp))
    elif d.main:
        _write(lambda: torch.save({"model": raw.state_dict(), "optim": optimizer.state_dict()},
                                  tmp / STATE), tmp)
    rngs = [None] * d.world
    if d.world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    if d.main:
        _write(lambda: torch.save({**meta, "rng": rngs, "fsdp": fsdp,
                                   "pipeline": parts is not None}, tmp / META), tmp)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for p in step_folders(final.parent.parent)[:-keep]:  # oldest first, by step number
            shutil.rmtree(p, ignore_errors=True)
    _barrier(d)
    return final


def _write(save: Callable[[], None], tmp: Path) -> None:
    """Run a torch.save into tmp; when it fails (a full disk: torch says "file write
    failed", a RuntimeError), remove tmp and raise an OSError that says so."""
    try:
        save()
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise
        free = shutil.disk_usage(tmp.parent).free
        code = errno.ENOSPC if free < 1 << 20 else errno.EIO
        raise OSError(code, f"{os.strerror(code)}: writing the checkpoint failed "
                      f"({load_failure(exc)}; {free:,} bytes free)", str(tmp)) from None


def load(folder: Path, model: nn.Module, raw: nn.Module, optimizer: torch.optim.Optimizer,
         d: Dist, fsdp: bool, parts: nn.Module | None = None) -> dict:
    """Restore model, optimizer and this rank's RNG from a folder `problem` passed; returns
    meta (step, scheduler, ...). parts: this rank's pipeline stages (--pp), which read their
    share of the checkpoint by name, whatever cut wrote it."""
    meta = torch.load(folder / META, map_location="cpu", weights_only=True)
    if fsdp or parts is not None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        held = parts if parts is not None else model
        msd, osd = get_state_dict(held, optimizer, options=_options(parts))
        state = {"model": msd, "optim": osd}
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(held, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"], options=_options(parts))
    else:
        state = torch.load(folder / STATE, map_location=d.device, weights_only=True)
        raw.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optim"])
    rngs = meta["rng"]
    set_rng_state(rngs[d.rank] if len(rngs) == d.world else rngs[0])
    return meta


def _options(parts: nn.Module | None) -> object:
    """Pipeline stages: the optimizer's state flattened to one entry per parameter name
    (its moments and its group's settings), so another cut, whose ranks hold other groups,
    reads its own share (torch.distributed.checkpoint's resharding by name)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(flatten_optimizer_state_dict=parts is not None)


def _differences(have: dict[str, list[int]], want: dict[str, list[int]]) -> str:
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shapes = sorted(k for k in set(have) & set(want) if list(have[k]) != list(want[k]))
    parts = []
    if missing:
        parts.append(f"{len(missing)} parameter(s) of this spec missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unknown (e.g. {extra[0]})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape (e.g. {k}: {have[k]} vs {want[k]})")
    return ", ".join(parts)


def _barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()
