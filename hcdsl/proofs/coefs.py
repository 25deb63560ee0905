"""The coefficients of the prover's linear forms.

A coefficient is a polynomial in the learned entries (and the outputs of dynamic
generators, uninterpreted functions of the state). Expanding such polynomials over many
layers blows up (products of learned matrices: thousands of terms by layer 8 of DHC x4), so
every coefficient is kept as

- `exact`: the rational number when the coefficient is a constant (exact arithmetic, from
  the spec's own numbers: 0.1 is 1/10), else None;
- `mod`: its value modulo the prime P at a random point, every symbol replaced by an
  independent uniform value in Z_P (`Point`).

Two polynomials that are equal agree at every point; two that differ (total degree d) agree
at a random point with probability at most d / P (Schwartz-Zippel). With P = 2^61 - 1 and the
prover checking two independent points, a wrong EQUIVALENT needs both to collide: the error
bound printed with the verdict is computed from the largest degree seen. Constants compare
exactly (their key is the Fraction itself), so a proof without learned symbols is exact.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from fractions import Fraction

P = (1 << 61) - 1  # a Mersenne prime


class Point:
    """A random point: symbol name -> an independent uniform value in Z_P."""

    def __init__(self, key: int | None = None) -> None:
        self.key = secrets.randbits(128) if key is None else key
        self._cache: dict[str, int] = {}

    def value(self, name: str) -> int:
        out = self._cache.get(name)
        if out is None:
            digest = hashlib.blake2b(f"{self.key}:{name}".encode(), digest_size=16).digest()
            out = self._cache[name] = int.from_bytes(digest, "little") % P
        return out


def _mod_of(x: Fraction) -> int:
    return x.numerator % P * pow(x.denominator % P, -1, P) % P


@dataclass(frozen=True, slots=True)
class K:
    """A coefficient: exact when constant, always its value at the random point; `degree`
    bounds the polynomial's total degree (for the error bound); `steps` names the steps whose
    learned entries it involves (for messages)."""

    exact: Fraction | None
    mod: int
    degree: int = 0
    steps: frozenset[str] = frozenset()

    @staticmethod
    def const(x: float | int | Fraction) -> "K":
        f = x if isinstance(x, Fraction) else (
            Fraction(repr(float(x))) if isinstance(x, float) else Fraction(x))
        return K(f, _mod_of(f))

    @staticmethod
    def symbol(point: Point, name: str, step: str) -> "K":
        return K(None, point.value(name), 1, frozenset((step,)))

    @property
    def key(self) -> object:
        """What equal coefficients share: the exact value when known (no fingerprint can
        confuse two constants), else the value at the random point."""
        return self.exact if self.exact is not None else ("mod", self.mod)

    def is_zero(self) -> bool:
        return self.exact == 0 if self.exact is not None else self.mod == 0

    def __add__(self, o: "K") -> "K":
        exact = self.exact + o.exact if self.exact is not None and o.exact is not None else None
        return K(exact, (self.mod + o.mod) % P, max(self.degree, o.degree), self.steps | o.steps)

    def __mul__(self, o: "K") -> "K":
        exact = self.exact * o.exact if self.exact is not None and o.exact is not None else None
        return K(exact, self.mod * o.mod % P, self.degree + o.degree, self.steps | o.steps)

    def __neg__(self) -> "K":
        return K(-self.exact if self.exact is not None else None, -self.mod % P, self.degree,
                 self.steps)

    def inverse(self) -> "K":
        """1 / self (self nonzero); a symbolic inverse keeps its degree bound (the identity
        tests compare c·x with c·y, where the inverse cancels)."""
        if self.exact is not None:
            return K.const(1 / self.exact)
        return K(None, pow(self.mod, -1, P), self.degree, self.steps)

    def render(self) -> str:
        if self.exact is not None:
            return fmt_fraction(self.exact)
        steps = sorted(self.steps, key=_step_order)
        where = ", ".join(steps[:4]) + (", ..." if len(steps) > 4 else "")
        return f"⟨learned: {where}⟩"


def _step_order(step: str) -> tuple:
    digits = "".join(c if c.isdigit() else " " for c in step).split()
    return (int(digits[0]) if digits else 0, step)


def fmt_fraction(c: Fraction) -> str:
    if c.denominator == 1:
        return str(c.numerator)
    return f"{c.numerator}/{c.denominator}" if c.denominator < 1000 else f"{float(c):.6g}"


ZERO = K.const(0)
ONE = K.const(1)
