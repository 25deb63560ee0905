"""The trainer under faults, injected on purpose: kills (kill -9 of a trainer, of `hcdsl
compare`, SIGINT and SIGTERM), two trainers on one folder, step 1,000,000, a damaged newest
checkpoint of each kind, NaN, changed data and spec on resume, a full disk, a FIFO as the
spec, a read-only or file --out, a stalled rank. Each checks that nothing is lost: where a
run is resumed, its losses equal those of a run that never stopped, bit for bit (the
uninterrupted `reference` run below is the oracle)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from hcdsl.cli import app
from hcdsl.proofs.checkpoint import read_state
from hcdsl.proofs.run_folder import step_folders, step_of
from hcdsl.train import TrainConfig, TrainError, checkpoint, train
from hcdsl.train.logs import read_jsonl
from hcdsl.train.parallel import Dist
from helpers import TRAIN_SPEC

SPEC = TRAIN_SPEC
# the same parameter shapes, another model: tanh switched off (HC Eqs. 11-13 without tanh)
NO_TANH = SPEC.replace("hyper(n=2, dynamic)", "hyper(n=2, dynamic, tanh=false)")
STEPS = 8
SETTINGS = dict(steps=STEPS, batch=4, seq=32, warmup=2, eval_every=4, probe_every=0,
                ckpt_every=2, keep_checkpoints=3, val_sequences=8, max_bytes=200_000,
                progress=False, tensorboard=False, threads=1)
FLAGS = ["--steps", str(STEPS), "--batch", "4", "--seq", "32", "--warmup", "2",
         "--eval-every", "4", "--probe-every", "0", "--ckpt-every", "2", "--threads", "1",
         "--no-progress", "--set", "keep_checkpoints=3", "--set", "val_sequences=8",
         "--set", "max_bytes=200000", "--set", "tensorboard=false"]

pytestmark = pytest.mark.usefixtures("one_thread")


def losses(run: Path) -> list[tuple[int, float, float | None]]:
    return [(r["step"], r["loss"], r.get("val_loss")) for r in read_jsonl(run / "metrics.jsonl")]


def write_spec(folder: Path, text: str = SPEC, name: str = "tiny.hc") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def config(folder: Path, out: str, **kw: object) -> TrainConfig:
    spec = kw.pop("spec", None) or str(write_spec(folder))
    return TrainConfig(**{**SETTINGS, "spec": str(spec), "out": folder / out, **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list:
    """The losses of the run that never stopped (steps 1..8, val losses at 4 and 8)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("reference")
    cfg = config(folder, "ref")
    train(cfg)
    rows = losses(cfg.out)
    assert [r[0] for r in rows] == list(range(1, STEPS + 1))
    return rows


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine run stopped after step 6: checkpoints at steps 2, 4 and 6."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("stopped")
    cfg = config(folder, "run", stop_at=6)
    train(cfg)
    assert [step_of(p) for p in step_folders(cfg.out)] == [2, 4, 6]
    return cfg.out


def copy_run(stopped: Path, tmp_path: Path) -> TrainConfig:
    shutil.copytree(stopped, tmp_path / "run")
    spec = write_spec(tmp_path)
    return config(tmp_path, "run", spec=str(spec), resume=True)


