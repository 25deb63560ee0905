"""Every command under every fault of its file arguments: a missing file, an unreadable one
(chmod 000; as root, open() made to refuse it), a directory, a PNG, and a mismatched one (a
checkpoint of another spec, a spec of another width). Each prints one located or named
error, exits non-zero, and prints no traceback and no "internal error" (that is exit 3: a
bug in hcdsl)."""

from __future__ import annotations

import builtins
import io
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import hcdsl
from hcdsl.cli import app

SPEC = """model tiny {
  dim = 16
  vocab = 32
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
FAULTS = ["missing", "unreadable", "directory", "png"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A good spec, a good checkpoint of it, another spec (dim 32) and its checkpoint."""
    good = tmp_path / "good.hc"
    good.write_text(SPEC)
    other = tmp_path / "other.hc"
    other.write_text(SPEC.replace("dim = 16", "dim = 32").replace("vocab = 32", "vocab = 64"))
    out = {"good": good, "other": other}
    for name in ("good", "other"):
        ckpt = tmp_path / f"{name}.pt"
        torch.save(hcdsl.compile(out[name], seed=0).state_dict(), ckpt)
        out[f"{name}.pt"] = ckpt
    return out


def make_fault(fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               suffix: str = ".hc", content: bytes | None = None) -> Path:
    """A path that has the fault."""
    path = tmp_path / f"fault{suffix}"
    if fault == "directory":
        path.mkdir()
    elif fault == "png":
        path.write_bytes(PNG)
    elif fault == "unreadable":
        path.write_bytes(content if content is not None else SPEC.encode())
        path.chmod(0)
        if os.geteuid() == 0:
            refuse_open(monkeypatch, path)
    return path


