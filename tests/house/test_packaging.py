"""The wheel holds every package of the tree: pyproject's explicit list is complete."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(("hcdsl",) + p.parent.relative_to(ROOT / "hcdsl").parts)
             for p in (ROOT / "hcdsl").rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    mapped = {f"hcdsl.{d}" for d in ("backends", "grammar", "specs")}
    assert found | mapped == listed, (sorted(found | mapped - listed), sorted(listed - found - mapped))
