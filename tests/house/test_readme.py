"""README's examples run as shown: every ```python block executes in a fresh namespace and
each `print(...)  # expected` line prints what its comment says; the error example's spec,
written out, gives the output README shows. Small models only: a few seconds."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hcdsl.cli import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
PYTHON = re.findall(r"```python\n(.*?)```", README, re.S)
PRINTED = re.compile(r"^print\(.*\)\s+# (.*)$")


def test_readme_has_python_examples() -> None:
    assert len(PYTHON) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_python_block_runs_and_prints_what_it_says(index: int, one_thread: None) -> None:
    code = PYTHON[index]
    if "transformers" in code:
        pytest.importorskip("transformers")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index + 1}", "exec"), {})  # noqa: S102
    expected = [m.group(1).strip() for line in code.splitlines()
                if (m := PRINTED.match(line.strip()))]
    assert out.getvalue().splitlines() == expected


def _next_block(marker: str) -> str:
    """The first code block after marker."""
    rest = README[README.index(marker) + len(marker):]
    return re.search(r"```\n(.*?)```", rest, re.S).group(1)


def _rest_of_block(marker: str) -> str:
    """What follows marker (a command line inside a block) up to the block's end."""
    return README[README.index(marker) + len(marker):].split("```", 1)[0]


def test_the_error_example_is_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README shows typo.hc and what `hcdsl check typo.hc` prints for it (the file was not
    shipped: now README holds it)."""
    spec = _next_block("A spec with two mistakes, `typo.hc`:")
    shown = _next_block(spec + "```")
    command, _, want = shown.partition("\n")
    assert command == "$ hcdsl check typo.hc"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "typo.hc").write_text(spec)
    result = CliRunner().invoke(app, ["check", "typo.hc"])
    assert result.exit_code == 1
    assert result.output.strip() == want.strip()


@pytest.mark.parametrize("command", ["check", "show --ir", "show --code", "stats"])
def test_the_tours_outputs_are_real(command: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`hcdsl check/show/stats tour.hc` print what README shows (an excerpt ending in
    '...' is a prefix of the output)."""
    spec = _next_block("A spec (`tour.hc`): two layers, Hyper-Connections with two streams.")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tour.hc").write_text(spec)
    word, *flags = command.split()
    shown = _rest_of_block(f"$ hcdsl {word} tour.hc{''.join(' ' + f for f in flags)}\n")
    result = CliRunner().invoke(app, [word, "tour.hc", *flags])
    assert result.exit_code == 0, result.output
    lines = shown.rstrip("\n").splitlines()
    if lines[-1].strip() == "...":
        assert result.output.splitlines()[:len(lines) - 1] == lines[:-1]
    else:
        assert result.output.splitlines() == lines


def test_pre_norm_as_hc_names_the_fixed_matrix() -> None:
    """Pre-Norm equals HC with n = 1 only with its matrix held fixed (a learned one is equal
    at init only): README says which."""
    assert "Pre-Norm is HC with n = 1)" not in README
    assert README.count("`hyper(n=1, fixed)`") >= 2
