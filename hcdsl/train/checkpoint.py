"""Checkpoints for exact resume: after stop + resume, the same losses as without stopping.

A checkpoint is a folder `checkpoints/step_NNNNNN/` holding
- meta.pt: step, data position, global batch, scheduler, every rank's RNG states (Python,
  NumPy, torch CPU and CUDA), the model's parameter signature and the spec text;
- state.pt (one process or DDP): the model's and the optimizer's state_dicts; or, with
  FSDP2, the sharded model and optimizer written by torch.distributed.checkpoint (DCP).
It is written to `step_NNNNNN.tmp` and renamed when complete, so a run killed while saving
keeps its previous checkpoint; only the newest `keep` are kept.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from hcdsl.train.errors import TrainError
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
    done = sorted(p for p in (run / "checkpoints").glob("step_*")
                  if p.is_dir() and not p.name.endswith(".tmp") and (p / "meta.pt").exists())
    return done[-1] if done else None


def save(folder: Path, meta: dict, model: nn.Module, raw: nn.Module,
         optimizer: torch.optim.Optimizer, d: Dist, fsdp: bool, keep: int) -> Path:
    """Every rank calls this (collectives inside); returns the checkpoint folder."""
    final = folder.parent / folder.name
    tmp = folder.parent / (folder.name + ".tmp")
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(d)
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        msd, osd = get_state_dict(model, optimizer)
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(tmp))
    elif d.main:
        torch.save({"model": raw.state_dict(), "optim": optimizer.state_dict()},
                   tmp / "state.pt")
    rngs = [None] * d.world
    if d.world > 1:
        dist.all_gather_object(rngs, rng_state())
    else:
        rngs = [rng_state()]
    if d.main:
        torch.save({**meta, "rng": rngs, "fsdp": fsdp}, tmp / "meta.pt")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        old = sorted(p for p in final.parent.glob("step_*") if not p.name.endswith(".tmp"))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    _barrier(d)
    return final


def load(folder: Path, model: nn.Module, raw: nn.Module, optimizer: torch.optim.Optimizer,
         d: Dist, fsdp: bool, expect: dict[str, list[int]]) -> dict:
    """Restore model, optimizer and this rank's RNG; returns meta (step, scheduler, ...)."""
    try:
        meta = torch.load(folder / "meta.pt", map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"{folder}: not a checkpoint (no meta.pt)") from None
    mismatch = _differences(meta.get("signature", {}), expect)
    if mismatch:
        raise TrainError(f"{folder} was written for another spec (model "
                         f"'{meta.get('model', '?')}'): {mismatch}; resume it with its own "
                         "spec, or start a new run")
    if meta.get("fsdp", False) != fsdp:
        raise TrainError(f"{folder} was written {'with' if meta.get('fsdp') else 'without'} "
                         "--fsdp: resume it the same way")
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        msd, osd = get_state_dict(model, optimizer)
        state = {"model": msd, "optim": osd}
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optim"])
    else:
        state = torch.load(folder / "state.pt", map_location=d.device, weights_only=True)
        raw.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optim"])
    rngs = meta["rng"]
    set_rng_state(rngs[d.rank] if len(rngs) == d.world else rngs[0])
    return meta


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
