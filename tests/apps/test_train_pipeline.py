"""`hcdsl train --pp` under torchrun on CPU (gloo): 2 ranks x 2 pipeline stages give the
losses of one process with the same global batch (the --accum micro-batches are the
pipeline's), stop + resume gives the identical loss sequence, a checkpoint of 2 stages
resumes on 4 (interleaved: 2 per rank), and bad options are refused at the option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hcdsl.train.logs import read_jsonl

SPEC = """model tiny {
  dim = 32
  vocab = 256
  layer attn = attention(heads=2)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect hyper(n=4, dynamic)
}
"""
COMMON = ["--steps", "4", "--seq", "16", "--batch", "2", "--accum", "2", "--eval-every", "2",
          "--probe-every", "0", "--no-progress", "--set", "warmup=1",
          "--set", "val_sequences=8", "--set", "max_bytes=200000",
          "--set", "tensorboard=false", "--threads", "1"]
TIMEOUT = 240


def hcdsl_train(args: list[str], cwd: Path, ranks: int = 1) -> subprocess.CompletedProcess:
    launch = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
               "--standalone", "-m", "hcdsl"] if ranks > 1 else [sys.executable, "-m", "hcdsl"])
    return subprocess.run([*launch, "train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def losses(run: Path) -> list[tuple[float, float | None]]:
    return [(r["loss"], r.get("val_loss")) for r in read_jsonl(run / "metrics.jsonl")]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.hc"
    path.write_text(SPEC)
    return path


def numbers(row: object, where: str = "") -> dict[str, float]:
    """Every number in a probe row (nested dicts and lists), by its path."""
    if isinstance(row, dict):
        return {k: v for key, item in row.items() if key != "seconds"
                for k, v in numbers(item, f"{where}.{key}").items()}
    if isinstance(row, list):
        return {k: v for i, item in enumerate(row)
                for k, v in numbers(item, f"{where}[{i}]").items()}
    return {where: float(row)} if isinstance(row, (int, float)) else {}


def test_two_stages_train_like_one_process(tmp_path: Path, spec: Path) -> None:
    """Losses, validation and the probes (what the connection learned, from the stages'
    gathered weights) equal one process's."""
    at = COMMON.index("--probe-every")
    probing = [*COMMON[:at], "--probe-every", "2", *COMMON[at + 2:]]
    ok(hcdsl_train([str(spec), "--out", "one", *probing], tmp_path))
    ok(hcdsl_train([str(spec), "--out", "pp", "--pp", "2", *probing], tmp_path, ranks=2))
    want_p = read_jsonl(tmp_path / "one" / "probes.jsonl")
    got_p = read_jsonl(tmp_path / "pp" / "probes.jsonl")
    assert [r["step"] for r in got_p] == [r["step"] for r in want_p] == [0, 2, 4]
    for rg, rw in zip(got_p, want_p):
        g, w = numbers(rg), numbers(rw)
        assert g.keys() == w.keys() and any(".generators[" in k for k in w)
        for key in w:
            assert g[key] == pytest.approx(w[key], rel=1e-4, abs=1e-6), key
    want, got = losses(tmp_path / "one"), losses(tmp_path / "pp")
    assert len(got) == len(want) == 4
    for (lg, vg), (lw, vw) in zip(got, want):
        assert lg == pytest.approx(lw, rel=1e-5, abs=1e-5)
        assert (vg is None) == (vw is None)
        if vw is not None:
            assert vg == pytest.approx(vw, rel=1e-5, abs=1e-5)
    assert (tmp_path / "pp" / "report" / "report.html").is_file()  # rank 0 reports


def test_stop_and_resume_give_the_same_losses(tmp_path: Path, spec: Path) -> None:
    pp = ["--pp", "2"]
    ok(hcdsl_train([str(spec), "--out", "whole", *pp, *COMMON], tmp_path, ranks=2))
    ok(hcdsl_train([str(spec), "--out", "cut", *pp, "--stop-at", "2", *COMMON], tmp_path,
                   ranks=2))
    assert len(losses(tmp_path / "cut")) == 2
    ok(hcdsl_train([str(spec), "--out", "cut", *pp, "--resume", *COMMON], tmp_path, ranks=2))
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")


@pytest.mark.slow  # 4 processes: about a minute on the loaded 2-core machine
def test_two_stages_times_two_replicas(tmp_path: Path, spec: Path) -> None:
    """--pp 2 on 4 ranks: 2 pipelines, each stage replicated with DDP; --batch 1 x 2
    replicas x --accum 2 is one process's --batch 2 x --accum 2."""
    ok(hcdsl_train([str(spec), "--out", "one", *COMMON], tmp_path))
    grid = COMMON[:COMMON.index("--batch")] + ["--batch", "1"] + COMMON[
        COMMON.index("--batch") + 2:]
    ok(hcdsl_train([str(spec), "--out", "grid", "--pp", "2", *grid], tmp_path, ranks=4))
    for (a, va), (b, vb) in zip(losses(tmp_path / "grid"), losses(tmp_path / "one")):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-5)
        if vb is not None:
            assert va == pytest.approx(vb, rel=1e-5, abs=1e-5)


