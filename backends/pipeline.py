"""`hcdsl.pipeline`: a compiled model's stages (backends/stages.py) on PyTorch's own pipeline
engine, `torch.distributed.pipelining` (PipelineStage and its schedules GPipe, 1F1B and
interleaved 1F1B). Nothing here communicates itself: the engine sends what crosses each cut
(plain tensors, a tuple when several) between the ranks of a process group, splits the
batch into micro-batches, runs the schedule and scales the gradients by 1/micro-batches,
so a step's gradients are those of the whole batch's mean loss.

    pipe = hcdsl.pipeline(model, stages=2, schedule="1f1b", microbatches=4)
    loss = pipe.step(tokens, targets)   # forward + backward; the loss on the last stage
    optimizer = torch.optim.AdamW(pipe.parameters())

Every rank compiles the whole model (the same seed: the same weights) and keeps its own
stages. GPipe and 1F1B run one stage per rank (stages = ranks of the group); interleaved
1F1B runs stages / ranks >= 2 stages per rank, rank r holding r, r + ranks, ... (torch's
loop order). Data parallelism composes: give the pipeline's group and a data-parallel group
(`dp_group`), and each stage module is wrapped in DistributedDataParallel over it, which the
engine drives (no gradient sync before a step's last micro-batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.pipelining import (PipelineStage, Schedule1F1B, ScheduleGPipe,
                                          ScheduleInterleaved1F1B)

from hcdsl.backends.stages import lower_stages
from hcdsl.errors import CompileError
from hcdsl.ir.stages import Plan, plan

SCHEDULES = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B,
             "interleaved": ScheduleInterleaved1F1B}


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The compiled model's loss (hcdsl.nn.io.finish): mean next-token cross-entropy,
    targets of -100 ignored."""
    return F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten().long(),
                           ignore_index=-100)


def per_window_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each sequence's mean next-token loss (validation's standard error needs them)."""
    return F.cross_entropy(logits.float().transpose(1, 2), targets.long(),
                           reduction="none").mean(dim=1)


@dataclass
class Pipeline:
    """This rank's stages of a model and the schedule that runs them."""

    plan: Plan
    modules: list[nn.Module]  # this rank's stage modules (DDP-wrapped with a dp group)
    indices: list[int]  # their stage numbers
    schedule: object  # a torch.distributed.pipelining schedule
    per_window: bool = False  # forward_only's losses: per sequence instead of the mean

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The schedule's loss function."""
        if self.per_window:
            return per_window_loss(logits, targets)
        return next_token_loss(logits, targets)

    @property
    def is_first(self) -> bool:
        return 0 in self.indices

    @property
    def is_last(self) -> bool:
        return len(self.plan.stages) - 1 in self.indices

    def parameters(self) -> Iterator[nn.Parameter]:
        for m in self.modules:
            yield from m.parameters()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """This rank's share of the model's state_dict, under the model's own names."""
        out: dict[str, torch.Tensor] = {}
        for m in self.modules:
            out.update(_plain(m).state_dict())
        return out

    def train(self, mode: bool = True) -> "Pipeline":
        for m in self.modules:
            m.train(mode)
        return self

    def step(self, tokens: torch.Tensor | None = None,
             targets: torch.Tensor | None = None) -> torch.Tensor | None:
        """One forward and backward of a batch: tokens on the first stage's rank, targets
        on the last's (other ranks may pass them too, or None). The mean loss over the
        micro-batches on the last stage's rank, else None. Gradients accumulate in the
        stages' parameters (zero them between steps, as usual)."""
        losses: list[torch.Tensor] = []
        args = (tokens,) if self.is_first else ()
        self.schedule.step(*args, target=targets if self.is_last else None,  # type: ignore
                           losses=losses if self.is_last else None)
        if not self.is_last:
            return None
        return torch.stack([x.detach() for x in losses]).mean()

    def forward_only(self, tokens: torch.Tensor | None = None,
                     targets: torch.Tensor | None = None,
                     per_window: bool = False) -> list[torch.Tensor] | None:
        """A batch forward only (validation): on the last stage's rank, each micro-batch's
        loss (its mean, or per_window: each sequence's), else None."""
        losses: list[torch.Tensor] = []
        args = (tokens,) if self.is_first else ()
        self.per_window = per_window
        try:
            with torch.no_grad():
                self.schedule.eval(*args,  # type: ignore[attr-defined]
                                   target=targets if self.is_last else None,
                                   losses=losses if self.is_last else None)
        finally:
            self.per_window = False
        return losses if self.is_last else None


