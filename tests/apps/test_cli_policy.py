"""One error policy for every command (hcdsl/cli/app.py), and the train/compare options
generated from TrainConfig's fields (hcdsl/cli/train.py).

For each command the app has (read from the app itself, so a new command must join the
table): a mistake in a spec exits 1 (2 for prove, unfold, plot) with a located message, bad
usage exits 2, and a bug in hcdsl (an exception injected into the parser) exits 3 with
"internal error" and no traceback. The options of `train` are TrainConfig's fields, each
feeding its field; compare's are the ones it does not set per run."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, Literal

import lark
import pytest
import typer
from typer.testing import CliRunner

import hcdsl.cli.train as cli_train
from hcdsl.cli import app
from hcdsl.cli.app import judge
from hcdsl.train import TrainConfig
from hcdsl.train.errors import SpecError, Stopped, TrainError

GOOD = """model tiny {
  dim = 16
  vocab = 256
  layer attn = attention(heads=2)
  layer ffn = mlp(hidden=32)
  body = [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""
BAD = GOOD.replace("[attn, ffn]", "[attn, fnn]")  # line 6: an unknown layer
WHERE = "bad.hc:6:"

pytestmark = pytest.mark.usefixtures("one_thread")


def commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)


def invoke(args: list) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout + result.stderr, result.exception


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "good.hc").write_text(GOOD)
    (tmp_path / "bad.hc").write_text(BAD)
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "bad.hc").write_text(BAD)
    for name, spec in (("good", "good.hc"), ("bad", "bad.hc")):  # what compare gives a worker
        cfg = TrainConfig(spec=str(tmp_path / spec), out=tmp_path / f"run_{name}", steps=1,
                          batch=2, seq=8, progress=False, tensorboard=False,
                          max_bytes=100_000)
        (tmp_path / f"{name}.json").write_text(cfg.model_dump_json())
    return {"dir": tmp_path, "good": tmp_path / "good.hc", "bad": tmp_path / "bad.hc",
            "folder": folder}


def spec_args(name: str, f: dict[str, Path], spec: str) -> list:
    """The command line of command `name` on the spec `spec` ("good" or "bad")."""
    s, out = f[spec], f["dir"] / "out"
    return {
        "check": ["check", s], "stats": ["stats", s], "show": ["show", s, "--ir"],
        "run": ["run", s], "demo": ["demo", f["folder"] if spec == "bad" else f["dir"]],
        "prove": ["prove", s, f["good"]], "unfold": ["unfold", s],
        "plot": ["plot", s, "-o", out.with_suffix(".png")], "sample": ["sample", s, "-n", "1"],
        "train": ["train", s, "-o", out, "--steps", "1", "--no-progress"],
        "compare": ["compare", f["good"], s, "-o", out, "--steps", "1"],
        "bench": ["bench", s, "--no-compile", "--no-package", "--no-memory", "--rounds", "1"],
        "worker": ["worker", f["dir"] / f"{spec}.json"],
    }[name]


SPEC_ERROR_EXIT = {"prove": 2, "unfold": 2, "plot": 2}  # prove's 1 means "not equivalent"


def test_the_table_has_every_command(files: dict[str, Path]) -> None:
    for name in commands():
        spec_args(name, files, "bad")  # a KeyError names a command the table lacks


@pytest.mark.parametrize("name", sorted(commands()))
def test_a_mistake_in_a_spec(name: str, files: dict[str, Path]) -> None:
    code, out, exc = invoke(spec_args(name, files, "bad"))
    assert code == SPEC_ERROR_EXIT.get(name, 1), out
    assert WHERE in out and "unknown layer 'fnn'" in out, out
    assert "Traceback" not in out and "internal error" not in out, out
    assert exc is None or isinstance(exc, SystemExit), repr(exc)


@pytest.mark.parametrize("name", sorted(commands()))
def test_bad_usage_exits_2(name: str, files: dict[str, Path]) -> None:
    code, out, _ = invoke([*spec_args(name, files, "good"), "--no-such-option"])
    assert code == 2 and "No such option" in out, out


@pytest.mark.parametrize("name", ["run", "sample", "bench"])
def test_an_unknown_device_is_bad_usage(name: str, files: dict[str, Path]) -> None:
    """parse_device's BadParameter is usage (2) wherever it is raised, also inside a
    command's body (sample's), not an internal error (3)."""
    code, out, _ = invoke([*spec_args(name, files, "good"), "--device", "nodevice"])
    assert code == 2 and "Invalid value for --device" in out, out
    assert "internal error" not in out, out


