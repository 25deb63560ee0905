"""Value types on IR edges. Shapes are per token: a batch (B, T) prefix is implicit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Tokens:
    def __str__(self) -> str:
        return "tokens"


@dataclass(frozen=True)
class Hidden:
    width: int

    def __str__(self) -> str:
        return f"h[{self.width}]"


@dataclass(frozen=True)
class Streams:
    count: int
    width: int

    def __str__(self) -> str:
        return f"H[{self.count}x{self.width}]"


@dataclass(frozen=True)
class Coef:
    rows: int
    cols: int
    dynamic: bool  # varies per token: (B, T, rows, cols) instead of (rows, cols)

    def __str__(self) -> str:
        return f"M[{self.rows}x{self.cols}{', per token' if self.dynamic else ''}]"


@dataclass(frozen=True)
class Logits:
    vocab: int

    def __str__(self) -> str:
        return f"logits[{self.vocab}]"


@dataclass(frozen=True)
class Multi:
    """The values of a layer that also returns internal taps: (output, *taps)."""

    items: tuple["Type", ...]

    def __str__(self) -> str:
        return "(" + ", ".join(map(str, self.items)) + ")"


Type = Union[Tokens, Hidden, Streams, Coef, Logits, Multi]


class IRTypeError(Exception):
    """An IR node got inputs of the wrong type or shape (a compiler bug, or a bad pass)."""


def as_streams(t: Type) -> Streams:
    """Hidden(w) counts as one stream of width w."""
    if isinstance(t, Streams):
        return t
    if isinstance(t, Hidden):
        return Streams(1, t.width)
    raise IRTypeError(f"expected streams or a hidden vector, got {t}")
