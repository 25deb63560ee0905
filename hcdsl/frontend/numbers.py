"""Numbers as written in a spec: the checks every weight shares (finite, within the limit
'weight'), integers shown readably however many digits they were written with, and a cap on
how many problems of one literal are reported (a 65 x 65 matrix of names is one mistake,
not 4,225)."""

from __future__ import annotations

from hcdsl.errors import ErrorSink, Span
from hcdsl.lang.limits import BY_NAME, MAX_WEIGHT, fmt_limit

PER_LITERAL = 5  # problems reported per literal list; the rest are counted in one more
SHORT = 60  # characters of a value quoted in a message


def weight_problem(value: float, text: str, what: str) -> str | None:
    """Why a number cannot be a weight (a literal matrix entry, a param's init, ...), or
    None. Written numbers too large for a float (1e999) are infinite and over the limit."""
    if abs(value) <= MAX_WEIGHT:  # False for inf and nan
        return None
    return (f"{what} = {short(text)} is over the limit of {fmt_limit(BY_NAME['weight'])} in "
            "magnitude (limit 'weight')")


def count(n: int) -> str:
    """An integer from the spec for a message: 1,024; '>= 1e15' for one with more digits."""
    return f"{n:,}" if abs(n) < 10**15 else ">= 1e15"


def short(text: str) -> str:
    """A value's text cut to SHORT characters for a message."""
    return text if len(text) <= SHORT else text[:SHORT - 3] + "..."


class Capped:
    """Reports at most PER_LITERAL problems of one literal to the sink, then one diagnostic
    counting the rest (call close())."""

    def __init__(self, err: ErrorSink, cap: int = PER_LITERAL) -> None:
        self.err, self.cap, self.seen = err, cap, 0
        self.last: Span | None = None

    def error(self, message: str, span: Span | None, hint: str | None = None) -> None:
        self.seen += 1
        if self.seen <= self.cap:
            self.err.error(message, span, hint)
        self.last = span

    def close(self, what: str) -> None:
        """One diagnostic for the problems not reported, at the last of them."""
        if self.seen > self.cap:
            self.err.error(f"... and {self.seen - self.cap:,} more {what} in this literal "
                           "(this is the last)", self.last,
                           "only the first few problems of a literal are listed")

    @property
    def ok(self) -> bool:
        return self.seen == 0
