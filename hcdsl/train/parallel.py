"""One process or many, on PyTorch's own engine: torchrun sets WORLD_SIZE, RANK, LOCAL_RANK
and the rendezvous; this file joins the process group (gloo on CPU, NCCL on GPU) and wraps
the model in DistributedDataParallel or, with --fsdp, shards it with FSDP2 (`fully_shard`,
each layer first, then the root).

FSDP2 refuses 0-dim parameters (HC's scales s_α, s_β, mHC's α, learned scalars of a
user-defined connection). Those are re-registered through a parametrization that stores a
1-element vector and reads it back as a scalar: the model's code and numbers are unchanged,
only their state_dict names gain `parametrizations.NAME.original` (`plain_state_dict` maps
them back).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.utils import parametrize

from hcdsl.train.errors import TrainError


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    device: torch.device
    owned: bool = False  # this trainer created the process group (so it destroys it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: str, fsdp: bool = False, timeout: float = 600.0) -> Dist:
    """Pick the device and, under torchrun, join the process group (also for one process
    with fsdp, since FSDP2 needs a group). `timeout`: seconds a collective waits for the
    other ranks before it fails (torch's default is 30 minutes)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise TrainError(f"--device {device}: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError(f"--device {device}: CUDA is not available on this machine")
        dev = torch.device("cuda", local if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    launched = "MASTER_ADDR" in os.environ  # torchrun (or a user) set up a rendezvous
    owned = (world > 1 or (fsdp and launched)) and not dist.is_initialized()
    if owned:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=timeout))
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Dist(rank, world, dev, owned)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def agree(d: Dist, ok: bool) -> bool:
    """True when every rank says ok (a collective; one process: ok itself)."""
    if d.world == 1:
        return ok
    flag = torch.tensor(1.0 if ok else 0.0, device=d.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() == 1.0)


def teardown(d: Dist, clean: bool = True) -> None:
    """Leave the process group we joined; clean: wait for the other ranks first."""
    if d.owned and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


class AsScalar(nn.Module):
    """A parametrization: stored as shape (1,), read as shape ()."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(())

    def right_inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(1)


def wrap(model: nn.Module, d: Dist, fsdp: bool, layers: list[str]) -> nn.Module:
    """DDP when there are several ranks; FSDP2 with fsdp (any number of ranks, from torchrun)."""
    if fsdp:
        if not dist.is_initialized():
            raise TrainError("--fsdp shards over ranks: start it with torchrun "
                             "(torchrun --nproc_per_node N -m hcdsl train SPEC --fsdp)")
        from torch.distributed.fsdp import fully_shard

        for module in list(model.modules()):
            for name, p in list(module.named_parameters(recurse=False)):
                if p.dim() == 0:
                    parametrize.register_parametrization(module, name, AsScalar())
        for name in layers:
            fully_shard(getattr(model, name))
        fully_shard(model)
        return model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[d.device.index]
                                       if d.device.type == "cuda" else None)
    return model


@contextmanager
def grad_sync(model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on micro-steps before the last one of an accumulation."""
    if sync:
        yield
        return
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)
        return
    with (model.no_sync() if hasattr(model, "no_sync") else nullcontext()):
        yield


def all_sum(x: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        dist.all_reduce(x)
    return x


def full_state_dict(model: nn.Module, raw: nn.Module, fsdp: bool) -> dict[str, torch.Tensor]:
    """The whole model's weights on the CPU, under the compiled module's own names (a
    collective under FSDP: every rank calls it; rank 0 gets the tensors)."""
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions, get_model_state_dict,
        )

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                 cpu_offload=True))
        return plain_state_dict(sd)
    return {k: v.detach().to("cpu", copy=True) for k, v in raw.state_dict().items()}


def plain_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Undo AsScalar's renaming: `a.parametrizations.s.original` (1,) -> `a.s` ()."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if len(parts) >= 3 and parts[-3] == "parametrizations" and parts[-1] == "original":
            out[".".join(parts[:-3] + [parts[-2]])] = v.reshape(())
        else:
            out[k] = v
    return out
