"""Paired statistics for `hcdsl compare`: the difference of a spec's final validation loss to a
baseline's, seed by seed (same data order and seed, so the runs are paired), as a mean with a
Student-t confidence interval, and the sentence the report writes about it.

With K paired seeds the differences d_1..d_K give mean m, sample standard deviation s and
the interval m +- t_{0.975, K-1} s / sqrt(K). The t quantile comes from the exact CDF of
Student's t for an integer number of degrees of freedom (Abramowitz & Stegun 26.7.3-4),
inverted by bisection: no SciPy needed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with `df` >= 1 degrees of freedom (exact finite series)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    theta = math.atan2(t, math.sqrt(df))  # A(t | df) = P(|T| <= |t|), signed with t
    c, s = math.cos(theta), math.sin(theta)
    if df == 1:  # Cauchy
        a = 2 / math.pi * theta
    elif df % 2:  # odd: A = (2/pi) (theta + sin (cos + 2/3 cos^3 + 2.4/(3.5) cos^5 + ...))
        term = total = c
        for k in range(3, df - 1, 2):
            term *= c * c * (k - 1) / k
            total += term
        a = 2 / math.pi * (theta + s * total)
    else:  # even: A = sin (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ...)
        term, total = 1.0, 1.0
        for k in range(2, df - 1, 2):
            term *= c * c * (k - 1) / k
            total += term
        a = s * total
    return 0.5 + 0.5 * a


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (0 < p < 1) of Student's t with `df` degrees of freedom."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Paired:
    """Paired differences spec - baseline over the seeds both finished."""

    spec: str
    baseline: str
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    level: float = 0.95

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.diffs) if self.diffs else None

    @property
    def half_width(self) -> float | None:
        """Half the confidence interval; None with fewer than two seeds (no spread to use)."""
        if self.n < 2:
            return None
        sd = statistics.stdev(self.diffs)
        return t_quantile(0.5 + self.level / 2, self.n - 1) * sd / math.sqrt(self.n)

    @property
    def interval(self) -> tuple[float, float] | None:
        h = self.half_width
        return None if h is None or self.mean is None else (self.mean - h, self.mean + h)

    def sentence(self, what: str) -> str:
        """One sentence a reader can quote, e.g. "DHC x4 is 0.019 +- 0.011 nats below
        Pre-Norm (95% interval, 3 paired seeds, whole split)"."""
        if self.n == 0:
            return f"{self.spec}: no seed finished for both it and {self.baseline}"
        seeds = f"{self.n} paired seed{'s' * (self.n != 1)}, {what}"
        if self.n < 2:
            return (f"{self.spec} - {self.baseline} = {self.mean:+.4f} nats ({seeds}); one "
                    f"seed gives no interval: run --seeds 2 or more")
        lo, hi = self.interval
        if lo <= 0 <= hi:
            return (f"{self.spec} vs {self.baseline}: no difference detected at this size "
                    f"({self.mean:+.4f} +- {self.half_width:.4f} nats, "
                    f"{self.level:.0%} interval, {seeds})")
        side = "below" if self.mean < 0 else "above"
        return (f"{self.spec} is {abs(self.mean):.4f} +- {self.half_width:.4f} nats {side} "
                f"{self.baseline} ({self.level:.0%} interval, {seeds})")


def paired(spec: str, baseline: str, values: dict[int, float | None],
           base_values: dict[int, float | None], level: float = 0.95) -> Paired:
    """The paired differences of two specs' per-seed values (seeds missing on either side
    are left out)."""
    seeds = sorted(s for s in values if values[s] is not None
                   and base_values.get(s) is not None)
    return Paired(spec, baseline, tuple(seeds),
                  tuple(values[s] - base_values[s] for s in seeds), level)
