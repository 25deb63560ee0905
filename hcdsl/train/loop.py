"""The trainer: AdamW (hcdsl.param_groups: the HC paper's weight-decay recipe), warm-up +
cosine or WSD, gradient clipping and accumulation, optional bf16 autocast and torch.compile,
a fixed validation set, probes, checkpoints with exact resume; one process, DDP or FSDP2.

The loss is the next-token cross-entropy of the spec's model on (B, seq + 1) windows: inputs
x[:, :-1], targets x[:, 1:], averaged over the global batch (each micro-step's mean / accum,
gradients averaged over ranks by DDP/FSDP), so any split of the same global batch over
ranks and micro-steps gives the same loss and gradients up to float rounding.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import hcdsl
from hcdsl.nn.modules import attr_name
from hcdsl.nn.groups import param_groups
from hcdsl.proofs.run_folder import step_name, step_of
from hcdsl.train import checkpoint, lifeline, parallel, probes, resume, signals
from hcdsl.train.pipelined import Pipelined, replicas
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import Stopped, TrainError, describe_os_error
from hcdsl.train.lock import FolderLock
from hcdsl.train.logs import METRICS, PROBES, RunLog, read_jsonl, truncate
from hcdsl.train.prepare import Prepared, prepare, spec_errors
from hcdsl.train.provenance import provenance
from hcdsl.train.schedule import multiplier


def train(cfg: TrainConfig, lock_wait: float = 0.0) -> dict:
    """Run (or continue) one training run; returns the summary also written to summary.json.
    The run folder is locked for the life of the run (lock.py; `lock_wait`: seconds to wait
    for another holder to end). SIGINT/SIGTERM stop it with a Stopped error saying where
    it stands; a file that cannot be written (a full disk, a read-only folder) and a rank
    that does not answer within cfg.timeout are TrainErrors too."""
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a rank of torchrun: dies with its agent
        lifeline.die_with_parent()
    ok, lock = False, None
    with signals.stoppable():
        try:
            d = parallel.setup(cfg.device, cfg.fsdp, cfg.timeout)
            try:
                prep = prepare(cfg, replicas(cfg, d.world))  # data ranks
                lock = _lock(cfg, d, lock_wait)
                out = Trainer(cfg, d, prep).run()
                ok = True
                return out
            except RuntimeError as exc:
                if d.world > 1 and _collective_failure(exc):
                    raise TrainError(
                        f"rank {d.rank}: another rank did not answer within --timeout "
                        f"{cfg.timeout:g} s (stalled or dead): {_first_line(exc)}; "
                        f"{where(cfg.out)}; continue with --resume") from None
                raise
            finally:
                parallel.teardown(d, clean=ok)
        except signals.Interrupted as exc:
            raise Stopped(f"{cfg.out.name}: stopped by {exc.name}; {where(cfg.out)}; "
                          "continue with --resume (same options)", 128 + exc.signum) from None
        except OSError as exc:
            raise TrainError(f"{describe_os_error(exc)}; {where(cfg.out)}") from None
        finally:
            torch.set_num_threads(threads)
            if lock is not None:
                lock.release()


def _lock(cfg: TrainConfig, d: parallel.Dist, wait: float) -> FolderLock | None:
    """Rank 0 locks the run folder; every rank learns whether it could."""
    lock = FolderLock(cfg.out, "run.lock", "training run", wait) if d.main else None
    error: TrainError | None = None
    try:
        if lock is not None:
            lock.acquire()
    except TrainError as exc:
        error = exc
    if not parallel.agree(d, error is None):
        raise error or TrainError(f"rank 0 could not lock {cfg.out}: see its message")
    return lock


def where(run: Path) -> str:
    """Where a run stands, from its folder: its newest checkpoint."""
    last = checkpoint.latest(run)
    if last is None:
        return "no checkpoint was written yet"
    return f"the last checkpoint is {last} (step {step_of(last)})"


def _collective_failure(exc: RuntimeError) -> bool:
    return bool(re.search(r"[Tt]imed? ?out|[Tt]imeout|Connection (closed|reset)|peer",
                          str(exc)))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _mean_se(count: float, total: float, squares: float) -> tuple[float, float]:
    """The mean of per-window losses and its standard error, from their sums."""
    mean = total / count
    var = max(squares - count * mean * mean, 0.0) / (count - 1) if count > 1 else 0.0
    return mean, math.sqrt(var / count)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where asked, or (auto) on a GPU that supports it; never assumed on a CPU."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class Trainer:
    def __init__(self, cfg: TrainConfig, d: parallel.Dist, prep: Prepared) -> None:
        self.cfg, self.d = cfg, d
        self.prep = prep
        self.plan = resume.plan(cfg, prep)  # the folder is locked: its state holds still
        parallel.barrier(d)  # every rank has read the run folder before rank 0 writes to it
        if cfg.recompute == "layers" and cfg.fsdp:  # FSDP2's hooks run ops inside a segment
            raise TrainError("recompute=layers does not work with fsdp yet (FSDP2's hooks "
                             "run other ops in forward than in the recomputation): use "
                             "recompute=off or auto (off under fsdp), or DDP")
        with spec_errors(prep.name):
            self.raw = hcdsl.compile(prep.source, seed=cfg.seed, device=d.device,
                                     check_memory=cfg.check_memory,
                                     recompute=cfg.recompute != "off" and not cfg.fsdp
                                     and cfg.recompute)
        self.signature = checkpoint.signature(self.raw)
        torch.manual_seed(cfg.seed)
        layers = [attr_name(v) for v in probes.layer_ids(self.raw)]
        self.pp = Pipelined(cfg, d, self.raw) if cfg.pp > 1 else None  # --pp: this rank's
        if self.pp is not None:  # stages, their share of the optimizer groups
            self.model: nn.Module = self.pp.module
            groups = self.pp.param_groups(param_groups(self.raw, cfg.weight_decay))
        else:
            self.model = parallel.wrap(self.raw, d, cfg.fsdp, layers)
            groups = param_groups(self.model, cfg.weight_decay)
        self.parts = self.pp.parts() if self.pp is not None else None
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, multiplier(
            cfg.schedule, cfg.steps, cfg.warmup, cfg.min_lr_ratio, cfg.decay_fraction))
        self.step = 0
        self.last_ckpt: tuple[int, str] | None = None
        start = self._resume_point()
        if start is not None:
            meta = checkpoint.load(start, self.model, self.raw, self.opt, d, cfg.fsdp,
                                   self.parts)
            if meta["data_position"] != self.prep.batches.position(meta["step"]):
                raise TrainError(f"{start}: its global batch was "
                                 f"{meta['global_batch']}, this run's is "
                                 f"{self.prep.batches.global_batch}: resume with the same")
            sha = meta.get("data_sha256")
            if sha is not None and sha != self.prep.data.info["sha256"]:
                raise TrainError(f"{start} was trained on other data (SHA-256 {sha[:12]}..., "
                                 f"this run's {self.prep.data.info['sha256'][:12]}...): "
                                 "resume with the data it was trained on")
            state = dict(meta["scheduler"])
            if self.pp is not None:  # another cut's ranks hold other groups (one schedule)
                for key in ("base_lrs", "_last_lr"):
                    state[key] = [state[key][0]] * len(self.opt.param_groups)
            self.sched.load_state_dict(state)
            self.step = meta["step"]
            self.last_ckpt = (self.step, str(start))
        self.forward: nn.Module = torch.compile(self.model) if cfg.compile else self.model
        self.amp = autocast_dtype(cfg.precision, d.device)
        self.tokens_per_step = self.prep.batches.global_batch * cfg.seq
        self.label = cfg.out.name

    def _resume_point(self) -> Path | None:
        """The newest checkpoint of the plan this model can continue from; a damaged one is
        skipped with a warning (--resume), or an error (--resume-from a checkpoint)."""
        plan, skipped = self.plan, []
        for note in plan.warnings:
            self._warn(note)
        for folder in plan.candidates:
            why = checkpoint.problem(folder, self.signature, self.cfg.fsdp,
                                     self.pp is not None)
            if why is None:
                if skipped:
                    self._warn(f"{len(skipped)} newer checkpoint(s) skipped: "
                               f"{'; '.join(skipped)}; continuing from {folder}")
                return folder
            if not plan.fallback:
                raise TrainError(f"--resume-from {folder}: {why}; resume it with its own "
                                 "spec and settings, or start a new run")
            skipped.append(f"{folder.name}: {why}")
        if plan.candidates:
            raise TrainError(f"{self.cfg.out}: none of its {len(plan.candidates)} "
                             f"checkpoint(s) can be resumed from ({'; '.join(skipped)}); "
                             "choose another --out to start again")
        return None

    def _warn(self, text: str) -> None:
        if self.d.main:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    # -- one optimizer step ------------------------------------------------------------------
    def train_step(self) -> tuple[float, float]:
        if self.pp is not None:
            loss, norm = self.pp.train_step(self.pp.batch(self.prep.batches, self.step))
        else:
            loss, norm = self._forward_backward()
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self.opt.zero_grad(set_to_none=True)
            where = (f"the last good checkpoint is {self.last_ckpt[1]} (step {self.last_ckpt[0]})"
                     if self.last_ckpt else "no checkpoint was written yet")
            what = "loss" if not math.isfinite(loss) else "gradient norm"
            raise TrainError(f"{self.label}: the {what} is {loss if what == 'loss' else norm} "
                             f"at step {self.step + 1}: stopped before applying it; {where}")
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return loss, norm

    def _forward_backward(self) -> tuple[float, float]:
        """One process, DDP or FSDP2: (loss, gradient norm), the gradients clipped."""
        cfg, d = self.cfg, self.d
        self.model.train()
        total = torch.zeros((), device=d.device)
        for a in range(cfg.accum):
            x = self.prep.batches.micro(self.step, d.rank, a).to(d.device)
            with parallel.grad_sync(self.model, a == cfg.accum - 1):
                with self._autocast():  # forward only: backward runs outside autocast
                    logits = self.forward(x[:, :-1])
                    loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
                (loss / cfg.accum).backward()
            total += loss.detach() / cfg.accum
        loss = float(parallel.all_sum(total, d)) / d.world
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                              cfg.clip if cfg.clip > 0 else math.inf)
        norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
        return loss, norm

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.d.device.type, dtype=self.amp or torch.float32,
                              enabled=self.amp is not None)

    # -- evaluation, probes, checkpoints -----------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean next-token loss, its standard error) over the fixed validation set, split
        evenly over the ranks. Every window has `seq` targets, so the mean over tokens is the
        mean of the per-window means; the standard error is their standard deviation over
        sqrt(V) (windows taken as independent draws from the split)."""
        cfg, d = self.cfg, self.d
        self.model.eval()
        val = self.prep.val
        if self.pp is not None:  # the pipeline's replicas share the set
            share = val.shape[0] // self.pp.dp
            r = self.pp.data_rank
            count, total, squares = self.pp.evaluate(val[r * share:(r + 1) * share]).tolist()
            return _mean_se(count, total, squares)
        share = val.shape[0] // d.world
        mine = val[d.rank * share:(d.rank + 1) * share]
        sums = torch.zeros(3, device=d.device, dtype=torch.float64)  # windows, sum, sum of sq
        for i in range(0, share, cfg.batch):
            x = mine[i:i + cfg.batch].to(d.device)
            with self._autocast():
                logits = self.forward(x[:, :-1])
            per_window = F.cross_entropy(logits.float().transpose(1, 2), x[:, 1:],
                                         reduction="none").double().mean(dim=1)
            sums += torch.stack([torch.tensor(float(len(per_window)), device=d.device,
                                              dtype=torch.float64),
                                 per_window.sum(), (per_window ** 2).sum()])
        count, total, squares = parallel.all_sum(sums, d).tolist()
        return _mean_se(count, total, squares)

    def probe(self) -> None:
        state = (self.pp.full_state_dict(self.raw) if self.pp is not None  # collectives
                 else parallel.full_state_dict(self.model, self.raw, self.cfg.fsdp))
        if self.d.main:
            tokens = self.prep.val[:self.cfg.probe_sequences, :-1]
            t0 = time.perf_counter()
            row = probes.probe(self.prep.source, state, tokens, seed=self.cfg.seed)
            self.log.probe({"step": self.step, **row,
                            "seconds": round(time.perf_counter() - t0, 3)})

    def weights_finite(self) -> bool:
        """Every weight of every rank is finite (a collective)."""
        bad = sum(not bool(torch.isfinite(getattr(p, "to_local", lambda: p)()).all())
                  for p in self.model.parameters())
        flag = torch.tensor(float(bad), device=self.d.device)
        return float(parallel.all_sum(flag, self.d)) == 0

    def save(self) -> None:
        if not self.weights_finite():
            where = (f"the last good checkpoint is {self.last_ckpt[1]} (step "
                     f"{self.last_ckpt[0]})" if self.last_ckpt else "no checkpoint was "
                     "written before")
            raise TrainError(f"{self.label}: the weights are not finite after step "
                             f"{self.step} (is the learning rate too large?): not "
                             f"checkpointed; {where}")
        meta = {"step": self.step, "data_position": self.prep.batches.position(self.step),
                "global_batch": self.prep.batches.global_batch,
                "scheduler": self.sched.state_dict(), "signature": self.signature,
                "model": self.prep.stats.name, "spec": self.prep.text,
                "config": self.cfg.model_dump(mode="json"),
                "data_sha256": self.prep.data.info["sha256"]}
        folder = self.cfg.out / "checkpoints" / step_name(self.step)
        with signals.held():  # a signal now waits until the checkpoint is complete
            path = checkpoint.save(folder, meta, self.model, self.raw, self.opt, self.d,
                                   self.cfg.fsdp, self.cfg.keep_checkpoints, self.parts)
        self.last_ckpt = (self.step, str(path))

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        cfg, d = self.cfg, self.d
        start = self.step
        if d.main:
            resume.write(cfg, self.prep, self.plan.rewrite)
            truncate(cfg.out / METRICS, start)
            truncate(cfg.out / PROBES, start)
        self.log = RunLog(cfg.out, cfg.steps, start, self.label, d.main, cfg.progress,
                          cfg.tensorboard)
        wall0, train_time, timed_steps = time.perf_counter(), 0.0, 0
        try:
            if start == 0:
                self.probe()
            end = min(cfg.steps, cfg.stop_at or cfg.steps)
            while self.step < end:
                t0 = time.perf_counter()
                loss, norm = self.train_step()
                dt = time.perf_counter() - t0
                if self.step > start:  # the first step of a session warms up: not timed
                    train_time, timed_steps = train_time + dt, timed_steps + 1
                self.step += 1
                row = {"step": self.step, "loss": loss, "lr": self.sched.get_last_lr()[0],
                       "grad_norm": norm, "tokens": self.step * self.tokens_per_step,
                       "tokens_per_s": self.tokens_per_step / dt, "time": round(dt, 4)}
                last = self.step == cfg.steps
                if last or (cfg.eval_every and self.step % cfg.eval_every == 0):
                    row["val_loss"], row["val_se"] = self.evaluate()
                self.log.step(row)
                if last or (cfg.probe_every and self.step % cfg.probe_every == 0):
                    self.probe()
                if last or self.step == end or (cfg.ckpt_every
                                                 and self.step % cfg.ckpt_every == 0):
                    self.save()
        finally:
            self.log.close()
        if self.step < cfg.steps:
            self.log.message(f"{self.label}: stopped after step {self.step} (--stop-at); "
                             f"continue with --resume")
        summary = self.summary(time.perf_counter() - wall0,
                               train_time / timed_steps if timed_steps else None)
        if d.main:
            resume.write_atomic(cfg.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary

    def summary(self, wall: float, step_time: float | None) -> dict:
        if self.d.device.type == "cuda":
            peak, kind = torch.cuda.max_memory_allocated(self.d.device) / 2**20, "cuda allocated"
        else:
            peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS"
        rows = read_jsonl(self.cfg.out / METRICS) if self.d.main else []
        evals = [r for r in rows if "val_loss" in r]
        st = self.prep.stats
        return {"label": self.label, "model": st.name, "family": st.family,
                "params": st.params, "seed": self.cfg.seed, "steps": self.step,
                "done": self.step >= self.cfg.steps, "world": self.d.world,
                "global_batch": self.prep.batches.global_batch, "seq": self.cfg.seq,
                "tokens": self.step * self.tokens_per_step,
                "final_val_loss": evals[-1]["val_loss"] if evals else None,
                "final_val_se": evals[-1].get("val_se") if evals else None,
                "val_windows": int(self.prep.val.shape[0]),
                "final_loss": rows[-1]["loss"] if rows else None,
                "tokens_per_s": self.tokens_per_step / step_time if step_time else None,
                "wall_seconds": round(wall, 2), "peak_memory_mb": round(peak, 1),
                "peak_memory_kind": kind, "device": str(self.d.device),
                "precision": str(self.amp or torch.float32).replace("torch.", ""),
                **provenance()}
