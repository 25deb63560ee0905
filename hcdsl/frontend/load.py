"""Read a spec from a path or from text, and run the whole front end."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import Diagnostic, HcError
from hcdsl.frontend.parser import parse_syntax
from hcdsl.frontend.validate import validate
from hcdsl.spec import ModelSpec


@dataclass(frozen=True)
class Source:
    text: str
    filename: str


def read_source(spec: str | Path) -> Source:
    """A Path, or a str naming an existing file, is read; any other str is spec text."""
    if isinstance(spec, Path) or (isinstance(spec, str) and "{" not in spec):
        path = Path(spec)
        if not path.is_file():
            raise HcError([Diagnostic(f"no such spec file: {path}", hint=(
                "pass a path to a .hc file, or the spec text itself"))], str(path), "")
        return Source(path.read_text(), str(path))
    return Source(spec, "<spec>")


def load(spec: str | Path, extern_layers: Collection[str] = ()) -> tuple[ModelSpec, Source]:
    src = read_source(spec)
    syntax = parse_syntax(src.text, src.filename)
    return validate(syntax, src.filename, src.text, extern_layers), src
