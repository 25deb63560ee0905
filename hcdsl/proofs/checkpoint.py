"""A spec with trained weights, for the "checkpoint" question: the reference model with the
checkpoint loaded strictly, and what the prover needs of it (identity.py): a digest of every
module's tensors, and the values of the static connection parameters."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hcdsl.backends import ReferenceModel
from hcdsl.errors import CompileError
from hcdsl.ir import nodes as n
from hcdsl.ir.graph import IR
from hcdsl.nn import coef, dense, template
from hcdsl.nn.assemble import assemble
from hcdsl.proofs.identity import Identity
from hcdsl.proofs.numeric import _stand_in
from hcdsl.proofs.run_folder import load_failure, looked_for, state_files, step_folders


def load_file(path: str | Path, what: str) -> object:
    """torch.load(path) with weights_only (a file cannot run code); CompileError, naming
    `what` the file should hold ("checkpoint", "tensor file"), when it is missing or
    unreadable. For a "checkpoint", a folder stands for its state.pt: a checkpoint folder's
    (`step_N/`), or a run folder's newest checkpoint that loads (by step number,
    hcdsl/proofs/run_folder.py); a damaged newer one is skipped with a warning naming it."""
    path = Path(path)
    if what != "checkpoint" or not path.is_dir():
        return _load_one(path, what)
    files = state_files(path)
    if not files:
        sharded = any((p / ".metadata").is_file() for p in [path, *step_folders(path)])
        raise CompileError(f"{path} is a folder without a {what}: {looked_for(path)}"
                           + ("; its checkpoints are sharded (written with --fsdp), which "
                              "this command does not read" if sharded else ""))
    damaged: list[str] = []
    for file in files:
        try:
            state = _load_one(file, what)
        except CompileError as exc:
            damaged.append(str(exc))
            continue
        if damaged:
            warnings.warn(f"{path}: skipped {len(damaged)} damaged newer checkpoint(s) "
                          f"({'; '.join(damaged)}); using {file}", UserWarning, stacklevel=2)
        return state
    raise CompileError(f"{path}: none of its {len(files)} checkpoint(s) loads: "
                       + "; ".join(damaged))


def _load_one(path: Path, what: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CompileError(f"no such {what}: {path}") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise CompileError(f"{path} is not a {what} torch.load can read safely "
                           f"({load_failure(exc)})") from None


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a file (torch.save, weights_only), a checkpoint folder or a run
    folder of `hcdsl train` (its newest checkpoint that loads); a training checkpoint's
    "model" entry is accepted too. CompileError when it holds none."""
    state = load_file(path, "checkpoint")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CompileError(f"{path} holds no state_dict (a mapping of names to tensors)")
    return state


def loaded(raw: IR, canonical: IR, path: str | Path | Mapping[str, torch.Tensor],
           name: str) -> ReferenceModel:
    """The reference model of `canonical` with every module of the spec (built from its IR
    before passes, so a checkpoint of any pass setting fits) loaded strictly from path (or
    from a state_dict in memory: the trainer's probes pass theirs so)."""
    externs = {raw.payload(v).kind for v in raw.g.nodes
               if isinstance(raw.payload(v), n.Layer) and raw.payload(v).extern}
    parts = assemble(raw, raw, {k: _stand_in for k in externs}, 0, None)
    state = dict(path) if isinstance(path, Mapping) else read_state(path)
    missing, unexpected = _mismatch(parts.state_dict(), state)
    if missing or unexpected:
        where = "the given weights" if isinstance(path, Mapping) else path
        raise CompileError(f"{where} does not belong to {name}: "
                           + "; ".join(filter(None, [
                               f"missing {', '.join(missing[:5])}" if missing else "",
                               f"unexpected {', '.join(unexpected[:5])}" if unexpected else ""])))
    parts.double().load_state_dict(state, strict=True)  # float64 first: no weight rounded
    return ReferenceModel(canonical, parts).double().train(False)


def _mismatch(mine: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]
              ) -> tuple[list[str], list[str]]:
    missing = sorted(k for k in mine if k not in theirs)
    unexpected = sorted(k for k in theirs if k not in mine)
    missing += sorted(f"{k} (shape {tuple(theirs[k].shape)}, expected {tuple(v.shape)})"
                      for k, v in mine.items() if k in theirs and theirs[k].shape != v.shape)
    return missing, unexpected


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().double().contiguous().numpy().tobytes()).hexdigest()[:16]


def identity_of(model: ReferenceModel) -> Identity:
    """The checkpoint question's identity: digests of every module's tensors, and values."""
    digests: dict[str, dict[str, str]] = {}
    values: dict[str, dict[str, Any]] = {}
    for attr, module in model.named_children():
        digests[attr] = {k: _digest(t) for k, t in module.state_dict().items()}
        values[attr] = _values(module)
    return Identity("checkpoint", digests=digests, values=values)


def _values(module: torch.nn.Module) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(module, coef.HyperCoef):
        out["static_gain"] = module.static_gain.double().tolist()
        out["static_mix"] = module.static_mix.double().tolist()
    elif isinstance(module, dense.DenseCoef) and module.spec.static is not None:
        out["static"] = module.static.double().tolist()
    elif isinstance(module, template.TemplateCoef):
        with torch.no_grad():
            for name, bound in module.bounds.items():
                raw = getattr(module, f"raw_{name}").double()
                out[f"value:{name}"] = float(template.BOUNDS[bound][0](raw))
    elif isinstance(module, template.LowRank):
        out["zero"] = bool((module.up == 0).all())
    elif isinstance(module, template.ChannelGain):
        with torch.no_grad():
            for name, bound in module.bounds.items():  # the vectors it holds
                g = template.BOUNDS[bound][0](getattr(module, f"raw_{name}").double())
                out[f"uniform:{name}"] = float(g[0]) if bool((g == g[0]).all()) else None
    norm = getattr(module, "norm", module)  # NormStreams holds its norm
    weight = getattr(norm, "weight", None)
    bias = getattr(norm, "bias", None)
    if isinstance(norm, (torch.nn.LayerNorm, torch.nn.RMSNorm)) and weight is not None:
        w = weight.detach().double()
        if bool((w == w.flatten()[0]).all()) and (bias is None or bool((bias == 0).all())):
            g = float(w.flatten()[0])
            out["uniform"] = g if math.isfinite(g) else None
    return out
