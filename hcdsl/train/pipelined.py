"""`hcdsl train --pp N`: the trainer's step, validation and state on pipeline stages
(hcdsl.pipeline, on torch.distributed.pipelining).

The torchrun ranks form a grid: rank = replica x N + stage rank. The N ranks of a row are
one pipeline (their process group carries what crosses the cuts); the ranks / N rows are
data-parallel replicas of it (each stage wrapped in DDP over its column). A step feeds each
pipeline its replica's --accum micro-batches of --batch sequences (hcdsl/train/data.py's
slices for the replica's data rank, in order) as the schedule's micro-batches; the engine
scales gradients by 1 / micro-batches and DDP averages over replicas, so a step's
gradients are the global batch's mean, as without --pp. The loss comes from the last
stage and is averaged over the replicas; the gradient norm sums the squares over the
stages; validation runs the same schedule forward only, with per-window losses.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

import hcdsl
from hcdsl.errors import CompileError
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError
from hcdsl.train.parallel import Dist


def groups(d: Dist, pp: int) -> tuple[dist.ProcessGroup | None, dist.ProcessGroup | None]:
    """(this rank's pipeline group, its data-parallel group or None). Every rank creates
    every group, in the same order (torch's rule for new_group)."""
    dp = d.world // pp
    pipe_group = dp_group = None
    for r in range(dp):
        g = dist.new_group([r * pp + p for p in range(pp)])
        if d.rank // pp == r:
            pipe_group = g
    if dp > 1:
        for p in range(pp):
            g = dist.new_group([r * pp + p for r in range(dp)])
            if d.rank % pp == p:
                dp_group = g
    return pipe_group, dp_group


def replicas(cfg: TrainConfig, world: int) -> int:
    """The data-parallel replicas of a --pp run (TrainError when the ranks do not fit)."""
    if cfg.pp == 1:
        return world
    if world == 1:
        raise TrainError(f"--pp {cfg.pp} runs a pipeline over {cfg.pp} processes: start it "
                         f"with torchrun (torchrun --nproc_per_node {cfg.pp} -m hcdsl train "
                         f"SPEC --pp {cfg.pp})")
    if world % cfg.pp:
        raise TrainError(f"--pp {cfg.pp} on {world} ranks: the ranks must be a multiple of "
                         f"--pp (replicas x {cfg.pp})")
    return world // cfg.pp


class Pipelined:
    """This rank's stages of the model, their optimizer's parameters, and the step."""

    def __init__(self, cfg: TrainConfig, d: Dist, raw: nn.Module) -> None:
        self.cfg, self.d = cfg, d
        self.dp = replicas(cfg, d.world)
        self.data_rank = d.rank // cfg.pp
        pipe_group, self.dp_group = groups(d, cfg.pp)
        try:
            self.pipe = hcdsl.pipeline(
                raw, stages=cfg.pipeline_stages, split=cfg.pipeline_split,
                schedule=cfg.pp_schedule, microbatches=cfg.accum, group=pipe_group,
                dp_group=self.dp_group, device=d.device, seq=cfg.seq)
        except CompileError as exc:
            flag = "--pp-split" if cfg.pp_split else "--pp"
            raise TrainError(f"{flag} {cfg.pp_split or cfg.pp}: {exc}") from None
        self.module = nn.ModuleList(self.pipe.modules)  # what weights_finite and DDP see
        self.owned = {id(p) for p in self.pipe.parameters()}

    def param_groups(self, groups_of_whole: list[dict]) -> list[dict]:
        """The whole model's optimizer groups, restricted to this rank's parameters."""
        out = []
        for g in groups_of_whole:
            ps = [p for p in g["params"] if id(p) in self.owned]
            if ps:
                out.append({**g, "params": ps})
        return out

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.pipe.parameters() if p.requires_grad]

    def parts(self) -> nn.Module:
        """This rank's modules under the whole model's names (a stage holds the model's own
        modules as its children): what torch.distributed.checkpoint saves and loads."""
        held = nn.Module()
        for m in self.pipe.modules:
            for name, child in getattr(m, "module", m).named_children():
                held.add_module(name, child)
        return held

    # -- a step --------------------------------------------------------------------------
    def batch(self, batches: object, step: int) -> torch.Tensor:
        """This replica's micro-batches of a step, concatenated (the schedule splits them)."""
        return torch.cat([batches.micro(step, self.data_rank, a)  # type: ignore[attr-defined]
                          for a in range(self.cfg.accum)]).to(self.d.device)

    def train_step(self, x: torch.Tensor) -> tuple[float, float]:
        """Forward and backward of the step's batch: (global mean loss, gradient norm),
        the gradients clipped to cfg.clip (as clip_grad_norm_ over the whole model)."""
        self.pipe.train()
        loss = self.pipe.step(x[:, :-1], x[:, 1:])
        total = torch.zeros(2, dtype=torch.float64, device=self.d.device)
        if loss is not None:
            total[0] = loss.double()
        total[1] = sum((p.grad.double().square().sum() for p in self.parameters()
                        if p.grad is not None), torch.zeros((), dtype=torch.float64))
        dist.all_reduce(total)
        mean, norm = float(total[0]) / self.dp, math.sqrt(float(total[1]) / self.dp)
        if self.cfg.clip > 0 and math.isfinite(norm):
            coef = min(1.0, self.cfg.clip / (norm + 1e-6))
            for p in self.parameters():
                if p.grad is not None:
                    p.grad.mul_(coef)
        return mean, norm

    @torch.no_grad()
    def evaluate(self, mine: torch.Tensor) -> torch.Tensor:
        """(windows, sum, sum of squares) of the per-window losses of this replica's share
        of the validation set, summed over the ranks (every rank gets them). The schedule
        runs chunks of the training step's size; the last is padded and the padding not
        counted."""
        self.pipe.train(False)
        size = self.cfg.batch * self.cfg.accum
        sums = torch.zeros(3, device=self.d.device, dtype=torch.float64)
        for i in range(0, mine.shape[0], size):
            x = mine[i:i + size]
            real = x.shape[0]
            if real < size:
                x = torch.cat([x, x[-1:].expand(size - real, -1)])
            x = x.to(self.d.device)
            losses = self.pipe.forward_only(x[:, :-1], x[:, 1:], per_window=True)
            if losses is not None:
                w = torch.cat(losses).double()[:real]
                sums += torch.stack([torch.tensor(float(real), dtype=torch.float64,
                                                  device=self.d.device),
                                     w.sum(), (w ** 2).sum()])
        dist.all_reduce(sums)  # each replica's last stage once: the whole set
        return sums

    def full_state_dict(self, raw: nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's weights on every rank (the stages' gathered; the modules no
        stage runs, frozen, from the model as built)."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in raw.state_dict().items()}
        gathered: list[dict | None] = [None] * self.d.world
        mine = {k: v.detach().to("cpu", copy=True) for k, v in self.pipe.state_dict().items()}
        dist.all_gather_object(gathered, mine)
        for part in gathered:
            state.update(part or {})
        return state