def refuse_open(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """open() of path raises PermissionError, as chmod 000 does for a user (root reads
    anything)."""
    real = builtins.open

    def guarded(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def clean_failure(args: list[str], *names: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    out = result.stdout + result.stderr
    assert result.exit_code not in (0, 3), f"exit {result.exit_code}: {out}"
    assert "Traceback" not in out and "internal error" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    assert ": error" in out or "Error" in out or "error:" in out, out
    for name in names:
        assert name in out, f"{name!r} not named in:\n{out}"
    return out


# -- the spec argument of every command ------------------------------------------------------
def spec_command(command: str, spec: Path, files: dict[str, Path], tmp_path: Path) -> list:
    return {
        "check": ["check", spec],
        "show": ["show", spec, "--ir"],
        "stats": ["stats", spec],
        "run": ["run", spec],
        "prove": ["prove", spec, files["good"]],
        "unfold": ["unfold", spec],
        "plot": ["plot", spec, "-o", tmp_path / "p.png"],
        "train": ["train", spec, "--out", tmp_path / "run", "--steps", "1"],
        "compare": ["compare", spec, "--out", tmp_path / "cmp", "--steps", "1"],
    }[command]


SPEC_COMMANDS = ["check", "show", "stats", "run", "prove", "unfold", "plot", "train", "compare"]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("command", SPEC_COMMANDS)
def test_a_bad_spec_file(command: str, fault: str, files: dict[str, Path], tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_fault(fault, tmp_path, monkeypatch)
    clean_failure(spec_command(command, spec, files, tmp_path), str(spec))
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp" / "runs").exists()


@pytest.mark.parametrize("fault", FAULTS)
def test_demo_on_a_bad_folder(fault: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "ok.hc").write_text(SPEC)
    if fault == "missing":
        clean_failure(["demo", tmp_path / "nowhere"], "nowhere")
        return
    bad = folder / "bad.hc"
    if fault == "directory":
        bad.mkdir()
        (bad / "inner.hc").write_text(SPEC.replace("hyper(n=2", "hyper(n=0"))
    elif fault == "png":
        bad.write_bytes(PNG)
    else:
        bad.write_text(SPEC)
        bad.chmod(0)
        if os.geteuid() == 0:
            refuse_open(monkeypatch, bad)
    out = clean_failure(["demo", folder], "bad")
    assert "ran  ok.hc" in out  # the good spec still runs


def test_prove_two_specs_of_different_width_and_vocab(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["prove", str(files["good"]), str(files["other"])])
    out = result.stdout + result.stderr
    assert result.exit_code == 1 and "Traceback" not in out, out
    assert out.startswith("NOT EQUIVALENT") and "dim 16 vs 32" in out and "vocab 32 vs 64" in out
    at_init = CliRunner().invoke(app, ["prove", str(files["good"]), str(files["other"]),
                                       "--at-init"])
    assert at_init.exit_code == 1 and "dim 16 vs 32" in at_init.stdout


# -- checkpoints --------------------------------------------------------------------------
CKPT_FAULTS = FAULTS + ["not a state_dict", "another spec's", "not a torch file"]


def bad_checkpoint(fault: str, files: dict[str, Path], tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    if fault == "another spec's":
        return files["other.pt"]
    if fault == "not a state_dict":
        path = tmp_path / "list.pt"
        torch.save([1, 2, 3], path)
        return path
    if fault == "not a torch file":
        path = tmp_path / "spec.pt"
        path.write_text(SPEC)
        return path
    return make_fault(fault, tmp_path, monkeypatch, ".pt",
                      files["good.pt"].read_bytes())


@pytest.mark.parametrize("fault", CKPT_FAULTS)
@pytest.mark.parametrize("command", ["prove", "unfold", "plot"])
def test_a_bad_checkpoint(command: str, fault: str, files: dict[str, Path], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = bad_checkpoint(fault, files, tmp_path, monkeypatch)
    good, good_pt = files["good"], files["good.pt"]
    args = {"prove": ["prove", good, good, "--checkpoint", ckpt, good_pt],
            "unfold": ["unfold", good, "--checkpoint", ckpt],
            "plot": ["plot", good, "-o", tmp_path / "p.png", "--checkpoint", ckpt]}[command]
    clean_failure(args, str(ckpt))


def test_good_checkpoints_still_work(files: dict[str, Path], tmp_path: Path) -> None:
    good, pt = str(files["good"]), str(files["good.pt"])
    assert CliRunner().invoke(app, ["unfold", good, "--checkpoint", pt, "--input", "1,2,3"]
                              ).exit_code == 0
    assert CliRunner().invoke(app, ["prove", good, good, "--checkpoint", pt, pt]).exit_code == 0


# -- token inputs ---------------------------------------------------------------------------
def bad_tokens(fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(the --input argument, what the message must name)."""
    if fault == "out of vocab":
        return "1,2,99", "99"
    if fault == "negative":
        return "1,-2,3", "-2"
    if fault == "not integers":
        return "1,two,3", "two"
    if fault == "floats":
        return "1.5,2", "1.5"
    path = tmp_path / f"{fault.replace(' ', '_')}.pt"
    if fault == "float tensor":
        torch.save(torch.rand(2, 4), path)
    elif fault == "3-d tensor":
        torch.save(torch.zeros(2, 2, 2, dtype=torch.long), path)
    elif fault == "empty tensor":
        torch.save(torch.zeros(0, dtype=torch.long), path)
    elif fault == "a dict":
        torch.save({"tokens": torch.zeros(3, dtype=torch.long)}, path)
    elif fault == "tensor out of vocab":
        torch.save(torch.tensor([[1, 40]]), path)
    else:
        path = make_fault(fault, tmp_path, monkeypatch, ".pt",
                          b"PK not really a zip")
    return str(path), str(path)


TOKEN_FAULTS = ["out of vocab", "negative", "not integers", "floats", "float tensor",
                "3-d tensor", "empty tensor", "a dict", "tensor out of vocab", "unreadable",
                "directory", "png"]


@pytest.mark.parametrize("fault", TOKEN_FAULTS)
@pytest.mark.parametrize("command", ["unfold", "plot"])
def test_bad_input_tokens(command: str, fault: str, files: dict[str, Path], tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    arg, name = bad_tokens(fault, tmp_path, monkeypatch)
    good = files["good"]
    args = {"unfold": ["unfold", good, "--input", arg],
            "plot": ["plot", good, "-o", tmp_path / "p.png", "--input", arg]}[command]
    clean_failure(args, name)


# -- outputs and other file options -----------------------------------------------------------
@pytest.mark.parametrize("fault", ["missing folder", "directory", "unknown format"])
def test_plot_to_a_bad_output(fault: str, files: dict[str, Path], tmp_path: Path) -> None:
    out = {"missing folder": tmp_path / "no" / "where.png", "directory": tmp_path,
           "unknown format": tmp_path / "p.xyz"}[fault]
    clean_failure(["plot", files["good"], "-o", out], str(out))


TRAIN_SPEC = SPEC.replace("vocab = 32", "vocab = 256")


@pytest.mark.parametrize("fault", ["missing", "unreadable", "empty folder", "folder of PNGs"])
def test_train_with_bad_data(fault: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "train.hc"
    spec.write_text(TRAIN_SPEC)
    data = tmp_path / "data"
    if fault == "unreadable":
        data = make_fault("unreadable", tmp_path, monkeypatch, ".txt", b"some text " * 100)
    elif fault == "empty folder":
        data.mkdir()
    elif fault == "folder of PNGs":
        data.mkdir()
        (data / "a.png").write_bytes(PNG)
    clean_failure(["train", spec, "--out", tmp_path / "run", "--steps", "1", "--data", data,
                   "--no-progress"], str(data))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fault", FAULTS + ["not a checkpoint", "another spec's"])
def test_train_resume_from_a_bad_folder(fault: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "train.hc"
    spec.write_text(TRAIN_SPEC)
    if fault in ("not a checkpoint", "another spec's"):
        folder = tmp_path / "step_000001"
        folder.mkdir()
        meta = [1, 2] if fault == "not a checkpoint" else {
            "step": 1, "signature": {"embed.weight": [3, 3]}, "model": "other"}
        torch.save(meta, folder / "meta.pt")
    else:
        folder = make_fault(fault, tmp_path, monkeypatch, "_ckpt")
        if fault == "unreadable":  # a folder whose meta.pt cannot be read
            folder.chmod(0o700)
            folder.unlink()
            folder.mkdir()
            (folder / "meta.pt").write_bytes(b"x")
            (folder / "meta.pt").chmod(0)
            if os.geteuid() == 0:
                refuse_open(monkeypatch, folder / "meta.pt")
    clean_failure(["train", spec, "--out", tmp_path / "run", "--steps", "1", "--resume-from",
                   folder, "--no-progress"], str(folder))
