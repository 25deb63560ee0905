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


def _looks_like_path(spec: str) -> bool:
    return bool(spec.strip()) and "{" not in spec and "\n" not in spec


def read_source(spec: str | Path) -> Source:
    """A Path, or a one-line str without '{', is a file to read; any other str is spec text."""
    if isinstance(spec, str) and not _looks_like_path(spec):
        return Source(spec, "<spec>")
    path = Path(spec)
    problem = None
    try:
        return Source(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        problem = f"no such spec file: {path}"
    except IsADirectoryError:
        problem = f"{path} is a directory, not a spec file"
    except UnicodeDecodeError as err:
        problem = f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
    except OSError as err:
        problem = f"cannot read {path}: {err.strerror or err}"
    raise HcError([Diagnostic(problem, None, "pass a path to a .hc file, or the spec text "
                              "itself (text with a '{')")], str(path), "")


def load(spec: str | Path, extern_layers: Collection[str] = ()) -> tuple[ModelSpec, Source]:
    src = read_source(spec)
    syntax = parse_syntax(src.text, src.filename)
    return validate(syntax, src.filename, src.text, extern_layers), src