@pytest.mark.slow  # 3 torchrun runs: about 2 minutes on the loaded 2-core machine
def test_a_checkpoint_of_two_stages_resumes_on_four(tmp_path: Path, spec: Path) -> None:
    """The same checkpoint on another cut: 4 stages, 2 per rank (interleaved 1F1B)."""
    pp = ["--pp", "2"]
    ok(hcdsl_train([str(spec), "--out", "whole", *pp, *COMMON], tmp_path, ranks=2))
    ok(hcdsl_train([str(spec), "--out", "four", *pp, "--stop-at", "2", *COMMON], tmp_path,
                   ranks=2))
    ok(hcdsl_train([str(spec), "--out", "four", *pp, "--resume", "--pp-schedule",
                    "interleaved", *COMMON], tmp_path, ranks=2))
    for (a, va), (b, vb) in zip(losses(tmp_path / "four"), losses(tmp_path / "whole")):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-5)
        if vb is not None:
            assert va == pytest.approx(vb, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("extra,message", [
    (["--pp", "2"], "--pp 2 runs a pipeline over 2 processes: start it with torchrun"),
    (["--pp", "2", "--fsdp"], "--pp 2 with --fsdp is not supported"),
    (["--pp", "2", "--compile"], "--pp 2 with --compile is not supported"),
    (["--pp", "2", "--pp-schedule", "1f1b", "--accum", "1"], "needs at least as many"),
    (["--pp", "2", "--pp-split", "3,x"], "--pp-split 3,x: give layer counts"),
])
def test_bad_options_are_refused_at_the_option(tmp_path: Path, spec: Path, extra: list[str],
                                               message: str) -> None:
    args = COMMON[:COMMON.index("--accum")] + COMMON[COMMON.index("--accum") + 2:]
    proc = hcdsl_train([str(spec), "--out", "bad", *args, *extra], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_cut_the_model_cannot_take_is_refused(tmp_path: Path, spec: Path) -> None:
    """Under torchrun: more layers in --pp-split than the model has, a located message from
    every rank and exit 1, no traceback."""
    proc = hcdsl_train([str(spec), "--out", "bad", "--pp", "2", "--pp-split", "3,3",
                        *COMMON], tmp_path, ranks=2)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "--pp-split 3,3: --pp-split 3,3 puts 6 layers in stages; the model has 4" in out
    assert "internal error" not in out and "hcdsl/train/" not in out  # no trace of ours


def hcdsl_stats(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hcdsl", "stats", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=TIMEOUT)


def test_stats_pp_prints_what_each_cut_sends(tmp_path: Path, spec: Path) -> None:
    """DHC x4 at dim 32 sends its 4-stream state: 4 x 32 elements = 512 bytes per token
    in fp32; Pre-Norm one hidden vector, 128 bytes."""
    proc = hcdsl_stats([str(spec), "--pp", "2", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    import json

    got = json.loads(proc.stdout)
    (cut,) = got["cuts"]
    assert cut["after_layer"] == 2 and cut["bytes_per_token"] == 4 * 32 * 4
    assert [t["type"] for t in cut["tensors"]] == ["H[4x32]"]
    assert len(got["stages"]) == 2 and all(s["params"] > 0 for s in got["stages"])
    assert all(s["activation_bytes"] > 0 for s in got["stages"])
    plain = tmp_path / "plain.hc"
    plain.write_text(SPEC.replace("hyper(n=4, dynamic)", "residual"))
    proc = hcdsl_stats([str(plain), "--pp", "2", "--json"], tmp_path)
    assert json.loads(proc.stdout)["cuts"][0]["bytes_per_token"] == 32 * 4
    text = hcdsl_stats([str(spec), "--pp", "2"], tmp_path).stdout
    assert "L2.write H[4x32]" in text and "512 B" in text


@pytest.mark.parametrize("extra,message", [
    (["--pp", "5"], "--pp 5: 5 pipeline stages for a model of 4 layers"),
    (["--pp", "2", "--pp-split", "1,1"], "puts 2 layers in stages; the model has 4"),
])
def test_stats_pp_errors_name_the_option(tmp_path: Path, spec: Path, extra: list[str],
                                         message: str) -> None:
    proc = hcdsl_stats([str(spec), *extra], tmp_path)
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
