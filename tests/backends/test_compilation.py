"""One Compilation owns the stage sequence (issue 20): each stage runs once per spec, the IR
it hands out cannot corrupt its cache, errors about declared names are located, and the
trainer compiles its spec once per run and moves weights to its probes in memory."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest
import torch

import hcdsl
import hcdsl.compiler as compiler
from hcdsl.compiler import Compilation
from hcdsl.ir.dump import dump
from tests.helpers import TRAIN_SPEC

SPECS = Path(__file__).resolve().parents[2] / "specs"
STAGES = ("check", "desugar", "build", "run_pipeline")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """How often each stage function of hcdsl/compiler.py runs (the only module that may
    call them: tests/house/test_layers.py)."""
    seen: Counter = Counter()
    for name in STAGES:
        real = getattr(compiler, name)

        def spy(*args, _real=real, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            seen[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(compiler, name, spy)
    return seen


def test_each_stage_runs_once_per_compilation(calls: Counter) -> None:
    comp = Compilation.load(TRAIN_SPEC)
    assert calls == {"check": 1, "desugar": 1}
    for _ in range(2):
        comp.raw_ir()
        comp.ir()
        hcdsl.stats(comp)
        hcdsl.compile(comp, seed=0)
        hcdsl.compile(comp, seed=0, backend="reference")
    # the spec's IR once, its passes once; stats adds the Pre-Norm baseline once
    assert calls == {"check": 1, "desugar": 2, "build": 2, "run_pipeline": 1}
    assert Compilation.load(comp) is comp and hcdsl.lower(comp) is not None
    assert calls["check"] == 1 and calls["run_pipeline"] == 1
    comp.ir(passes=None)
    comp.ir(disable=["cse"])  # another pass list: its own optimised IR
    assert calls["run_pipeline"] == 2 and calls["build"] == 2


def test_the_ir_handed_out_cannot_corrupt_the_cache() -> None:
    comp = Compilation.load(SPECS / "tiny_dhc4.hc")
    raw, opt = dump(comp.raw_ir()), dump(comp.ir())
    assert raw != opt  # the passes ran on a copy of the raw IR, not on it
    for ir in (comp.raw_ir(), comp.ir()):
        for v in list(ir.g.nodes)[:3]:
            ir.g.remove_node(v)
    model = hcdsl.compile(comp, seed=0)
    model.hc_ir.g.clear()
    assert dump(comp.raw_ir()) == raw and dump(comp.ir()) == opt
    fresh = Compilation.load(SPECS / "tiny_dhc4.hc")
    assert dump(fresh.raw_ir()) == raw and dump(fresh.ir()) == opt
    again = hcdsl.compile(comp, seed=0)
    assert dump(again.hc_ir) == opt
    assert all(torch.equal(a, b) for a, b in zip(
        hcdsl.compile(fresh, seed=0).state_dict().values(), again.state_dict().values()))


def test_an_error_about_a_setting_is_located() -> None:
    text = TRAIN_SPEC
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "vocab" in s)
    column = text.splitlines()[line - 1].index("vocab") + 1
    err = Compilation.load(text).located("too small", "setting vocab", "a hint")
    assert (err.first.span.line, err.first.span.column) == (line, column)
    assert f":{line}:{column}:" in err.render() and "a hint" in err.render()
    unwritten = Compilation.load(text).located("about the file", "setting context")
    assert unwritten.first.span is None
    built = Compilation.load(hcdsl.parse(text)).located("no source", "setting vocab")
    assert built.first.span is None and built.filename == "tiny"


def test_passes_no_longer_import_the_schemes() -> None:
    from tests.house.test_layers import MODULES, imports, ours

    for module in (m for m in MODULES if m.startswith("hcdsl.passes")):
        top, inner = imports(module)
        assert not [t for t in map(ours, top + inner) if t and t.startswith(
            ("hcdsl.schemes", "hcdsl.ir.build"))], module


@pytest.mark.usefixtures("one_thread")
def test_the_trainer_compiles_once_and_moves_weights_in_memory(
        tmp_path: Path, calls: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcdsl.train import TrainConfig, train
    from hcdsl.train.logs import read_jsonl

    made: list[str] = []  # temporary files and folders, by any tempfile function
    for name in ("mkdtemp", "mkstemp", "_mkstemp_inner"):
        real = getattr(tempfile, name)

        def spy(*args, _real=real, _name=name, **kwargs):  # noqa: ANN002, ANN003, ANN202
            made.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(tempfile, name, spy)
    saved: list[Path] = []  # every torch.save of the run, by path
    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        saved.append(Path(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    spec = tmp_path / "tiny.hc"
    spec.write_text(TRAIN_SPEC)
    cfg = TrainConfig(spec=str(spec), out=tmp_path / "run", steps=4, batch=4, seq=32,
                      warmup=1, eval_every=2, probe_every=2, ckpt_every=2, val_sequences=8,
                      max_bytes=200_000, progress=False, tensorboard=False)
    train(cfg)
    probes = read_jsonl(cfg.out / "probes.jsonl")
    assert [p["step"] for p in probes] == [0, 2, 4]
    assert all("C0" in p["connections"] for p in probes), probes[-1]["connections"]
    assert "the run's weights" in probes[-1]["connections"]["note"]
    # once: the front end, the scheme, the IR and the passes of the spec, for the counts,
    # the memory check, the model and three probes (fx and reference); plus the scheme
    # and IR of the Pre-Norm baseline that the counts measure extra parameters against
    assert calls == {"check": 1, "desugar": 2, "build": 2, "run_pipeline": 1}
    assert not made, made
    assert saved and all(cfg.out in p.parents for p in saved), saved


def test_a_wrapped_model_keeps_its_compilation(calls: Counter) -> None:
    from tests.apps.test_wrap_blocks import DIM, ViTBlock

    torch.manual_seed(0)
    wrapped = hcdsl.wrap(torch.nn.ModuleList([ViTBlock(DIM) for _ in range(2)]),
                         "hyper(n=2, dynamic)", seed=0)
    assert calls == {"check": 1, "desugar": 1, "build": 1, "run_pipeline": 1}
    comp = Compilation.load(wrapped)
    assert comp is wrapped.hc_compilation and comp.spec == wrapped.hc_spec
    assert dump(comp.ir()) == dump(wrapped.hc_ir)
    assert calls == {"check": 1, "desugar": 1, "build": 1, "run_pipeline": 1}


def test_a_compilation_for_one_question_hands_out_without_copying(
        calls: Counter, monkeypatch: pytest.MonkeyPatch) -> None:
    """once=True (hcdsl.lower, hcdsl check): the IR itself, built in place, not kept; asked
    again it is built again, and each answer is the caller's own."""
    from hcdsl.ir.graph import IR

    copies: list[int] = []
    real_copy = IR.copy
    monkeypatch.setattr(IR, "copy", lambda self: copies.append(1) or real_copy(self))
    comp = Compilation.load(TRAIN_SPEC, once=True)
    first = comp.ir()
    assert not copies and calls["build"] == 1 and calls["run_pipeline"] == 1
    second = comp.ir()
    assert second is not first and dump(second) == dump(first)
    assert calls["build"] == 2 and calls["run_pipeline"] == 2
    first.g.clear()
    assert dump(comp.ir()) == dump(second)
    hcdsl.lower(TRAIN_SPEC)  # as the old lower_program: no copy at all
    assert not copies
    hcdsl.compile(TRAIN_SPEC, seed=0)  # the raw IR kept for the modules; the passes' copy
    assert len(copies) == 1
    kept = Compilation.load(TRAIN_SPEC)  # not once: every answer a copy of the kept IR
    kept.ir(), kept.ir()
    assert len(copies) == 1 + 3 and Compilation.load(kept, once=True) is kept
