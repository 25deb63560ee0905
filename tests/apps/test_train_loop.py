"""The trainer on one process: loss goes down, exact resume, and every bad input stops with a
clear message that keeps what was already written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hcdsl.cli import app
from hcdsl.train import TrainConfig, TrainError, train
from hcdsl.train.logs import read_jsonl
from helpers import attn_ffn, model_text


def tiny(connect: str, vocab: int = 256) -> str:
    return model_text(connect, name="tiny", dim=32, vocab=vocab,
                      layers=attn_ffn(2, "mlp(hidden=64)"), body="[attn, ffn]")


def spec(tmp_path: Path, connect: str = "hyper(n=2, dynamic)", vocab: int = 256,
         name: str = "tiny.hc") -> str:
    path = tmp_path / name
    path.write_text(tiny(connect, vocab))
    return str(path)


def config(tmp_path: Path, out: str = "run", **kw: object) -> TrainConfig:
    if "spec" not in kw:
        kw["spec"] = spec(tmp_path)
    base = dict(out=tmp_path / out, steps=6, batch=4, seq=32,
                warmup=2, eval_every=3, probe_every=0, ckpt_every=0, val_sequences=8,
                max_bytes=200_000, progress=False, tensorboard=False)
    return TrainConfig(**{**base, **kw})


def losses(run: Path) -> list[tuple[float, float | None]]:
    return [(r["loss"], r.get("val_loss")) for r in read_jsonl(run / "metrics.jsonl")]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_loss_goes_down_on_the_default_corpus(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=40, batch=8, lr=3e-3, warmup=5, eval_every=20,
                 probe_every=20, max_bytes=8 << 20)
    summary = train(cfg)
    rows = read_jsonl(cfg.out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 41))
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-5:]) / 5
    assert first > 5.3 and last < first - 0.8, (first, last)  # ln 256 = 5.55 at init
    assert summary["final_val_loss"] < 4.8 and summary["done"]
    for name in ("config.json", "spec.hc", "data.json", "summary.json", "probes.jsonl"):
        assert (cfg.out / name).exists(), name
    assert json.loads((cfg.out / "data.json").read_text())["source"].startswith("python stdlib")
    probes = read_jsonl(cfg.out / "probes.jsonl")
    assert [p["step"] for p in probes] == [0, 20, 40]
    c0 = probes[-1]["connections"]["C0"]  # 2 layers: (L + 2) x (L + 2), lower-triangular
    assert len(c0) == 4 and c0[0][0] == 0 and c0[1][0] > 0
    assert probes[0]["collapse"][0]["p05"] <= probes[0]["collapse"][0]["median"] <= 1


def test_stop_and_resume_give_the_same_losses(tmp_path: Path) -> None:
    whole = config(tmp_path, "whole", accum=2)
    train(whole)
    parts = config(tmp_path, "parts", accum=2, stop_at=4)
    train(parts)
    assert len(losses(parts.out)) == 4
    train(parts.model_copy(update={"stop_at": None, "resume": True}))
    assert losses(parts.out) == losses(whole.out)  # bit for bit, val losses included
    assert len(losses(whole.out)) == 6 and losses(whole.out)[-1][1] is not None


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=50, lr=1e30, warmup=0, ckpt_every=1, keep_checkpoints=1,
                 eval_every=0)
    with pytest.raises(TrainError) as err:
        train(cfg)
    msg = str(err.value)
    rows = read_jsonl(cfg.out / "metrics.jsonl")
    bad = len(rows) + 1
    assert f"at step {bad}: stopped before applying it" in msg
    assert ("nan" in msg or "inf" in msg) and f"step_{bad - 1:06d}" in msg
    kept = sorted(p.name for p in (cfg.out / "checkpoints").iterdir())
    assert kept == [f"step_{bad - 1:06d}"]


def test_checkpoint_from_another_spec(tmp_path: Path) -> None:
    first = config(tmp_path, "hc", steps=2)
    train(first)
    ckpt = first.out / "checkpoints" / "step_000002"
    other = config(tmp_path, "pre", steps=4, resume_from=ckpt,
                   spec=spec(tmp_path, "residual", name="pre.hc"))
    with pytest.raises(TrainError, match="was written for another spec"):
        train(other)
    assert not (tmp_path / "pre" / "metrics.jsonl").exists()


def test_a_run_folder_is_never_overwritten(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=2)
    train(cfg)
    before = (cfg.out / "metrics.jsonl").read_text()
    with pytest.raises(TrainError, match="holds a run already: pass --resume"):
        train(cfg)
    with pytest.raises(TrainError, match="started with other settings .*lr=0.001"):
        train(cfg.model_copy(update={"resume": True, "lr": 0.5}))
    assert (cfg.out / "metrics.jsonl").read_text() == before


def test_vocab_smaller_than_the_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="vocab = 100 is smaller") as info:
        train(config(tmp_path, spec=spec(tmp_path, vocab=100)))
    assert re.search(r"\.hc:\d+:\d+: error", str(info.value))  # located at the setting
    assert "vocab = 100\n" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_a_body_spec_is_refused_with_a_reason(tmp_path: Path) -> None:
    body = tmp_path / "body.hc"
    body.write_text("model body {\n dim = 32\n input = hidden\n layer ffn = mlp\n"
                    " body = repeat 2 [ffn]\n connect hyper(n=2, dynamic)\n}\n")
    with pytest.raises(TrainError, match=r"body.hc:3:2: error: the spec is a body") as info:
        train(config(tmp_path, spec=str(body)))
    assert "3 |  input = hidden" in str(info.value) and "hint: train a language model" \
        in str(info.value)
    assert not (tmp_path / "run").exists()


def _cli(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_cli_errors_are_one_clean_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hc"
    bad.write_text(tiny("hyper(n=2, dynamic)").replace(
        "[attn, ffn]", "[attn, fnn]"))
    ext = tmp_path / "ext.hc"  # compiles only with a layer factory: a CompileError
    ext.write_text(tiny("residual").replace(
        "attention(heads=2)", "extern myattn(window=8)"))
    common = ["--out", str(tmp_path / "r"), "--steps", "2", "--no-progress"]
    cases = [
        (["train", str(bad), *common], "bad.hc:6:17: error: unknown layer 'fnn'"),
        (["train", str(tmp_path / "none.hc"), *common], "no such spec file"),
        (["train", str(ext), *common], "ext.hc: error: layer 'attn' uses extern 'myattn'"),
        (["train", spec(tmp_path), *common, "--data", str(tmp_path / "nope")],
         "error: --data"),
        (["train", spec(tmp_path), *common, "--set", "warmup=-1"], "--warmup"),
        (["train", spec(tmp_path), *common, "--fsdp"], "start it with torchrun"),
        (["compare", spec(tmp_path), str(bad), "--out", str(tmp_path / "c")], "bad.hc:6:17"),
    ]
    for args, want in cases:
        code, out = _cli(args)
        assert code == 1, (args, out)
        assert want in out and "Traceback" not in out, (args, out)
    assert not (tmp_path / "r").exists()  # nothing was written for any of them
