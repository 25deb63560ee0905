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
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

import hcdsl
from hcdsl.nn.modules import attr_name
from hcdsl.nn.groups import param_groups
from hcdsl.train import checkpoint, parallel, probes
from hcdsl.train.config import TrainConfig
from hcdsl.train.errors import TrainError
from hcdsl.train.logs import METRICS, PROBES, RunLog, read_jsonl, truncate
from hcdsl.train.prepare import Prepared, prepare, spec_errors, write_run
from hcdsl.train.provenance import provenance
from hcdsl.train.schedule import multiplier


def train(cfg: TrainConfig) -> dict:
    """Run (or continue) one training run; returns the summary also written to summary.json."""
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    d = parallel.setup(cfg.device, cfg.fsdp)
    ok = False
    try:
        out = Trainer(cfg, d).run()
        ok = True
        return out
    finally:
        torch.set_num_threads(threads)
        parallel.teardown(d, clean=ok)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where asked, or (auto) on a GPU that supports it; never assumed on a CPU."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class Trainer:
    def __init__(self, cfg: TrainConfig, d: parallel.Dist) -> None:
        self.cfg, self.d = cfg, d
        self.prep: Prepared = prepare(cfg, d.world)
        parallel.barrier(d)  # every rank has read the run folder before rank 0 writes to it
        src = self.prep.source
        with spec_errors(str(src) if not isinstance(src, str) else "<spec text>"):
            self.raw = hcdsl.compile(self.prep.source, seed=cfg.seed, device=d.device,
                                     check_memory=cfg.check_memory)
        self.signature = checkpoint.signature(self.raw)
        torch.manual_seed(cfg.seed)
        layers = [attr_name(v) for v in probes.layer_ids(self.raw)]
        self.model = parallel.wrap(self.raw, d, cfg.fsdp, layers)
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg.weight_decay), lr=cfg.lr,
                                     betas=(cfg.beta1, cfg.beta2))
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, multiplier(
            cfg.schedule, cfg.steps, cfg.warmup, cfg.min_lr_ratio, cfg.decay_fraction))
        self.step = 0
        self.last_ckpt: tuple[int, str] | None = None
        if self.prep.resume is not None:
            meta = checkpoint.load(self.prep.resume, self.model, self.raw, self.opt, d,
                                   cfg.fsdp, self.signature)
            if meta["data_position"] != self.prep.batches.position(meta["step"]):
                raise TrainError(f"{self.prep.resume}: its global batch was "
                                 f"{meta['global_batch']}, this run's is "
                                 f"{self.prep.batches.global_batch}: resume with the same")
            self.sched.load_state_dict(meta["scheduler"])
            self.step = meta["step"]
            self.last_ckpt = (self.step, str(self.prep.resume))
        self.forward: nn.Module = torch.compile(self.model) if cfg.compile else self.model
        self.amp = autocast_dtype(cfg.precision, d.device)
        self.tokens_per_step = self.prep.batches.global_batch * cfg.seq
        self.label = cfg.out.name

    # -- one optimizer step ------------------------------------------------------------------
    def train_step(self) -> tuple[float, float]:
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
        mean = total / count
        var = max(squares - count * mean * mean, 0.0) / (count - 1) if count > 1 else 0.0
        return mean, math.sqrt(var / count)

    def probe(self) -> None:
        state = parallel.full_state_dict(self.model, self.raw, self.cfg.fsdp)  # collective
        if self.d.main:
            tokens = self.prep.val[:self.cfg.probe_sequences, :-1]
            t0 = time.perf_counter()
            row = probes.probe(self.prep.source, state, tokens, seed=self.cfg.seed)
            self.log.probe({"step": self.step, **row,
                            "seconds": round(time.perf_counter() - t0, 3)})

    def save(self) -> None:
        meta = {"step": self.step, "data_position": self.prep.batches.position(self.step),
                "global_batch": self.prep.batches.global_batch,
                "scheduler": self.sched.state_dict(), "signature": self.signature,
                "model": self.prep.stats.name, "spec": self.prep.text,
                "config": self.cfg.model_dump(mode="json")}
        folder = self.cfg.out / "checkpoints" / f"step_{self.step:06d}"
        path = checkpoint.save(folder, meta, self.model, self.raw, self.opt, self.d,
                               self.cfg.fsdp, self.cfg.keep_checkpoints)
        self.last_ckpt = (self.step, str(path))

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        cfg, d = self.cfg, self.d
        start = self.step
        if d.main:
            write_run(cfg, self.prep)
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
            (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
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