def replicated(m: nn.Module, dp_group: dist.ProcessGroup, dev: torch.device) -> nn.Module:
    """The stage replicated over the data-parallel group: DistributedDataParallel, which
    the pipeline engine drives (no sync before a step's last micro-batch). Buckets are not
    rebuilt after the first step (find_unused_parameters): the engine runs one backward per
    micro-batch, and DDP's rebuild counts each parameter once per backward (torch 2.13:
    "rebuilt parameter indices size is not same as original model parameters size")."""
    return nn.parallel.DistributedDataParallel(
        m, process_group=dp_group, find_unused_parameters=True,
        device_ids=[dev.index] if dev.type == "cuda" else None)


def _plain(m: nn.Module) -> nn.Module:
    return getattr(m, "module", m) if isinstance(
        m, nn.parallel.DistributedDataParallel) else m


def check_schedule(schedule: str, stages: int, ranks: int, microbatches: int) -> None:
    """The schedule fits the stage count, the ranks and the micro-batches (CompileError)."""
    if schedule not in SCHEDULES:
        raise CompileError(f"schedule '{schedule}': choose gpipe, 1f1b or interleaved")
    if microbatches < 1:
        raise CompileError(f"microbatches={microbatches}: a whole number >= 1")
    if schedule == "interleaved":
        if stages % ranks or stages // ranks < 2:
            raise CompileError(
                f"the interleaved schedule runs several stages per rank: {stages} stages on "
                f"{ranks} ranks does not divide into >= 2 each (ask for stages = "
                f"{2 * ranks}, or schedule gpipe / 1f1b with stages = {ranks})")
        return
    if stages != ranks:
        raise CompileError(
            f"the {schedule} schedule runs one stage per rank: {stages} stages on {ranks} "
            f"ranks (ask for stages = {ranks}, or the interleaved schedule for more)")
    if schedule == "1f1b" and microbatches < stages:
        raise CompileError(f"1F1B needs at least as many micro-batches as stages: "
                           f"{microbatches} < {stages} (or use gpipe)")


def pipeline(model: nn.Module, stages: int | None = None, schedule: str = "gpipe",
             microbatches: int = 1, split: tuple[int, ...] | None = None,
             group: dist.ProcessGroup | None = None, dp_group: dist.ProcessGroup | None = None,
             device: torch.device | str | None = None, seq: int = 0) -> Pipeline:
    """This rank's stages of a compiled model (hcdsl.compile), cut where
    hcdsl/ir/stages.py says (`stages` balanced by FLOPs, or `split`: layers per stage),
    run by `schedule` over `microbatches` micro-batches on the ranks of `group` (default:
    the world). `dp_group`: the data-parallel replicas of this rank's stages (DDP).
    `seq`: the sequence length the balance counts attention over (0: ignored)."""
    if not dist.is_initialized():
        raise CompileError("hcdsl.pipeline runs on several processes: initialise "
                           "torch.distributed first (torchrun, or init_process_group)")
    ir = getattr(model, "hc_ir", None)
    if ir is None:
        raise CompileError("hcdsl.pipeline takes a model from hcdsl.compile (fx backend)")
    if split is not None and stages is not None and len(split) != stages:
        raise CompileError(f"split {split} gives {len(split)} stages, stages={stages}")
    ranks = dist.get_world_size(group)
    rank = dist.get_rank(group)
    cut = plan(ir, stages if split is None else None, split, seq)
    count = len(cut.stages)
    check_schedule(schedule, count, ranks, microbatches)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    every = lower_stages(model, cut)
    indices = list(range(rank, count, ranks))
    modules: list[nn.Module] = []
    engine_stages = []
    for k in indices:
        m = every[k].to(dev)
        if dp_group is not None and dist.get_world_size(dp_group) > 1:
            m = replicated(m, dp_group, dev)
        modules.append(m)
        engine_stages.append(PipelineStage(m, k, count, dev, group=group))
    kind = SCHEDULES[schedule]
    pipe = Pipeline(cut, modules, indices, None)
    first = engine_stages if schedule == "interleaved" else engine_stages[0]
    pipe.schedule = kind(first, n_microbatches=microbatches, loss_fn=pipe.loss)
    return pipe
