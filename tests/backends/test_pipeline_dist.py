"""hcdsl.pipeline on torch.distributed.pipelining, CPU and gloo: 2 processes x 2 stages train
a few steps with the losses of one process running the whole model on the same global batch
(to float tolerance), for Pre-Norm, DHC x4, mHC x4, MUDD and DenseFormer; GPipe, 1F1B and
interleaved 1F1B (4 stages on 2 ranks); and 2 stages x DDP 2 (4 processes)."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import hcdsl
from helpers import model_text

FAMILIES = {"pre-norm": "residual", "dhc4": "hyper(n=4, dynamic)", "mhc4": "mhc(n=4)",
            "mudd": "mudd", "denseformer": "denseformer"}
BATCH, SEQ, VOCAB, STEPS = 8, 16, 64, 3
TIMEOUT = 120  # seconds before a hung run fails


def spec(connect: str) -> str:
    return model_text(connect, dim=32, vocab=VOCAB, body="repeat 2 [attn, ffn]")


def batches(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(STEPS):
        x = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=g)
        out.append((x[:, :-1], x[:, 1:]))
    return out


def one_process(connect: str) -> list[float]:
    model = hcdsl.compile(spec(connect), seed=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for tokens, targets in batches():
        loss = model(tokens, targets=targets).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    return losses


def worker(rank: int, world: int, port: int, out: str, connect: str, stages: int,
           schedule: str, microbatches: int, dp: int) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=timedelta(seconds=TIMEOUT // 2))
    try:
        pp = world // dp
        pp_group = dp_group = None
        if dp > 1:  # ranks (d, p) -> d * pp + p: pipelines in rows, replicas in columns
            for d in range(dp):
                g = dist.new_group([d * pp + p for p in range(pp)])
                if rank // pp == d:
                    pp_group = g
            for p in range(pp):
                g = dist.new_group([d * pp + p for d in range(dp)])
                if rank % pp == p:
                    dp_group = g
        model = hcdsl.compile(spec(connect), seed=1)
        pipe = hcdsl.pipeline(model, stages=stages, schedule=schedule,
                              microbatches=microbatches, group=pp_group, dp_group=dp_group)
        opt = torch.optim.AdamW(pipe.parameters(), lr=1e-2)
        losses = []
        share = BATCH // dp  # this replica's slice of the global batch
        d = rank // pp
        for tokens, targets in batches():
            loss = pipe.step(tokens[d * share:(d + 1) * share],
                             targets[d * share:(d + 1) * share])
            opt.step()
            opt.zero_grad()
            if loss is not None:
                if dp > 1:  # the mean over replicas: the global batch's loss
                    dist.all_reduce(loss, group=dp_group)
                    loss /= dp
                losses.append(loss.item())
        if pipe.is_last and d == 0:
            Path(out).write_text(json.dumps(losses))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tmp_path: Path, connect: str, stages: int = 2, schedule: str = "1f1b",
        microbatches: int = 2, world: int = 2, dp: int = 1) -> list[float]:
    out = tmp_path / "losses.json"
    import time

    ctx = mp.start_processes(worker, nprocs=world, join=False, start_method="spawn",
                             args=(world, free_port(), str(out), connect, stages, schedule,
                                   microbatches, dp))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                raise AssertionError(f"the pipeline run did not finish in {TIMEOUT} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return json.loads(out.read_text())


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.mark.parametrize("family", FAMILIES)
def test_two_stages_train_like_one_process(tmp_path: Path, family: str) -> None:
    want = one_process(FAMILIES[family])
    got = run(tmp_path, FAMILIES[family])
    assert len(got) == STEPS
    assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert want[-1] < want[0]  # the steps trained (a loss that did not move proves less)


@pytest.mark.parametrize("schedule,stages,microbatches", [("gpipe", 2, 4),
                                                          ("interleaved", 4, 4)])
def test_other_schedules(tmp_path: Path, schedule: str, stages: int,
                         microbatches: int) -> None:
    connect = FAMILIES["dhc4"]
    got = run(tmp_path, connect, stages=stages, schedule=schedule, microbatches=microbatches)
    assert got == pytest.approx(one_process(connect), rel=1e-5, abs=1e-5)


@pytest.mark.slow  # 4 processes: about 60 s on the loaded 2-core machine
def test_pipeline_times_data_parallel(tmp_path: Path) -> None:
    """2 stages x 2 replicas = 4 ranks: each replica runs half the global batch."""
    connect = FAMILIES["mhc4"]
    got = run(tmp_path, connect, world=4, dp=2)
    assert got == pytest.approx(one_process(connect), rel=1e-5, abs=1e-5)
