"""Diagnostics: every mistake a user can make becomes one of these, never a traceback.

A diagnostic renders as

    file.hc:LINE:COL: error: message
      LINE | the source line
           |     ^^^^
      hint: what to do about it
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WINDOW = 100  # characters of a long source line shown around the error
MAX_SHOWN = 50  # diagnostics rendered per file; the rest are counted
LONG_WORD = re.compile(r"\S{200,}")  # a name or value quoted whole would flood the terminal


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters, surrogates and other
    unprintable code points (a spec may hold any) written as escapes, tabs kept."""
    if text.isprintable():
        return text
    return "".join(c if c == "\t" or c.isprintable() else repr(c)[1:-1] for c in text)


def brief(text: str) -> str:
    """A message with every word of 200 characters or more (a name a spec made that long)
    cut to its first 100, and printable."""
    return printable(LONG_WORD.sub(lambda m: m.group()[:100] + "...", text))


@dataclass(frozen=True)
class Span:
    """1-based line/column of a piece of spec text (end is exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def of(meta: object) -> "Span":
        """The span of a lark tree (``meta``) or token."""
        return Span(
            getattr(meta, "line", 1) or 1,
            getattr(meta, "column", 1) or 1,
            getattr(meta, "end_line", None) or getattr(meta, "line", 1) or 1,
            getattr(meta, "end_column", None) or (getattr(meta, "column", 1) or 1) + 1,
        )


@dataclass(frozen=True)
class Diagnostic:
    message: str
    span: Span | None = None  # None: about the file as a whole (e.g. it does not exist)
    hint: str | None = None

    def render(self, filename: str, source: str) -> str:
        filename, message = printable(filename), brief(self.message)
        if self.span is None:
            out = [f"{filename}: error: {message}"]
        else:
            lines = source.splitlines() or [""]
            line_no = min(max(self.span.line, 1), len(lines))
            text = lines[line_no - 1]
            col = max(self.span.column, 1)
            if self.span.end_line == self.span.line:
                width = max(self.span.end_column - col, 1)
            else:
                width = max(len(text) - col + 1, 1)
            # a long line is shown as a window around the error, marked with '...'
            start = max(0, min(col - 1 - WINDOW // 2, len(text) - WINDOW))
            shown = text[start:start + WINDOW]
            width = min(width, max(len(shown) - (col - 1 - start), 1))
            before = printable(shown[:col - 1 - start])
            marked = printable(shown[col - 1 - start:col - 1 - start + width])
            after = printable(shown[col - 1 - start + width:])
            lead = "..." if start > 0 else ""
            tail = "..." if start + WINDOW < len(text) else ""
            gutter = f"{line_no:>4} | "
            # keep tabs under tabs, so the caret lines up whatever the tab width
            pad = "".join(c if c == "\t" else " " for c in lead + before)
            out = [
                f"{filename}:{line_no}:{col}: error: {message}",
                gutter + lead + before + marked + after + tail,
                " " * (len(gutter) - 2) + "| " + pad + "^" * max(len(marked), 1),
            ]
        if self.hint:
            out.append(f"  hint: {brief(self.hint)}")
        return "\n".join(out)


@dataclass
class HcError(Exception):
    """One or more diagnostics about one spec file."""

    diagnostics: list[Diagnostic]
    filename: str = "<spec>"
    source: str = ""
    extra: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        parts = [d.render(self.filename, self.source) for d in self.diagnostics[:MAX_SHOWN]]
        n = len(self.diagnostics)
        if n > MAX_SHOWN:
            parts.append(f"... {n - MAX_SHOWN:,} more errors not shown")
        parts.append(f"{n:,} error{'s' if n != 1 else ''} in {printable(self.filename)}")
        return "\n".join(parts)

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class ErrorSink:
    """Collects every validation error of a file, so all are reported at once."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(message, span, hint))

    def raise_if_any(self, filename: str, source: str) -> None:
        if self.diagnostics:
            ordered = sorted(self.diagnostics, key=lambda d: (
                (d.span.line, d.span.column) if d.span else (0, 0)))
            raise HcError(ordered, filename, source)


class CompileError(Exception):
    """An error that is not about spec text: a missing layer factory, a bad runtime shape."""
