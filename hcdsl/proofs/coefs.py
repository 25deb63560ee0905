"""The coefficients of the prover's linear forms.

A coefficient is a polynomial in the learned entries (and the outputs of dynamic
generators, uninterpreted functions of the state). Expanding such polynomials over many
layers blows up (products of learned matrices: thousands of terms by layer 8 of DHC x4), so
every coefficient is kept as

- `exact`: the rational number when the coefficient is a constant (exact arithmetic, from
  the spec's own numbers: a float is read as the simplest rational it rounds from, so the
  spec's 0.1 is 1/10 and a mean's 1/3 is 1/3: `exact`), else None;
- `mod`: its value modulo the prime P at a random point, every symbol replaced by an
  independent uniform value in Z_P (`Point`).

Two polynomials that are equal agree at every point; two that differ (total degree d) agree
at a random point with probability at most d / P (Schwartz-Zippel). With P = 2^61 - 1 and the
prover checking two independent points, a wrong EQUIVALENT needs both to collide: the error
bound printed with the verdict is computed from the largest degree seen. Constants compare
exactly (K.same: two constants by their Fractions; forms are interned by the values at the
point and checked for exact agreement: terms.py), so a proof without learned symbols is
exact, and a learned coefficient that cancels to a constant equals that constant.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from fractions import Fraction

P = (1 << 61) - 1  # a Mersenne prime
SIMPLE = 10**6  # the largest denominator read as a simple fraction


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
    den = x.denominator % P
    if den == 0:  # (a denominator divisible by P: no value mod P; a fixed stand-in, and
        return 0  # constants compare by their exact value anyway)
    return x.numerator % P * pow(den, -1, P) % P


def _simplest_between(lo: Fraction, hi: Fraction) -> Fraction:
    """The rational with the smallest denominator in [lo, hi] (0 <= lo <= hi)."""
    whole = lo.numerator // lo.denominator
    if whole == lo or whole + 1 <= hi:
        return Fraction(whole if whole == lo else whole + 1)
    return whole + 1 / _simplest_between(1 / (hi - whole), 1 / (lo - whole))


def exact(x: float | int | Fraction) -> Fraction:
    """The exact rational a number stands for: an int or Fraction as it is; a float as the
    simplest rational that rounds to it when that is a simple fraction (denominator at most
    SIMPLE: the float 1/3 a mean readout holds is 1/3, 2.3333333333333335 is 7/3), else the
    shortest decimal that rounds to it (the spec's 0.1 is 1/10, 1e-170 is 10^-170, so
    4e-170 is exactly 4 times it). Either rounds to the float the models hold: the prover's
    number and the model's differ by less than half an ulp."""
    if not isinstance(x, float):
        return Fraction(x)
    if x == 0 or not math.isfinite(x):
        return Fraction(0) if x == 0 else Fraction(repr(x))  # (inf/nan: an error upstream)
    a = abs(x)
    half = Fraction(math.ulp(a)) / 2
    best = _simplest_between(Fraction(a) - half, Fraction(a) + half)
    if best.denominator > SIMPLE or float(best) != a:
        best = Fraction(repr(a))
    return best if x > 0 else -best


@dataclass(frozen=True, slots=True)
class K:
    """A coefficient: exact when constant, always its value at the random point; `degree`
    bounds the polynomial's total degree (for the error bound); `steps` names the steps whose
    learned entries it involves (for messages); `content` is a known rational factor of a
    symbolic coefficient (value = content · a polynomial), kept through products with
    constants and sums of equal contents, so sign(c) is known up to that polynomial's."""

    exact: Fraction | None
    mod: int
    degree: int = 0
    steps: frozenset[str] = frozenset()
    content: Fraction = Fraction(1)

    @staticmethod
    def const(x: float | int | Fraction) -> "K":
        f = exact(x)
        return K(f, _mod_of(f))

    @staticmethod
    def symbol(point: Point, name: str, step: str) -> "K":
        return K(None, point.value(name), 1, frozenset((step,)))

    @property
    def key(self) -> object:
        """What equal coefficients share: the exact value when known (no fingerprint can
        confuse two constants), else the value at the random point."""
        return self.exact if self.exact is not None else ("mod", self.mod)

    def same(self, o: "K") -> bool:
        """Equal coefficients: two constants by their exact values; otherwise by the value
        at the random point (a learned coefficient that cancels to a constant, c - c + 1,
        equals that constant)."""
        if self.exact is not None and o.exact is not None:
            return self.exact == o.exact
        return self.mod == o.mod

    def is_zero(self) -> bool:
        return self.exact == 0 if self.exact is not None else self.mod == 0

    def _factor(self) -> Fraction:
        return self.exact if self.exact is not None else self.content

    def __add__(self, o: "K") -> "K":
        mod, steps = (self.mod + o.mod) % P, self.steps | o.steps
        if self.exact is not None and o.exact is not None:
            return K(self.exact + o.exact, mod)
        same = self.exact is None and o.exact is None and self.content == o.content
        return K(None, mod, max(self.degree, o.degree), steps,
                 self.content if same else Fraction(1))

    def __mul__(self, o: "K") -> "K":
        mod, steps = self.mod * o.mod % P, self.steps | o.steps
        if self.exact is not None and o.exact is not None:
            return K(self.exact * o.exact, mod)
        return K(None, mod, self.degree + o.degree, steps, self._factor() * o._factor())

    def __neg__(self) -> "K":
        if self.exact is not None:
            return K(-self.exact, -self.mod % P)
        return K(None, -self.mod % P, self.degree, self.steps, -self.content)

    def inverse(self) -> "K":
        """1 / self (self nonzero); a symbolic inverse keeps its degree bound (the identity
        tests compare c·x with c·y, where the inverse cancels)."""
        if self.exact is not None:
            return K.const(1 / self.exact)
        return K(None, pow(self.mod, -1, P), self.degree, self.steps, 1 / self.content)

    def sign(self) -> "K | None":
        """sign(self) for a symbolic coefficient: the sign of its content times an
        uninterpreted ±1 of its polynomial part (one symbol per polynomial, by its value at
        the point: equal polynomials share it); None when it cannot be formed (the value or
        the content is 0 at the point)."""
        content = _mod_of(self.content)
        if self.exact is not None or self.mod == 0 or content == 0:
            return None
        part = self.mod * pow(content, -1, P) % P
        digest = hashlib.blake2b(f"sign:{part}".encode(), digest_size=16).digest()
        s = K(None, int.from_bytes(digest, "little") % P, 1, self.steps)
        return s if self.content > 0 else -s

    def render(self) -> str:
        if self.exact is not None:
            return fmt_fraction(self.exact)
        steps = sorted(self.steps, key=_step_order)
        where = ", ".join(steps[:4]) + (", ..." if len(steps) > 4 else "")
        return f"⟨learned: {where}⟩"


def _step_order(step: str) -> tuple:
    digits = "".join(c if c.isdigit() else " " for c in step).split()
    return (int(digits[0]) if digits else 0, step)


def fmt_fraction(c: Fraction, digits: int = 6) -> str:
    if c.denominator == 1 and abs(c.numerator) < 10**15:
        return str(c.numerator)
    if c.denominator < 1000 and abs(c.numerator) < 10**15:
        return f"{c.numerator}/{c.denominator}"
    try:
        return f"{float(c):.{digits}g}"
    except OverflowError:  # beyond a float: its order of magnitude
        exponent = len(str(abs(c.numerator))) - len(str(c.denominator))
        return f"{'-' if c < 0 else ''}~1e{exponent}"


ZERO = K.const(0)
ONE = K.const(1)
