"""The memory estimate (hcdsl/memory.py) and the refusals of compile, run and train when it
is more than the machine has, each with an override."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import hcdsl
from hcdsl import memory
from hcdsl.api import lowered
from hcdsl.cli import app
from hcdsl.train import TrainConfig, TrainError
from hcdsl.train.prepare import check_memory

SPECS = Path(__file__).resolve().parents[2] / "specs"
SMALL = ["pre_norm.hc", "tiny_dhc4.hc", "families/mudd_tiny.hc", "families/mhc_tiny_paper4.hc",
         "families/attnres_tiny.hc", "custom/laurel_lr.hc", "families/frac_tiny_dfc4.hc"]
TINY = "model t { dim = 16 vocab = 32 layer a = attention(heads=2) layer f = mlp body = [a, f] }"


@pytest.fixture
def little_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine has 4 KiB available."""
    monkeypatch.setattr(memory, "available_bytes", lambda device=None: (4096, "the test"))


@pytest.mark.parametrize("name", SMALL)
def test_parameters_are_counted_exactly_without_building(name: str) -> None:
    low = lowered(SPECS / name)
    with torch.device("meta"):
        model = hcdsl.compile(low, check_memory=False)
    built = sum(p.numel() for p in model.parameters())
    assert memory.param_count(low.raw) == built


def test_activations_grow_with_batch_seq_and_depth() -> None:
    low = lowered(SPECS / "tiny_dhc4.hc")
    a = memory.activation_elements(low.ir, 2, 16)
    assert memory.activation_elements(low.ir, 4, 16) == 2 * a
    assert memory.activation_elements(low.ir, 2, 32) > 2 * a  # attention scores: seq^2
    deep = lowered(TINY.replace("body = [a, f]", "body = repeat 8 [a, f]"))
    shallow = lowered(TINY)
    assert memory.activation_elements(deep.ir, 1, 8) > 4 * memory.activation_elements(
        shallow.ir, 1, 8)


def test_uses_hold_more_copies_of_the_weights() -> None:
    low = lowered(TINY)
    sizes = [memory.estimate(low.raw, low.ir, 2, 8, use=u).param_bytes
             for u in ("compile", "run", "train")]
    assert sizes[1] == 2 * sizes[0] and sizes[2] == 4 * sizes[0]


def test_available_memory_from_proc_meminfo(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:  8000 kB\nMemFree: 100 kB\nMemAvailable:    2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", info)
    assert memory.available_bytes() == (2048 * 1024, "MemAvailable in /proc/meminfo")


def test_unknown_memory_skips_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "missing")
    monkeypatch.setattr(memory.importlib.util, "find_spec", lambda name: None)
    assert memory.available_bytes() is None
    memory.check(memory.Estimate(10**15, 10**15, 0, "compile"), "huge")  # no error


@pytest.mark.usefixtures("little_memory")
def test_compile_refuses_and_can_be_told_not_to() -> None:
    with pytest.raises(memory.MemoryLimitError) as info:
        hcdsl.compile(TINY)
    msg = str(info.value)
    assert "model 't' needs an estimated" in msg and "parameters" in msg
    assert "more than the 4.0 KiB available (the test)" in msg and "check_memory=False" in msg
    assert isinstance(info.value, hcdsl.CompileError)
    assert hcdsl.compile(TINY, check_memory=False)(torch.zeros(1, 2, dtype=torch.long)).shape \
        == (1, 2, 32)
    with torch.device("meta"):  # nothing is allocated on the meta device: no check
        hcdsl.compile(TINY)


@pytest.mark.usefixtures("little_memory")
def test_run_refuses_with_a_clear_message(tmp_path: Path) -> None:
    spec = tmp_path / "t.hc"
    spec.write_text(TINY)
    result = CliRunner().invoke(app, ["run", str(spec), "--batch", "2", "--seq", "8"])
    assert result.exit_code == 1, result.output
    assert f"{spec} at batch 2 x seq 8 needs an estimated" in result.stderr
    assert "activations" in result.stderr and "--no-memory-check" in result.stderr
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(app, ["run", str(spec), "--seq", "8", "--no-memory-check"])
    assert ok.exit_code == 0, ok.output


@pytest.mark.usefixtures("little_memory")
def test_train_refuses_before_anything_is_written(tmp_path: Path) -> None:
    spec = tmp_path / "t.hc"
    spec.write_text(TINY)
    cfg = TrainConfig(spec=str(spec), out=tmp_path / "run", batch=4, seq=16, device="cpu")
    with pytest.raises(memory.MemoryLimitError, match="at batch 4 x seq 16 needs"):
        check_memory(cfg, spec, str(spec))
    from hcdsl.train.prepare import prepare

    with pytest.raises(TrainError, match="needs an estimated"):
        prepare(cfg, 1)
    assert not (tmp_path / "run").exists()
    off = cfg.model_copy(update={"check_memory": False})
    assert "check_memory" not in off.differences(cfg)  # a runtime switch, not a setting


def test_the_estimate_is_above_a_measured_peak() -> None:
    """One forward + backward in a fresh process: its peak RSS growth is below the
    estimate of gradients and activations (the estimate is meant to be generous)."""
    code = (
        "import resource, torch, hcdsl\n"
        "from pathlib import Path\nfrom hcdsl import memory\nfrom hcdsl.api import lowered\n"
        "torch.set_num_threads(1)\n"
        f"low = lowered(Path({str(SPECS / 'tiny_dhc4.hc')!r}))\n"
        "est = memory.estimate(low.raw, low.ir, 8, 128, use='run')\n"
        "m = hcdsl.compile(low, seed=0, check_memory=False)\n"
        "x = torch.randint(0, 256, (8, 128))\n"
        "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "m(x).logsumexp(-1).sum().backward()\n"
        "r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
        "print(r1 - r0, est.activation_bytes + est.params * 4)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    measured, estimated = int(out[0]), int(out[1])
    assert measured <= estimated, (measured, estimated)