def hc_cli(args: list) -> list[str]:
    """The command line of `hcdsl ARGS` in a fresh process."""
    return [sys.executable, "-c", "from hcdsl.cli import app; app()", *[str(a) for a in args]]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def wait_for(check, seconds: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (dead, not yet reaped) counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def clean_cli(args: list, code: int | None = 1) -> str:
    """Run the hcdsl CLI in-process: the expected exit code (None: any failure but 3, a
    bug), no traceback."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    if code is None:
        assert result.exit_code not in (0, 3), f"exit {result.exit_code}: {out}"
    else:
        assert result.exit_code == code, f"exit {result.exit_code}: {out}"
    assert "Traceback" not in out and "internal error" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    return out


# -- step 1,000,000 ---------------------------------------------------------------------------
def test_past_step_999_999_the_newest_checkpoint_is_kept_and_read(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    d = Dist(0, 1, torch.device("cpu"))
    run = tmp_path / "run"
    for step in (999_998, 999_999, 1_000_000, 1_000_001):  # fake steps: no real training
        with torch.no_grad():
            model.weight.fill_(step)  # each checkpoint's weights say its step
        checkpoint.save(run / "checkpoints" / f"step_{step:06d}", {"step": step}, model,
                        model, opt, d, fsdp=False, keep=2)
    kept = [p.name for p in step_folders(run)]
    assert kept == ["step_1000000", "step_1000001"]  # by name, step_999999 would sort last
    assert checkpoint.latest(run).name == "step_1000001"
    assert float(read_state(run)["weight"][0, 0]) == 1_000_001.0


# -- two trainers, kills, signals -------------------------------------------------------------
@pytest.fixture
def slow_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a trainer that waits 60 s before each step after its first
    checkpoint (through a sitecustomize), so a test can kill it mid-run."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_AFTER_FIRST_CHECKPOINT)
    return {**ENV, "PYTHONPATH": f"{hook}{os.pathsep}{ENV.get('PYTHONPATH', '')}",
            "HCDSL_TEST_SLOW": "1"}


SLOW_AFTER_FIRST_CHECKPOINT = """
import os
if os.environ.get("HCDSL_TEST_SLOW"):
    import time
    from hcdsl.train import loop
    step = loop.Trainer.train_step
    def slow(self):
        if self.last_ckpt is not None:
            time.sleep(60)
        return step(self)
    loop.Trainer.train_step = slow
"""


def test_a_second_trainer_is_refused_and_a_signal_stops_the_first(
        tmp_path: Path, slow_env: dict[str, str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    first = subprocess.Popen(hc_cli(["train", spec, "-o", out, *FLAGS]),
                             env=slow_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for(lambda: len(step_folders(out)) >= 1)
        holder = json.loads((out / "run.lock").read_text())
        assert holder["pid"] == first.pid and "train" in holder["command"]
        second = config(tmp_path, "run", resume=True)
        with pytest.raises(TrainError, match=rf"in use by another training run \(pid "
                                             rf"{first.pid} on "):
            train(second)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 128 + signal.SIGTERM, err
    last = checkpoint.latest(out)
    assert f"stopped by SIGTERM; the last checkpoint is {last} (step {step_of(last)}); " \
           "continue with --resume" in err and "Traceback" not in err, err
    assert (out / "run.lock").read_text() == ""  # released, emptied


def test_kill_9_of_a_trainer_then_resume(tmp_path: Path, reference: list,
                                        slow_env: dict[str, str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.Popen(hc_cli(["train", spec, "-o", out, *FLAGS]), env=slow_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(step_folders(out)) >= 1)
        proc.kill()  # SIGKILL: no handler runs; the lock file keeps the dead holder's record
        proc.wait()
    finally:
        proc.kill()
    assert json.loads((out / "run.lock").read_text())["pid"] == proc.pid  # stale
    train(config(tmp_path, "run", spec=str(spec), resume=True))  # takes the stale lock over
    assert losses(out) == reference


def test_sigint_says_where_the_run_stands(tmp_path: Path, slow_env: dict[str, str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.Popen(hc_cli(["train", spec, "-o", out, *FLAGS]), env=slow_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(step_folders(out)) >= 1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    last = checkpoint.latest(out)
    assert f"stopped by SIGINT; the last checkpoint is {last}" in err, err
    assert "Traceback" not in err and checkpoint.problem(
        last, checkpoint.signature(_model()), False) is None


def _model() -> torch.nn.Module:
    import hcdsl

    return hcdsl.compile(SPEC, seed=0)


@pytest.mark.slow  # two compares and three worker processes: about 40 s
def test_kill_9_of_compare_kills_its_worker_and_a_rerun_resumes(
        tmp_path: Path, reference: list, slow_env: dict[str, str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "cmp"
    args = ["compare", spec, "-o", out, "--steps", str(STEPS), "--batch", "4", "--seq", "32",
            "--warmup", "2", "--eval-every", "4", "--probe-every", "0", "--threads", "1",
            "--set", "ckpt_every=2", "--set", "keep_checkpoints=3", "--set", "val_sequences=8",
            "--set", "max_bytes=200000", "--set", "tensorboard=false"]
    run = out / "runs" / "tiny-s0"
    proc = subprocess.Popen(hc_cli(args), env=slow_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: len(step_folders(run)) >= 1 and (run / "run.lock").stat().st_size)
        worker = json.loads((run / "run.lock").read_text())["pid"]
        assert worker != proc.pid and alive(worker)
        proc.kill()  # kill -9 of compare only: the worker is not signalled by anyone else
        proc.wait()
        wait_for(lambda: not alive(worker), 30)  # it died with its parent: no orphan
    finally:
        proc.kill()
    assert (run / "run.lock").read_text() == ""  # it stopped cleanly (SIGTERM), not killed
    assert "stopped by SIGTERM" in (run / "worker.log").read_text()
    done = subprocess.run(hc_cli(args), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert losses(run) == reference  # each step once, as if never stopped


# -- damaged checkpoints and logs -------------------------------------------------------------
DAMAGE = ["truncated", "missing", "random bytes", "empty", "another spec's state.pt",
          "non-finite weights", "meta.pt missing"]


def damage(folder: Path, kind: str, tmp_path: Path) -> None:
    state = folder / "state.pt"
    if kind == "truncated":
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    elif kind == "missing":
        state.unlink()
    elif kind == "random bytes":
        state.write_bytes(os.urandom(4096))
    elif kind == "empty":
        state.write_bytes(b"")
    elif kind == "another spec's state.pt":
        other = config(tmp_path, "other", steps=2, ckpt_every=2,
                       spec=str(write_spec(tmp_path, SPEC.replace("dim = 32", "dim = 16"),
                                           "other.hc")))
        train(other)
        shutil.copy(other.out / "checkpoints" / "step_000002" / "state.pt", state)
    elif kind == "non-finite weights":
        s = torch.load(state, weights_only=True)
        next(iter(s["model"].values())).fill_(float("nan"))
        torch.save(s, state)
    elif kind == "meta.pt missing":  # not a complete checkpoint: never considered
        (folder / "meta.pt").unlink()


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous(
        kind: str, tmp_path: Path, stopped: Path, reference: list,
        capsys: pytest.CaptureFixture) -> None:
    cfg = copy_run(stopped, tmp_path)
    newest = cfg.out / "checkpoints" / "step_000006"
    damage(newest, kind, tmp_path)
    train(cfg)
    err = capsys.readouterr().err
    if kind != "meta.pt missing":
        assert "warning: 1 newer checkpoint(s) skipped: step_000006: " in err, err
        assert "continuing from" in err and "step_000004" in err
    assert losses(cfg.out) == reference  # resumed at step 4: steps 5..8 as if never stopped


def test_no_intact_checkpoint_is_an_error_that_keeps_everything(tmp_path: Path,
                                                               stopped: Path) -> None:
    cfg = copy_run(stopped, tmp_path)
    for folder in step_folders(cfg.out):
        damage(folder, "truncated", tmp_path)
    before = (cfg.out / "metrics.jsonl").read_text()
    with pytest.raises(TrainError, match=r"none of its 3 checkpoint\(s\) can be resumed"):
        train(cfg)
    assert (cfg.out / "metrics.jsonl").read_text() == before


def test_a_torn_last_metrics_line_is_tolerated(tmp_path: Path, stopped: Path,
                                               reference: list) -> None:
    cfg = copy_run(stopped, tmp_path)
    with open(cfg.out / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "loss": 5.1')  # a write cut off by a kill or a full disk
    train(cfg)
    assert losses(cfg.out) == reference


@pytest.mark.parametrize("content", ["", "{not json", '{"spec": 3}'])
def test_an_empty_or_corrupt_config_json_is_recovered(content: str, tmp_path: Path,
                                                      stopped: Path, reference: list,
                                                      capsys: pytest.CaptureFixture) -> None:
    cfg = copy_run(stopped, tmp_path)
    (cfg.out / "config.json").write_text(content)
    train(cfg)
    assert "config.json is empty or unreadable: the settings recorded in" in \
        capsys.readouterr().err
    assert losses(cfg.out) == reference
    assert TrainConfig.model_validate_json((cfg.out / "config.json").read_text()).lr == 1e-3


def test_read_state_takes_a_run_folder_a_step_folder_or_a_file(tmp_path: Path,
                                                               stopped: Path) -> None:
    run = copy_run(stopped, tmp_path).out
    newest = torch.load(run / "checkpoints" / "step_000006" / "state.pt",
                        weights_only=True)["model"]
    older = torch.load(run / "checkpoints" / "step_000004" / "state.pt",
                       weights_only=True)["model"]
    for path in (run, run / "checkpoints" / "step_000006",
                 run / "checkpoints" / "step_000006" / "state.pt"):
        got = read_state(path)
        assert all(torch.equal(got[k], newest[k]) for k in newest)
    damage(run / "checkpoints" / "step_000006", "random bytes", tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 damaged newer checkpoint"):
        got = read_state(run)
    assert all(torch.equal(got[k], older[k]) for k in older)


def test_unfold_plot_and_prove_take_a_run_folder(tmp_path: Path, stopped: Path) -> None:
    run = copy_run(stopped, tmp_path).out
    spec = run / "spec.hc"
    step = run / "checkpoints" / "step_000006"
    outs = [clean_cli(["unfold", spec, "--checkpoint", c, "--input", "1,2,3"], 0)
            for c in (run, step, step / "state.pt")]
    matrices = [o.split(" on 1x3 input tokens")[1] for o in outs]  # the first line names c
    assert matrices[0] == matrices[1] == matrices[2] and "C^(0)" in matrices[0]
    clean_cli(["plot", spec, "-o", tmp_path / "p.png", "--checkpoint", run], 0)
    assert (tmp_path / "p.png").stat().st_size > 0
    clean_cli(["prove", spec, spec, "--checkpoint", run, step], 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = clean_cli(["unfold", spec, "--checkpoint", empty], None)
    assert f"looked for {empty / 'state.pt'} (a checkpoint folder) and " \
           f"{empty / 'checkpoints' / 'step_N' / 'state.pt'}" in out


# -- NaN and non-finite options ---------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_options_are_refused(value: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = clean_cli(["train", spec, "-o", tmp_path / "run", "--lr", value, "--steps", "1"])
    assert "--lr: Input should be a finite number" in out
    out = clean_cli(["train", spec, "-o", tmp_path / "run", "--set", f"beta2={value}"])
    assert "--beta2:" in out
    assert not (tmp_path / "run").exists()


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from hcdsl.train import loop

    step = loop.Trainer.train_step

    def poisoned(self: loop.Trainer) -> tuple[float, float]:
        out = step(self)
        if self.step == 2:  # the update of step 3 leaves a NaN weight (finite loss, grads)
            with torch.no_grad():
                next(self.model.parameters()).view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(loop.Trainer, "train_step", poisoned)
    cfg = config(tmp_path, "run", ckpt_every=1)
    with pytest.raises(TrainError, match=r"weights are not finite after step 3 .*not "
                                         r"checkpointed; the last good checkpoint is "
                                         r".*step_000002 \(step 2\)"):
        train(cfg)
    assert [step_of(p) for p in step_folders(cfg.out)] == [1, 2]
    assert not checkpoint.non_finite(read_state(cfg.out))


def test_the_last_good_checkpoint_of_a_nan_run_is_finite(tmp_path: Path) -> None:
    cfg = config(tmp_path, "run", steps=50, lr=1e30, warmup=0, ckpt_every=1, eval_every=0)
    with pytest.raises(TrainError, match=r"is (nan|inf) at step \d+: stopped before applying "
                                         r"it; the last good checkpoint is (\S+)") as info:
        train(cfg)
    named = Path(str(info.value).split("the last good checkpoint is ")[1].split(" (step")[0])
    assert named == checkpoint.latest(cfg.out)
    assert not checkpoint.non_finite(read_state(named))


# -- resume checks ----------------------------------------------------------------------------
def test_replaced_data_is_refused_and_its_checksum_kept(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("the quick brown fox jumps over the lazy dog. " * 3000)
    cfg = config(tmp_path, "run", data=data, stop_at=2)
    train(cfg)
    recorded = (cfg.out / "data.json").read_text()
    data.write_text("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG. " * 3000)
    with pytest.raises(TrainError, match="the data changed since the run started"):
        train(cfg.model_copy(update={"stop_at": None, "resume": True}))
    assert (cfg.out / "data.json").read_text() == recorded


def test_resume_from_with_another_spec_of_the_same_shapes_is_refused(tmp_path: Path,
                                                                     stopped: Path) -> None:
    import hcdsl

    assert checkpoint.signature(hcdsl.compile(SPEC)) == \
        checkpoint.signature(hcdsl.compile(NO_TANH))  # the shapes alone cannot tell
    other = config(tmp_path, "new", resume_from=stopped / "checkpoints" / "step_000006",
                   spec=str(write_spec(tmp_path, NO_TANH, "no_tanh.hc")))
    with pytest.raises(TrainError, match=r"was written for another spec .*differs in: "
                                         r"connection"):
        train(other)
    assert not (tmp_path / "new").exists()


def test_resume_from_a_run_folder_continues_bit_for_bit(tmp_path: Path, stopped: Path,
                                                       reference: list) -> None:
    cfg = config(tmp_path, "new", resume_from=stopped)
    train(cfg)
    assert losses(cfg.out) == reference[6:]  # steps 7 and 8 of the run that never stopped


# -- files: a FIFO spec, --data bounds, the spec read once ------------------------------------
@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging: SIGALRM after 60 s raises in the test."""
    def ring(*_: object) -> None:
        raise TimeoutError("hung")
    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.usefixtures("alarm")
@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_fifo_as_the_spec_is_refused_without_hanging(command: str, tmp_path: Path) -> None:
    fifo = tmp_path / "spec.hc"
    os.mkfifo(fifo)
    out = clean_cli([command, fifo, "-o", tmp_path / "out", "--steps", "1"])
    assert f"{fifo}: error: not a regular file (a FIFO)" in out
    assert not (tmp_path / "out").exists()


def test_the_spec_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import io

    spec = write_spec(tmp_path)
    opened: list[str] = []
    real = builtins.open

    def counting(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(spec):
            opened.append(os.fspath(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    cfg = config(tmp_path, "run", spec=str(spec), steps=2)
    train(cfg)
    assert opened == [str(spec)]
    assert (cfg.out / "spec.hc").read_text() == SPEC


def test_data_is_read_bounded(tmp_path: Path) -> None:
    """A 6 GiB file (sparse: it takes no disk) with max_bytes 200,000: only that much is
    read (whole, it would not fit in this machine's memory for the test)."""
    from hcdsl.train import data

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.write(b"some text to learn from. " * 10_000)
        f.truncate(6 << 30)
    t0 = time.perf_counter()
    corpus = data.path_corpus(big, 200_000)
    assert corpus.size == 200_000 and time.perf_counter() - t0 < 5
    folder = tmp_path / "folder"
    folder.mkdir()
    big.rename(folder / "big.txt")
    assert data.path_corpus(folder, 200_000).size == 200_000


# -- the CLI's error policy: a full disk, a read-only or file --out ---------------------------
@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on a 600 KiB tmpfs (root, where mount works); else checkpoints fail with a
    mocked ENOSPC."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)],
        capture_output=True).returncode == 0
    if not mounted:
        import errno

        def full(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(mnt / "checkpoints"))
        monkeypatch.setattr(checkpoint.torch, "save", full)
    yield mnt
    if mounted:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_full_disk_is_one_error_and_the_run_resumes(tmp_path: Path, small_disk: Path,
                                                     reference: list) -> None:
    spec = write_spec(tmp_path)
    out = small_disk / "run"
    msg = clean_cli(["train", spec, "-o", out, *FLAGS])
    assert "No space left on device" in msg and "the disk is full" in msg, msg
    assert msg.count("error:") == 1
    last = checkpoint.latest(out)
    if last is not None:  # what was written before the disk filled is intact
        assert checkpoint.problem(last, checkpoint.signature(_model()), False) is None
    if os.path.ismount(small_disk):  # make room, then continue: nothing lost
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        clean_cli(["train", spec, "-o", out, *FLAGS, "--resume"], 0)
        assert losses(out) == reference


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_file_as_out(command: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    out.write_text("mine")
    msg = clean_cli([command, spec, "-o", out, "--steps", "1", "--batch", "4", "--seq", "32",
                     "--set", "max_bytes=200000"])
    assert f"{out} is a file, not a folder" in msg
    assert out.read_text() == "mine"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("root, and no read-only mount possible here")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.parametrize("command", ["train", "compare"])
def test_a_read_only_out(command: str, tmp_path: Path, read_only: Path) -> None:
    spec = write_spec(tmp_path)
    msg = clean_cli([command, spec, "-o", read_only / "out", "--steps", "1", "--batch", "4",
                     "--seq", "32", "--set", "max_bytes=200000"])
    assert f"error: {read_only / 'out'}: " in msg
    assert "Read-only file system" in msg or "Permission denied" in msg


# -- compare never overwrites what it did not write -------------------------------------------
COMPARE = ["--steps", "2", "--batch", "4", "--seq", "32", "--warmup", "1", "--eval-every", "0",
           "--probe-every", "0", "--threads", "1", "--set", "val_sequences=8",
           "--set", "max_bytes=200000", "--set", "tensorboard=false"]


@pytest.mark.parametrize("name", ["report.html", "report.md", "loss.png", "table.json",
                                  "compare.json"])
def test_compare_refuses_an_out_holding_a_users_file(name: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text("my own notes")
    msg = clean_cli(["compare", spec, "-o", out, *COMPARE])
    assert str(out / name) in msg and "choose another --out" in msg
    assert (out / name).read_text() == "my own notes"
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing else written


def test_a_refused_compare_rerun_rewrites_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "cmp"
    clean_cli(["compare", spec, "-o", out, *COMPARE], 0)
    def files() -> dict:  # compare.lock aside: it holds who runs compare while it runs
        return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*")
                if p.is_file() and p.name != "compare.lock"}

    before = files()
    for change in (["--steps", "3"], ["--lr", "0.01"], ["--set", "weight_decay=0"]):
        msg = clean_cli(["compare", spec, "-o", out, *COMPARE, *change])
        assert "holds a run started with other settings" in msg
    assert files() == before
    # the same command again: everything is done, the report is compare's own to rewrite
    clean_cli(["compare", spec, "-o", out, *COMPARE], 0)
    (out / "report.md").write_text("edited by hand")
    msg = clean_cli(["compare", spec, "-o", out, *COMPARE])
    assert "report.md was changed since hcdsl compare wrote it" in msg


# -- a stalled rank ---------------------------------------------------------------------------
STALL_RANK_1 = """
import os, signal, threading, time
from pathlib import Path
if os.environ.get("RANK") == "1" and os.environ.get("HCDSL_TEST_STALL"):
    flag = Path(os.environ["HCDSL_TEST_STALL"])
    def stall():
        while not flag.exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGSTOP)  # stopped: alive, silent, as a hung rank
    threading.Thread(target=stall, daemon=True).start()
"""


@pytest.mark.slow  # torchrun with 2 ranks, then the timeout and torchrun's own: about 50 s
def test_a_stalled_rank_is_a_clear_error_after_the_timeout(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "ddp"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(STALL_RANK_1)
    env = {**ENV, "PYTHONPATH": f"{hook}{os.pathsep}{ENV.get('PYTHONPATH', '')}",
           "HCDSL_TEST_STALL": str(out / "metrics.jsonl")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "hcdsl", "train", str(spec), "--out", str(out),
           *FLAGS, "--batch", "2", "--steps", "1000", "--timeout", "5"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "another rank did not answer within --timeout 5 s (stalled or dead)" in output, \
        output[-3000:]
    assert "Traceback" not in proc.stderr.split("another rank did not answer")[0][-2000:]
    assert time.monotonic() - t0 < 200


@pytest.mark.slow  # torchrun with 2 ranks, killed, then resumed: about 60 s
def test_kill_9_of_the_torchrun_agent_stops_its_ranks(tmp_path: Path,
                                                      slow_env: dict[str, str]) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--standalone", "-m", "hcdsl", "train", str(spec), "--out", str(out),
           *FLAGS, "--batch", "2"]
    agent = subprocess.Popen(cmd, env=slow_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: len(step_folders(out)) >= 1, 240)
        ranks = [int(p) for p in subprocess.run(
            ["pgrep", "-P", str(agent.pid)], capture_output=True, text=True).stdout.split()]
        assert len(ranks) == 2 and all(alive(r) for r in ranks)
        agent.kill()
        agent.wait()
        wait_for(lambda: not any(alive(r) for r in ranks), 60)  # no orphan rank trains on
    finally:
        agent.kill()
    assert (out / "run.lock").read_text() == ""  # rank 0 stopped through its handler
