"""docs/security.md says what is true: its limits table is the code's, every torch.load is
safe, a spec reaches Python only through the layers the caller passes, and the grammar
cache is used only from a private directory."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from torch import nn

import hcdsl
from hcdsl.errors import CompileError
from hcdsl.frontend.parser import _cache_file
from hcdsl.lang.limits import markdown

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"


def test_the_limits_table_is_the_codes() -> None:
    assert markdown() in DOC.read_text(), (
        "docs/security.md's limits table differs from hcdsl/lang/limits.py; paste:\n"
        + markdown())


def test_the_readme_points_to_the_security_doc() -> None:
    readme = (ROOT / "README.md").read_text()
    errors = readme[readme.index("## Errors"):readme.index("## The language")]
    assert "docs/security.md" in errors


def test_every_torch_load_is_weights_only() -> None:
    calls = []
    for path in [*(ROOT / "hcdsl").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                calls.append(path)
                safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant)
                           and k.value.value is True for k in node.keywords)
                assert safe, f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
    assert len(calls) >= 4  # the checker sees them


EXTERN = "model m { dim = 8 vocab = 16 layer a = extern %s(k=2) body = [a] }"


@pytest.mark.parametrize("name", ["print", "open", "__import__", "os", "eval", "Linear"])
def test_an_extern_name_reaches_only_the_layers_passed(name: str) -> None:
    with pytest.raises(CompileError, match=f"uses extern '{name}', but no factory was given"):
        hcdsl.compile(EXTERN % name)
    seen = []

    def factory(dim: int, k: int) -> nn.Module:
        seen.append((dim, k))
        return nn.Linear(dim, dim)

    hcdsl.compile(EXTERN % name, layers={name: factory})
    assert seen == [(8, 2)]


def test_the_grammar_cache_lives_in_a_private_directory(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = _cache_file("grammar text")
    assert isinstance(path, str) and path.startswith(str(tmp_path / "cache" / "hcdsl"))
    assert stat.S_IMODE(os.stat(tmp_path / "cache" / "hcdsl").st_mode) == 0o700
    (tmp_path / "cache" / "hcdsl").chmod(0o777)  # others could write a pickle there
    assert _cache_file("grammar text") is False
