"""Spec text and where it came from. A `str` is always spec text; only a `Path` is read from
disk (so a service passing user text to hcdsl never reads a file by accident)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import Diagnostic, HcError
from hcdsl.lang.limits import MAX_SOURCE_BYTES


@dataclass(frozen=True)
class Source:
    text: str
    filename: str


def text_source(text: str, filename: str = "<spec>") -> Source:
    """Spec text, checked against the size limit (before the parser sees it)."""
    if not isinstance(text, str):
        raise TypeError(f"spec text must be a str, got {type(text).__name__}; pass a "
                        "pathlib.Path to read a file")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise HcError([Diagnostic(
            f"the spec is {size:,} bytes, over the limit of {MAX_SOURCE_BYTES:,} (limit "
            "'source')", None, "a spec is a few hundred lines at most; repeat blocks with "
            "`repeat N [...]` and matrices with selectors")], filename, "")
    return Source(text, filename)


def read_path(path: Path) -> Source:
    """The text of a spec file, or an HcError saying why it cannot be read."""
    problem = None
    try:
        if path.is_file() and path.stat().st_size > MAX_SOURCE_BYTES:
            problem = (f"{path} is {path.stat().st_size:,} bytes, over the limit of "
                       f"{MAX_SOURCE_BYTES:,} for a spec (limit 'source')")
        else:
            return text_source(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError:
        problem = f"no such spec file: {path}"
    except IsADirectoryError:
        problem = f"{path} is a directory, not a spec file"
    except UnicodeDecodeError as err:
        problem = f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
    except (OSError, ValueError) as err:  # permissions, a NUL in the path, ...
        problem = f"cannot read {path}: {getattr(err, 'strerror', None) or err}"
    raise HcError([Diagnostic(problem, None, "pass the path of a .hc file")], str(path), "")
