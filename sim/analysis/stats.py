"""The statistics greysim reports: one copy of each interval and test, pure functions.

* :func:`t_half_width` and :func:`interval`: the two-sided t interval of a mean (the spread of
  replications of one strategy, and of their paired differences);
* :func:`two_proportion_interval`: the difference of two proportions with its Wald interval;
* :func:`mean_difference_interval`: the difference of two means with a Welch (unequal
  variance) normal interval;
* :func:`srm_test`: the sample-ratio-mismatch check, Pearson's chi-square of the arm sizes
  against the configured shares;
* :func:`minimum_detectable_difference`: the smallest difference in a proportion that a
  two-sided test at level ``alpha`` detects with the given power at the arms' sizes.

They are textbook large-sample formulas on plain numbers and arrays; nothing here reads a
table or a file.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def t_half_width(sd, n, level: float = 0.95):
    """Half width of the two-sided t interval of a mean, ``t[(1 + level) / 2, n - 1] * sd /
    sqrt(n)``, element-wise; nan where ``n < 2``."""
    n = np.asarray(n, dtype=float)
    t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    return np.where(n >= 2, t * np.asarray(sd, dtype=float) / np.sqrt(n), np.nan)


def interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t interval of the mean; (mean, nan, nan) from a single value or a
    non-finite one."""
    values = np.asarray(values, dtype=float)
    n = values.size
    mean = float(values.mean()) if n else float("nan")
    if n < 2 or not np.isfinite(values).all():
        return mean, float("nan"), float("nan")
    half = float(t_half_width(values.std(ddof=1), n, level))
    return mean, mean - half, mean + half


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2.0))


def two_proportion_interval(x1: float, n1: float, x2: float, n2: float,
                            level: float = 0.95) -> tuple[float, float, float]:
    """``p2 - p1`` and its two-sided Wald interval (unpooled standard error); nan when an arm
    is empty."""
    if n1 <= 0 or n2 <= 0:
        return (np.nan, np.nan, np.nan)
    p1, p2 = x1 / n1, x2 / n2
    se = np.sqrt(p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2)
    diff = p2 - p1
    half = _z(level) * se
    return float(diff), float(diff - half), float(diff + half)


def mean_difference_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """``mean(b) - mean(a)`` and its two-sided normal interval with Welch's standard error."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return (np.nan, np.nan, np.nan)
    diff = b.mean() - a.mean()
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    half = _z(level) * se
    return float(diff), float(diff - half), float(diff + half)


def srm_test(counts, shares) -> tuple[float, float]:
    """Sample-ratio mismatch: Pearson's chi-square statistic of the observed arm sizes against
    the configured shares, and its p-value (k - 1 degrees of freedom)."""
    counts = np.asarray(counts, dtype=np.float64)
    shares = np.asarray(shares, dtype=np.float64)
    expected = counts.sum() * shares / shares.sum()
    chi2, p = stats.chisquare(counts, expected)
    return float(chi2), float(p)


def minimum_detectable_difference(p: float, n1: float, n2: float, alpha: float = 0.05,
                                  power: float = 0.80) -> float:
    """Smallest difference from a base rate ``p`` that a two-sided two-proportion z-test at
    ``alpha`` detects with ``power``, with ``n1`` and ``n2`` units in the arms:
    ``(z[1 - alpha/2] + z[power]) * sqrt(p (1 - p) (1/n1 + 1/n2))``."""
    if n1 <= 0 or n2 <= 0 or not np.isfinite(p):
        return float("nan")
    z = stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power)
    return float(z * np.sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)))


def wilson_interval(successes: float, n: float, level: float = 0.95
                    ) -> tuple[float, float, float]:
    """A proportion ``successes / n`` and its Wilson score interval (well behaved at 0 and 1
    and for small ``n``, unlike the Wald interval); nan when ``n`` is 0."""
    if n <= 0:
        return (np.nan, np.nan, np.nan)
    p = successes / n
    z = _z(level)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at p = 0 or 1 the bound equals p up to round-off: clamp so low <= p <= high
    return float(p), float(min(p, max(0.0, centre - half))), float(max(p, min(1.0, centre + half)))