@pytest.mark.parametrize("name", sorted(commands()))
def test_a_bug_in_hcdsl_exits_3(name: str, files: dict[str, Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(lark.Lark, "parse", broken)  # every command parses a spec
    code, out, _ = invoke(spec_args(name, files, "good"))
    assert code == 3, out
    assert "internal error in hcdsl" in out and "RuntimeError: injected fault" in out, out
    assert "Traceback" not in out and "hcdsl --debug" in out, out


def test_the_policy_reads_the_type_of_a_training_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert judge(TrainError("no data"), "train") == ("error: no data", 1)
    located = "a.hc:3:4: error: unknown layer 'x'"
    assert judge(SpecError(located), "train") == (located, 1)  # printed as it is
    assert judge(Stopped("stopped by SIGTERM", 143), "train") == ("error: stopped by SIGTERM",
                                                                  143)
    # a message that merely contains ": error: " is not taken for a located one
    assert judge(TrainError("2 runs failed: s0: error: x"), "compare")[0].startswith("error: ")
    monkeypatch.setenv("RANK", "1")  # under torchrun: the rank says who it is
    assert judge(TrainError("no data"), "train") == ("rank 1: error: no data", 1)
    assert judge(RuntimeError("a bug"), "train") is None


# -- the train and compare options are TrainConfig's fields -----------------------------------
def unwrap(annotation: Any) -> Any:
    """X of `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def other_value(name: str, tmp: Path) -> Any:
    """A valid value of the field, different from its default."""
    info = TrainConfig.model_fields[name]
    kind, default = unwrap(info.annotation), info.default
    if typing.get_origin(kind) is Literal:
        return next(c for c in typing.get_args(kind) if c != default)
    if kind is bool:
        return not default
    if kind is int:
        return 3 if default is None else default + 1
    if kind is float:
        return default / 2
    if kind is Path:
        return tmp / name
    assert kind is str and name in ("device", "spec", "pp_split"), name
    if name == "pp_split":  # layers per pipeline stage (alone: 2 stages)
        return "1,1"
    return "cpu" if name == "device" else str(tmp / "other.hc")


def as_flags(name: str, value: Any) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]


def option_names(name: str) -> dict[str, Any]:
    return {p.name: p for p in commands()[name].params}


def test_train_has_one_option_per_field_with_its_type_default_and_help() -> None:
    params = option_names("train")
    fields = TrainConfig.model_fields
    assert set(params) == {*fields, "set_"}  # spec is the argument
    assert params["spec"].param_type_name == "argument"
    for name, info in fields.items():
        if name == "spec":
            continue
        p = params[name]
        assert "--" + name.replace("_", "-") in p.opts, p.opts
        assert info.description and p.help.startswith(info.description), name
        assert p.default is None  # not given: TrainConfig's own default applies
        kinds = [unwrap(info.annotation)]
        if kinds[0] is bool:
            assert p.secondary_opts == ["--no-" + name.replace("_", "-")], name
        elif typing.get_origin(kinds[0]) is Literal:
            assert p.metavar == "[" + "|".join(typing.get_args(kinds[0])) + "]"
        else:
            assert p.type_descriptor.annotation is kinds[0], name  # int, float, Path, str
        if not info.is_required() and info.default is not None and kinds[0] is not bool:
            assert p.help.endswith(f" \\[default: {info.default}]"), name  # rich markup


def test_every_train_flag_sets_its_field(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TrainConfig] = []
    monkeypatch.setattr(cli_train, "run_train", seen.append)
    spec = tmp_path / "tiny.hc"
    spec.write_text(GOOD)
    for name in TrainConfig.model_fields:
        if name == "spec":
            continue
        value = other_value(name, tmp_path)
        code, out, _ = invoke(["train", spec, *as_flags(name, value)])
        assert code == 0, (name, out)
        assert getattr(seen[-1], name) == value, name
        assert seen[-1].spec == str(spec)
    # nothing given: TrainConfig's defaults, the run folder runs/SPEC-sSEED
    invoke(["train", spec, "--set", "seed=4"])
    assert seen[-1].out == Path("runs/tiny-s4") and seen[-1].steps == \
        TrainConfig.model_fields["steps"].default
    invoke(["train", spec, "--steps", "5", "--set", "steps=6"])  # --set wins over a flag
    assert seen[-1].steps == 6


def test_compare_takes_every_field_it_does_not_set_per_run(tmp_path: Path) -> None:
    """compare's options: the fields plan() keeps (it overrides spec, seed, out, ...), except
    resume_from (one checkpoint cannot continue several runs); each reaches every run."""
    from hcdsl.train.compare import plan

    spec = tmp_path / "tiny.hc"
    spec.write_text(GOOD)
    kept = set()
    for name, info in TrainConfig.model_fields.items():
        values = [other_value(name, tmp_path)]
        if not info.is_required() and info.default is not None:
            values.append(info.default)  # plan may set a field to the value we chose
        if all(getattr(c, name) == value for value in values
               for _, c in plan([str(spec)], tmp_path / "cmp", 2, {name: value}, jobs=1)):
            kept.add(name)
    params = option_names("compare")
    own = {"specs", "out", "seeds", "jobs", "baseline", "set_"}
    assert set(params) - own == kept - {"resume_from"}
    assert {"out", "seed", "resume", "progress"}.isdisjoint(kept) and "steps" in kept


def test_train_help_lists_the_fields(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "250"},
                                terminal_width=250)
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for name, info in TrainConfig.model_fields.items():
        if name != "spec":
            assert "--" + name.replace("_", "-") in text, name
    assert "optimizer steps [default: 1000]" in text  # a field's description and default
