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

* :func:`paired_p_value`: the two-sided paired t-test of replication differences;
* :func:`holm`: Holm's step-down adjustment of many p-values (family-wise error control);
* :func:`clopper_pearson`: the exact interval of a proportion (small cells);
* :func:`upper_bound` / :func:`lower_bound`: the one-sided Clopper-Pearson bounds the gates
  use (defined in :mod:`sim.model.gates`, the model may not import analysis; re-exported).

They are textbook formulas on plain numbers and arrays; nothing here reads a table or a file.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from sim.model.gates import lower_bound, upper_bound

__all__ = ["t_half_width", "interval", "two_proportion_interval", "mean_difference_interval",
           "srm_test", "minimum_detectable_difference", "paired_p_value", "holm",
           "clopper_pearson", "upper_bound", "lower_bound"]


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
                                  power: float = 0.80, direction: str = "increase") -> float:
    """Smallest change ``d`` from a base rate ``p`` (arm 1) that a two-sided two-proportion
    z-test at ``alpha`` detects with ``power``, with ``n1`` and ``n2`` units in the arms.

    Exact for the z-test (no equal-variance shortcut): the test's critical value uses the
    pooled variance under the null, the power the unpooled variance under the alternative
    ``p2 = p + d`` (``p - d`` for ``direction="decrease"``), and ``d`` solves
    ``z[1-alpha/2] sqrt(pbar(1-pbar)(1/n1+1/n2)) + z[power] sqrt(p(1-p)/n1 + p2(1-p2)/n2) = d``.
    An increase of a small rate has the larger variance, so it needs the larger ``d``.
    """
    if n1 <= 0 or n2 <= 0 or not np.isfinite(p) or not 0.0 < p < 1.0:
        return float("nan")
    za, zb = stats.norm.ppf(1.0 - alpha / 2.0), stats.norm.ppf(power)
    sign = 1.0 if direction == "increase" else -1.0
    room = (1.0 - p) if sign > 0 else p

    def gap(d: float) -> float:
        p2 = p + sign * d
        pbar = (n1 * p + n2 * p2) / (n1 + n2)
        null = za * np.sqrt(pbar * (1.0 - pbar) * (1.0 / n1 + 1.0 / n2))
        alt = zb * np.sqrt(p * (1.0 - p) / n1 + p2 * (1.0 - p2) / n2)
        return null + alt - d

    hi = room * (1.0 - 1e-12)
    if gap(hi) > 0:
        return float("nan")  # not even the largest possible change is detectable
    return float(optimize.brentq(gap, 1e-15, hi, xtol=1e-12))


def paired_p_value(differences) -> float:
    """Two-sided p-value of the paired t-test that the mean difference is 0: 1 when every
    difference is exactly 0 (no evidence), nan with fewer than 2 finite differences."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan")
    if np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):  # no spread: no t statistic
        return 1.0 if np.all(d == 0) else 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(p_values, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment: adjusted p-values and which are significant at ``alpha``
    family-wise. nan p-values are left out of the family (and never significant)."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        steps = np.maximum.accumulate((m - np.arange(m)) * p[order])
        adjusted[order] = np.minimum(steps, 1.0)
    return adjusted, np.isfinite(adjusted) & (adjusted <= alpha)


def clopper_pearson(successes: float, trials: float,
                    level: float = 0.95) -> tuple[float, float, float]:
    """A proportion and its exact two-sided Clopper-Pearson interval; nan without trials."""
    if trials <= 0:
        return float("nan"), float("nan"), float("nan")
    tail = 0.5 + level / 2.0
    return (float(successes / trials), lower_bound(successes, trials, tail),
            upper_bound(successes, trials, tail))


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
