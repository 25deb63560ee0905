"""Every option of a training run, in one pydantic model recorded as config.json in the run.

Batch sizes: `batch` sequences per rank per micro-step; the global batch of one optimizer
step is batch x world size x accum sequences of `seq` + 1 tokens (inputs and targets shifted
by one), whatever the number of ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# fields that may differ between a run and its resumption (they do not change the numbers)
RUNTIME_FIELDS = frozenset({"resume", "resume_from", "stop_at", "progress", "tensorboard",
                            "threads", "compile", "check_memory", "timeout", "recompute",
                            "pp", "pp_split", "pp_schedule"})  # a pipeline: the same numbers


class TrainConfig(BaseModel):
    # allow_inf_nan: `--lr inf` or `--set beta2=nan` is refused here, before anything runs
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    spec: str = Field(description="path of the .hc file, or the spec text itself")
    out: Path = Field(description="the run folder (created; an existing run needs resume)")
    # data
    data: Path | None = Field(None, description="a text file or folder; None: Python's stdlib")
    tokenizer: Literal["bytes", "gpt2"] = Field(
        "bytes", description="bytes: one token per byte (vocab 256); gpt2: tiktoken's GPT-2 BPE "
        "(vocab 50257)")
    max_bytes: int = Field(8 << 20, gt=0, description="corpus size cap, in bytes")
    val_fraction: float = Field(0.05, gt=0, lt=1, description="the corpus' tail kept for validation")
    seq: int = Field(128, ge=2, description="tokens per sequence")
    batch: int = Field(16, ge=1, description="sequences per rank per micro-step")
    accum: int = Field(1, ge=1, description="micro-steps per optimizer step")
    # optimisation
    steps: int = Field(1000, ge=1, description="optimizer steps")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="final lr / peak lr")
    schedule: Literal["cosine", "wsd", "constant"] = Field(
        "cosine", description="after the warm-up: cosine to min_lr_ratio, WSD (constant, then a "
        "linear decay over the last decay_fraction), or constant")
    warmup: int = Field(100, ge=0, description="linear warm-up steps (capped at steps // 2)")
    decay_fraction: float = Field(0.2, gt=0, le=1, description="WSD: share of steps decaying")
    weight_decay: float = Field(0.1, ge=0, description="AdamW's weight decay, on the "
                                "parameters hcdsl.param_groups decays")
    beta1: float = Field(0.9, ge=0, lt=1, description="AdamW's beta1")
    beta2: float = Field(0.95, ge=0, lt=1, description="AdamW's beta2")
    clip: float = Field(1.0, ge=0, description="max gradient norm; 0: no clipping")
    # numbers and machine
    seed: int = Field(0, description="seeds the weights, dropout and probes (and the batch "
                      "order, unless data_seed)")
    data_seed: int | None = Field(None, description="seed of the batch order; None: seed")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast on a GPU that supports it, else fp32")
    device: str = Field("auto", description="auto: cuda (this rank's GPU) if available, else cpu")
    compile: bool = Field(False, description="torch.compile the model")
    recompute: Literal["auto", "off", "layers"] = Field(
        "off", description="recomputation across layers (hcdsl.compile recompute=\"layers\"): "
        "the connection's state is kept every k layers (k from hcdsl/memory.py) and rebuilt "
        "in backward, the layers are not recomputed; the same numbers, less memory (DHC x4 "
        "1.67x -> 1.07x of Pre-Norm's peak), more time (+15-30% eager, docs/optimiser.md). "
        "auto: on where the state between layers is wider than one hidden vector "
        "(hyper-connections, mHC, the dense families), off for Pre-Norm, FC and under fsdp; "
        "off by default: time, not memory, binds the small runs this trainer is used for")
    fsdp: bool = Field(False, description="under torchrun: shard with FSDP2 instead of DDP")
    pp: int = Field(1, ge=1, description="pipeline parallelism under torchrun: ranks per "
                    "pipeline; the model is cut between layers into stages (hcdsl.pipeline, "
                    "on torch.distributed.pipelining), the ranks / pp pipelines are "
                    "data-parallel replicas (DDP), --accum micro-batches per step")
    pp_split: str | None = Field(None, description="layers per pipeline stage, e.g. 3,5 "
                                 "(attention and FFN count one each; alone, it sets --pp; "
                                 "default: balanced by the counted FLOPs)")
    pp_schedule: Literal["gpipe", "1f1b", "interleaved"] = Field(
        "gpipe", description="the pipeline schedule: gpipe, 1f1b (needs --accum >= --pp) or "
        "interleaved (1F1B over 2 stages per rank, --accum a multiple of --pp)")
    threads: int | None = Field(None, ge=1, description="torch threads per process")
    timeout: float = Field(600.0, gt=0, description="under torchrun: seconds a rank waits "
                           "for the others in a collective before the run stops with an "
                           "error (a stalled or dead rank)")
    check_memory: bool = Field(True, description="refuse a run whose estimated memory "
                               "(weights, gradients, AdamW moments, activations of one "
                               "micro-batch; hcdsl/memory.py) exceeds what is available")
    # evaluation, probes, checkpoints, logs
    eval_every: int = Field(100, ge=0, description="validate every N steps and at the "
                            "end; 0: only at the end")
    val_sequences: int | None = Field(
        None, ge=1, description="validation windows: None, every window of the held-out "
        "split; N, a fixed-seed sample of N of them (faster; the report gives the standard "
        "error either way)")
    probe_every: int = Field(100, ge=0, description="probe what the connections learned "
                             "every N steps; 0: only at the start and the end")
    probe_sequences: int = Field(4, ge=1, description="validation sequences the probes run")
    ckpt_every: int = Field(500, ge=0, description="checkpoint every N steps and at the "
                            "end; 0: only at the end")
    keep_checkpoints: int = Field(2, ge=1, description="the newest checkpoints kept")
    resume: bool = Field(False, description="continue the run in `out` from its last checkpoint")
    resume_from: Path | None = Field(None, description="continue from this checkpoint folder")
    stop_at: int | None = Field(None, ge=1, description="stop after this step (checkpointed), "
                                "as if interrupted; --resume continues")
    progress: bool = Field(True, description="a progress bar on stderr")
    tensorboard: bool = Field(True, description="also log to TensorBoard when it imports")

    @model_validator(mode="before")
    @classmethod
    def _pp_from_split(cls, data: object) -> object:
        """--pp-split alone gives the pipeline's ranks: its stages (half of them with the
        interleaved schedule, 2 per rank)."""
        if isinstance(data, dict) and data.get("pp_split") and data.get("pp") is None:
            stages = len(str(data["pp_split"]).split(","))
            per_rank = 2 if data.get("pp_schedule") == "interleaved" else 1
            if stages % per_rank == 0 and stages // per_rank > 1:
                data = {**data, "pp": stages // per_rank}
        return data

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.fsdp and self.compile:
            raise ValueError("--fsdp with --compile is not supported by this trainer yet")
        if self.pp > 1:
            for on, what in ((self.fsdp, "--fsdp"), (self.compile, "--compile"),
                             (self.recompute != "off", f"--recompute {self.recompute}"),
                             (self.precision == "bf16", "--precision bf16")):
                if on:
                    raise ValueError(f"--pp {self.pp} with {what} is not supported by this "
                                     "trainer yet (pipeline stages run eager, in fp32, "
                                     "with DDP replicas)")
            stages = self.pipeline_stages
            if self.pp_schedule == "1f1b" and self.accum < stages:
                raise ValueError(f"--pp-schedule 1f1b needs at least as many micro-batches "
                                 f"(--accum) as stages: --accum {self.accum} < {stages} "
                                 f"(give --accum {stages}, or --pp-schedule gpipe)")
            if self.pp_schedule == "interleaved" and self.accum % self.pp:
                raise ValueError(f"--pp-schedule interleaved needs --accum a multiple of "
                                 f"--pp {self.pp}, got --accum {self.accum}")
        if self.pp_split is not None:
            counts = self.pipeline_split
            if self.pp == 1:
                raise ValueError(f"--pp-split {self.pp_split} gives {len(counts)} stage(s) "
                                 "for one pipeline rank (--pp 1): a pipeline has 2 or more")
            if len(counts) != self.pipeline_stages:
                raise ValueError(
                    f"--pp-split {self.pp_split} gives {len(counts)} stages; --pp {self.pp} "
                    f"with --pp-schedule {self.pp_schedule} runs {self.pipeline_stages}")
        return self

    @property
    def pipeline_stages(self) -> int:
        """Stages of the pipeline: one per rank, two with the interleaved schedule."""
        return self.pp * (2 if self.pp_schedule == "interleaved" else 1)

    @property
    def pipeline_split(self) -> tuple[int, ...] | None:
        """--pp-split as layer counts (None: balanced)."""
        if self.pp_split is None:
            return None
        try:
            counts = tuple(int(x) for x in self.pp_split.split(","))
        except ValueError:
            raise ValueError(f"--pp-split {self.pp_split}: give layer counts per stage "
                             "separated by commas, e.g. 3,5") from None
        if any(k < 1 for k in counts):
            raise ValueError(f"--pp-split {self.pp_split}: every stage needs >= 1 layer")
        return counts

    @property
    def global_batch_per_rank(self) -> int:
        return self.batch * self.accum

    def spec_source(self) -> str | Path:
        """What to give hcdsl.compile: a Path for a file, else the text (never a str path)."""
        looks_like_text = "\n" in self.spec or "{" in self.spec
        return self.spec if looks_like_text else Path(self.spec)

    def differences(self, other: "TrainConfig") -> list[str]:
        """Fields (other than runtime ones) whose values differ."""
        a, b = self.model_dump(mode="json"), other.model_dump(mode="json")
        return [k for k in a if k not in RUNTIME_FIELDS and k != "out" and a[k] != b[k]]
