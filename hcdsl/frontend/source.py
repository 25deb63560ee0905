"""Spec text and where it came from. A `str` is always spec text; only a `Path` is read from
disk (so a service passing user text to hcdsl never reads a file by accident).

Sizes are checked here, before the parser sees a byte: at most MAX_SOURCE_BYTES of text
(a file is never read past that, so a device such as /dev/zero cannot exhaust memory) and at
most MAX_TOKENS tokens. The token count bounds the parser's work: lark's LALR parser and
the syntax tree cost about 20 microseconds per token, so a megabyte of numbers (half a
million tokens) would take ten seconds to reject; counting with one regular expression takes
a tenth of a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hcdsl.errors import Diagnostic, HcError, Span
from hcdsl.lang.limits import MAX_SOURCE_BYTES, MAX_TOKENS

# a token as the parser sees it, near enough for a budget: a string, a comment (group 1: not
# counted), a run of name or number characters, or one symbol
_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"?|(#[^\n]*)|[\w.+\-]+|[^\s\w]')


@dataclass(frozen=True)
class Source:
    text: str
    filename: str


def text_source(text: str, filename: str = "<spec>") -> Source:
    """Spec text, checked against the size limits (before the parser sees it)."""
    if not isinstance(text, str):
        raise TypeError(f"spec text must be a str, got {type(text).__name__}; pass a "
                        "pathlib.Path to read a file")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise HcError([Diagnostic(
            f"the spec is {size:,} bytes, over the limit of {MAX_SOURCE_BYTES:,} (limit "
            "'source')", None, "a spec is a few hundred lines at most; repeat blocks with "
            "`repeat N [...]` and matrices with selectors")], filename, "")
    _check_tokens(text, filename)
    return Source(text, filename)


def count_tokens(text: str) -> int:
    """The tokens of spec text, comments and white space not counted."""
    return _TOKEN.findall(text).count("")


def _check_tokens(text: str, filename: str) -> None:
    count = count_tokens(text)
    if count <= MAX_TOKENS:
        return
    seen, pos = 0, 0
    for m in _TOKEN.finditer(text):  # locate the first token over the budget
        if m.group(1) is None:
            seen += 1
            if seen > MAX_TOKENS:
                pos = m.start()
                break
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    raise HcError([Diagnostic(
        f"the spec has {count:,} tokens, over the limit of {MAX_TOKENS:,} (limit 'tokens'); "
        f"token {MAX_TOKENS + 1:,} is here", Span(line, col, line, col + 1),
        "write repeated layers with `repeat N [...]` and matrices shared by layers with "
        "selectors (`all`, `odd`, `every K`); a full 65 x 65 matrix is about 8,500 tokens")],
        filename, text)


def read_path(path: Path) -> Source:
    """The text of a spec file, or an HcError saying why it cannot be read. At most
    MAX_SOURCE_BYTES + 1 bytes are read, whatever the file is."""
    problem = None
    try:
        if path.is_file() and path.stat().st_size > MAX_SOURCE_BYTES:
            problem = (f"{path} is {path.stat().st_size:,} bytes, over the limit of "
                       f"{MAX_SOURCE_BYTES:,} for a spec (limit 'source')")
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_SOURCE_BYTES + 1)
            if len(data) > MAX_SOURCE_BYTES:
                problem = (f"{path} holds more than {MAX_SOURCE_BYTES:,} bytes, the limit for "
                           "a spec (limit 'source')")
            else:
                return text_source(data.decode("utf-8-sig"), str(path))
    except FileNotFoundError:
        problem = f"no such spec file: {path}"
    except IsADirectoryError:
        problem = f"{path} is a directory, not a spec file"
    except PermissionError:
        problem = f"cannot read {path}: permission denied"
    except UnicodeDecodeError as err:
        problem = (f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); is it a "
                   "spec file?")
    except (OSError, ValueError) as err:  # a NUL in the path, a name too long, ...
        problem = f"cannot read {path}: {getattr(err, 'strerror', None) or err}"
    raise HcError([Diagnostic(problem, None, "pass the path of a .hc file")], str(path), "")
