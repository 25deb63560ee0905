"""torchrun on CPU (gloo): 2 ranks x batch b give the losses of 1 process x batch 2b, with
DDP and with FSDP2 (fully_shard), whose checkpoints go through torch.distributed.checkpoint.

FSDP2 runs on CPU with gloo in torch 2.13: the only obstacle, its refusal of 0-dim
parameters (HC's s_α, s_β, mHC's α), is handled by hcdsl.train.parallel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hcdsl.train import TrainConfig, train
from hcdsl.train.logs import read_jsonl
from helpers import TRAIN_SPEC

SPEC = TRAIN_SPEC
COMMON = ["--steps", "4", "--seq", "32", "--eval-every", "2", "--probe-every", "0",
          "--no-progress", "--set", "warmup=1", "--set", "val_sequences=8",
          "--set", "max_bytes=200000", "--set", "tensorboard=false"]


# A rank of a gloo run can die at exit with SIGABRT, "terminate called without an active
# exception" (a C++ thread of the process group outliving it; pytorch/pytorch#179291 describes
# the same crash at interpreter finalisation). Seen once in about 35 runs of this file on a
# loaded 2-core machine, never reproduced in 33 runs after; a fresh run that dies that way is
# run once more from scratch, anything else fails at once.
GLOO_EXIT_ABORT = "terminate called without an active exception"


def torchrun(args: list[str], cwd: Path, timeout: int = 240) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "hcdsl", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(2):
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        output = proc.stdout[-3000:] + proc.stderr[-3000:]
        if proc.returncode == 0:
            return
        fresh = "--resume" not in args and "--out" in args
        if attempt == 0 and fresh and GLOO_EXIT_ABORT in output and "SIGABRT" in output:
            print(f"torchrun: a rank aborted at exit ({GLOO_EXIT_ABORT}); running again")
            shutil.rmtree(cwd / args[args.index("--out") + 1], ignore_errors=True)
            continue
        break
    raise AssertionError(output)


def single(tmp_path: Path, spec: Path) -> list[tuple[float, float | None]]:
    cfg = TrainConfig(spec=str(spec), out=tmp_path / "one", steps=4, batch=4, seq=32,
                      eval_every=2, probe_every=0, warmup=1, val_sequences=8,
                      max_bytes=200_000, progress=False, tensorboard=False, threads=1)
    train(cfg)
    return _losses(cfg.out)


def _losses(run: Path) -> list[tuple[float, float | None]]:
    return [(r["loss"], r.get("val_loss")) for r in read_jsonl(run / "metrics.jsonl")]


def _close(a: list, b: list) -> None:
    assert len(a) == len(b) == 4
    for (la, va), (lb, vb) in zip(a, b):
        assert la == pytest.approx(lb, rel=1e-5, abs=1e-5)
        assert (va is None) == (vb is None)
        if va is not None:
            assert va == pytest.approx(vb, rel=1e-5, abs=1e-5)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.hc"
    path.write_text(SPEC)
    return path


def test_ddp_two_ranks_equal_one_process(tmp_path: Path, spec: Path) -> None:
    torchrun([str(spec), "--out", str(tmp_path / "ddp"), "--batch", "2", *COMMON], tmp_path)
    _close(_losses(tmp_path / "ddp"), single(tmp_path, spec))
    assert read_jsonl(tmp_path / "ddp" / "metrics.jsonl")[0]["tokens"] == 4 * 32


def test_fsdp2_trains_on_cpu(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "fsdp"
    torchrun([str(spec), "--out", str(out), "--batch", "2", "--fsdp", "--ckpt-every", "2",
              *COMMON], tmp_path)
    for step in (2, 4):  # sharded checkpoints through torch.distributed.checkpoint (DCP)
        ckpt = out / "checkpoints" / f"step_{step:06d}"
        assert (ckpt / ".metadata").exists() and not (ckpt / "state.pt").exists()
    _close(_losses(out), single(tmp_path, spec))


@pytest.mark.slow
def test_fsdp2_stop_and_resume(tmp_path: Path, spec: Path) -> None:
    out = str(tmp_path / "fsdp")
    torchrun([str(spec), "--out", out, "--batch", "2", "--fsdp", "--stop-at", "2", *COMMON],
             tmp_path)
    assert len(_losses(tmp_path / "fsdp")) == 2
    torchrun([str(spec), "--out", out, "--batch", "2", "--fsdp", "--resume", *COMMON],
             tmp_path)
    _close(_losses(tmp_path / "fsdp"), single(tmp_path, spec))
