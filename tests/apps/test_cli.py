"""The `hcdsl` command line, through typer's CliRunner (no subprocesses)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hcdsl.cli import app

SPECS = Path(__file__).resolve().parents[2] / "specs"
BUNDLED = sorted(SPECS.glob("*.hc"))

TINY = """# a tiny Pre-Norm model
model tiny {
  dim = 32
  vocab = 64
  layer attn = attention(heads=4)
  layer ffn  = mlp(hidden=64)
  body = repeat 2 [attn, ffn]
  connect hyper(n=2, dynamic)
}
"""

BAD = """model bad {
  dim = 64
  vocab = 256
  layer ffn = mlp(hiden=128)
  body = repeat 2 [ffn, fnn]
}
"""


def invoke(*args: str):  # noqa: ANN201 - a typer Result
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.hc"
    path.write_text(TINY)
    return path


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "bad.hc"
    path.write_text(BAD)
    return path


# -- check ------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", BUNDLED, ids=lambda p: p.name)
def test_every_bundled_spec_checks(spec: Path) -> None:
    result = invoke("check", spec)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"OK {spec}:")


def test_check_ok_one_line_per_file(tiny: Path) -> None:
    result = invoke("check", tiny, SPECS / "pre_norm.hc")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("OK ") for line in lines)
    assert "DHC x2" in lines[0]


def test_check_reports_every_error_with_file_line_col(tiny: Path, bad: Path) -> None:
    result = invoke("check", tiny, bad)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"OK {tiny}")  # the good file still passes
    assert f"{bad}:4:19: error: unknown option 'hiden'" in result.stderr
    assert f"{bad}:5:25: error: unknown layer 'fnn'" in result.stderr
    assert "hint: did you mean 'hidden'?" in result.stderr
    assert "2 errors in" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_syntax_error_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.hc"
    broken.write_text("model m {\n  dim = 64\n  body = repeat 2 [a, b\n}\n")
    result = invoke("check", broken, tmp_path / "missing.hc")
    assert result.exit_code == 1
    assert re.search(rf"{re.escape(str(broken))}:3:\d+: error:", result.stderr)
    assert "no such spec file" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(tiny: Path) -> None:
    assert invoke("check").exit_code == 2
    assert invoke("frobnicate").exit_code == 2
    assert invoke("show", tiny).exit_code == 2  # needs one of --ir, --code, --dot
    assert invoke("show", tiny, "--ir", "--dot").exit_code == 2
    assert invoke("run", tiny, "--batch", "0").exit_code == 2


# -- show -------------------------------------------------------------------------------
def test_show_ir(tiny: Path) -> None:
    result = invoke("show", tiny, "--ir")
    assert result.exit_code == 0
    assert result.stdout.startswith("ir tiny  #")
    assert re.search(r"^L1\.attn = layer\(", result.stdout, re.M)
    assert "output = output()" in result.stdout


def test_show_code(tiny: Path) -> None:
    result = invoke("show", tiny, "--code")
    assert result.exit_code == 0
    assert result.stdout.startswith("def forward(self, tokens, mask = None, return_hidden = False, "
                                    "targets = None):")
    assert "self.L1_attn(" in result.stdout and "mix_streams(" in result.stdout


def test_show_dot(tiny: Path) -> None:
    result = invoke("show", tiny, "--dot")
    assert result.exit_code == 0
    assert result.stdout.startswith('digraph "tiny" {') and result.stdout.rstrip().endswith("}")
    assert '"embed" -> ' in result.stdout


def test_show_error_is_clean(bad: Path) -> None:
    result = invoke("show", bad, "--ir")
    assert result.exit_code == 1 and f"{bad}:4:19: error" in result.stderr


# -- stats ------------------------------------------------------------------------------
@pytest.mark.parametrize("name, dynamic", [("olmo_1b_shc4", False), ("olmo_1b_dhc4", True)])
def test_stats_json_olmo_1b_matches_the_paper(name: str, dynamic: bool) -> None:
    n, d, layers = 4, 2048, 32
    per_layer = n + n * (n + 1)  # B and [A_m | A_r]
    if dynamic:  # + [W_m | W_r], W_beta, s_alpha, s_beta; LayerNorm without affine
        per_layer += d * (n + 1) + d + 2
    result = invoke("stats", SPECS / f"{name}.hc", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["extra_params"] == layers * per_layer == (394_048 if dynamic else 768)
    assert data["layers"] == 32 and data["streams"] == 4 and data["blocks"] == 16
    assert data["family"] == ("DHC x4" if dynamic else "SHC x4")
    assert len(data["matrices"]) == 32 and data["matrices"][1]["matrix"][2][0] == 1.0


def test_stats_table(tiny: Path) -> None:
    result = invoke("stats", tiny)
    assert result.exit_code == 0
    extra = 4 * (2 + 2 * 3 + 32 * 3 + 32 + 2 + 2 * 32)  # the generator's norm is affine
    assert f"+{extra:,}" in result.stdout
    assert "odd" in result.stdout and "even" in result.stdout  # e_(k mod 2) alternates
    assert "Pre-Norm params" in result.stdout


def test_stats_error_is_clean(bad: Path) -> None:
    result = invoke("stats", bad)
    assert result.exit_code == 1 and "Traceback" not in result.stderr


def test_extern_layer_without_factory_is_a_clean_error(tmp_path: Path) -> None:
    spec = tmp_path / "ext.hc"
    spec.write_text(TINY.replace("attention(heads=4)", "extern myattn(window=8)"))
    assert invoke("check", spec).exit_code == 0  # checking needs no factory
    result = invoke("run", spec)
    assert result.exit_code == 1
    assert "myattn" in result.stderr and "factory" in result.stderr
    assert "Traceback" not in result.stderr


# -- run and demo -----------------------------------------------------------------------
def test_run_tiny(tiny: Path) -> None:
    result = invoke("run", tiny, "--batch", "3", "--seq", "8", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert "tokens (3, 8) -> logits (3, 8, 64)" in result.stdout
    losses = re.findall(r"loss (\d+\.\d+)", result.stdout)
    assert len(losses) == 2 and 3.0 < float(losses[0]) < 5.5  # about ln 64 = 4.16


@pytest.mark.slow
def test_run_compiled(tiny: Path) -> None:
    result = invoke("run", tiny, "--compile", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert "includes torch.compile" in result.stdout


def test_demo_on_a_folder(tiny: Path) -> None:
    result = invoke("demo", tiny.parent)
    assert result.exit_code == 0, result.stderr
    assert "tiny.hc" in result.stdout and "DHC x2" in result.stdout
    assert "ran  tiny.hc: logits (2, 16, 64)" in result.stdout
    assert "all 1 specs OK" in result.stdout


def test_demo_reports_a_bad_spec_and_goes_on(tiny: Path, bad: Path) -> None:
    result = invoke("demo", tiny.parent)
    assert result.exit_code == 1
    assert "bad.hc:4:19: error" in result.stderr and "1 of 2 specs failed" in result.stderr
    assert "ran  tiny.hc" in result.stdout


def test_demo_bundled_specs_are_installed() -> None:
    from hcdsl.cli import bundled_specs

    names = [name for name, _ in bundled_specs()]
    # every .hc under specs/, subfolders included, named by its path relative to specs/
    assert {p.relative_to(SPECS).as_posix() for p in SPECS.rglob("*.hc")} == set(names)
    assert "families/mudd_tiny.hc" in names and "custom/laurel_rw.hc" in names
    assert "olmo_1b_dhc4.hc" in names


@pytest.mark.parametrize("args", [["--version"], ["check", str(SPECS / "tiny_dhc4.hc")],
                                  ["stats", str(SPECS / "olmo_1b_dhc4.hc")],
                                  ["show", "--ir", str(SPECS / "tiny_dhc4.hc")]])
def test_commands_that_build_nothing_start_without_torch(args: list[str]) -> None:
    """Every command module registers with the app (bench, train, prove, ...), but the ones
    that build no module must not pay torch's import (about 1.2 s of CPU here)."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from hcdsl.cli import app; "
            f"r = CliRunner().invoke(app, {args!r}); "
            "print(r.exit_code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["0", "False"]


def test_train_help_groups_every_option_in_one_panel() -> None:
    """Every TrainConfig field but the spec argument sits in exactly one --help panel (a new
    field left out would be a KeyError when the CLI is built), and --help shows the panels."""
    from hcdsl.cli.train import PANELS
    from hcdsl.train.config import TrainConfig

    listed = [f for fields in PANELS.values() for f in fields]
    assert sorted(listed) == sorted(set(TrainConfig.model_fields) - {"spec"})
    for command in ("train", "compare"):
        result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, result.output
        for panel in PANELS:
            assert f"─ {panel} " in result.output, (command, panel)
