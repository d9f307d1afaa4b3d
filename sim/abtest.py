"""A/B arms and champion/challenger: per-arm tables and the statistics that compare them.

The statistics are textbook large-sample formulas, pure functions of counts:

* :func:`two_proportion_interval`: the difference of two proportions with its Wald interval;
* :func:`mean_difference_interval`: the difference of two means with a Welch (unequal
  variance) normal interval;
* :func:`srm_test`: the sample-ratio-mismatch check, Pearson's chi-square of the arm sizes
  against the configured shares;
* :func:`minimum_detectable_difference`: the smallest difference in a proportion that a
  two-sided test at level ``alpha`` detects with the given power at the arms' sizes.

Intervals and the SRM check are computed on simulated users, the sample the simulated
figures actually come from (a weighted count would claim ``weight`` times the precision the
simulation has); the minimum detectable difference is given both at the real arm sizes (what
the bank's own experiment could detect) and at the simulated ones (what this simulation can
resolve). Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from .population import Population

if TYPE_CHECKING:
    from .credit import Book
    from .engine import Result
    from .scenario import AB

ARM_COLUMNS = ("arm", "share", "users", "accounts", "invited", "visible", "borrowers",
               "ever_invited", "defaults", "default_rate", "default_rate_12m", "loss",
               "holdout", "holdout_defaults", "holdout_default_rate")
SWAP_CELLS = ("both", "champion_only", "challenger_only", "neither")


# --------------------------------------------------------------------------- statistics


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


def mean_difference_interval(a: np.ndarray, b: np.ndarray,
                             level: float = 0.95) -> tuple[float, float, float]:
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


# --------------------------------------------------------------------------- arms


def arm_segment_rows(arm: np.ndarray, names: tuple[str, ...], pop: Population,
                     visible: np.ndarray, per_user: dict[str, np.ndarray], *, date: dt.date,
                     month: int) -> list[dict]:
    """Rows of the segment table for the dimension ``arm`` at one month end (the recorder's
    columns and units: weighted counts, loss in CNY)."""
    k, w = len(names), pop.weight
    codes = arm.astype(np.intp) if k > 1 else None

    # Without arms every user is in the one arm "all": plain counts and sums, no pass per code
    # (the sums are of integers, so they are the same either way).
    def count(mask):
        if codes is None:
            return np.array([np.count_nonzero(mask)])
        return np.bincount(codes[mask], minlength=k)[:k]

    def total(values):
        if codes is None:
            return np.array([values.sum(dtype=np.float64)])
        return np.bincount(codes, weights=values.astype(np.float64), minlength=k)[:k]

    population = np.array([arm.size]) if codes is None else np.bincount(codes, minlength=k)[:k]
    eligible, invited, shown = count(pop.eligible), count(pop.invited), count(visible)
    borrowers, defaults = total(per_user["borrowers"]), total(per_user["defaults"])
    loss = total(per_user["loss"])
    rows = []
    for i, name in enumerate(names):
        n = population[i]
        rows.append({
            "date": date, "month": month, "dimension": "arm", "value": name,
            "population": n * w, "eligible": eligible[i] * w, "invited": invited[i] * w,
            "visible": shown[i] * w, "access_rate": invited[i] / n if n else np.nan,
            "visible_rate": shown[i] / n if n else np.nan, "borrowers": borrowers[i] * w,
            "defaults": defaults[i] * w, "loss": loss[i] * w / 100.0,
        })
    return rows


def trailing_default_rate(history: pd.DataFrame) -> float:
    """The monthly table's ``default_rate_12m`` from one segment's monthly rows: defaults of
    the last 12 months (fewer, annualised, early on) over the mean borrowers in them."""
    history = history.sort_values("month")
    window = history.tail(12)
    months = len(window)
    if months == 0:
        return float("nan")
    before = history["defaults"].iloc[-months - 1] if len(history) > months else 0.0
    new = history["defaults"].iloc[-1] - before
    borrowers = window["borrowers"].mean()
    return float(new * 12.0 / months / borrowers) if borrowers > 0 else float("nan")


def arm_table(arm: np.ndarray, names: tuple[str, ...], shares: list[float], pop: Population,
              book: Book, holdout: np.ndarray, history: pd.DataFrame) -> pd.DataFrame:
    """One row per arm at the horizon, weighted: its users (simulated) and accounts (real),
    invited and visible now, borrowers, accounts ever invited and how many of them defaulted
    (``default_rate`` per ever-invited account), the trailing ``default_rate_12m`` (as in
    the monthly table), net charge-off loss in CNY, and its holdout below the cut-off.

    ``history`` holds the arm segment rows of every month (:func:`arm_segment_rows`).
    """
    k, w = len(names), pop.weight
    codes = arm.astype(np.intp)
    ever = pop.vintage >= 0
    defaulted = book.default_month >= 0

    def count(mask):
        return np.bincount(codes[mask], minlength=k)[:k]

    users = np.bincount(codes, minlength=k)[:k]
    n_ever, n_def = count(ever), count(ever & defaulted)
    n_hold, n_hold_def = count(holdout), count(holdout & defaulted)
    last = history[history["month"] == history["month"].max()].set_index("value")
    rows = []
    for i, name in enumerate(names):
        now = last.loc[name] if name in last.index else None
        rows.append({
            "arm": name, "share": shares[i], "users": int(users[i]),
            "accounts": users[i] * w,
            "invited": now["invited"] if now is not None else np.nan,
            "visible": now["visible"] if now is not None else np.nan,
            "borrowers": now["borrowers"] if now is not None else np.nan,
            "ever_invited": n_ever[i] * w, "defaults": n_def[i] * w,
            "default_rate": n_def[i] / n_ever[i] if n_ever[i] else np.nan,
            "default_rate_12m": trailing_default_rate(history[history["value"] == name]),
            "loss": now["loss"] if now is not None else np.nan,
            "holdout": n_hold[i] * w, "holdout_defaults": n_hold_def[i] * w,
            "holdout_default_rate": n_hold_def[i] / n_hold[i] if n_hold[i] else np.nan,
        })
    return pd.DataFrame(rows, columns=list(ARM_COLUMNS))


def ab_summary(arm: np.ndarray, names: tuple[str, ...], pop: Population, book: Book,
               ab: AB, level: float = 0.95) -> dict:
    """The A/B report: sample-ratio check, and each arm against the first one (the control):
    differences in coverage, default rate and loss per account with their intervals, and the
    minimum detectable difference in default rate at the arms' sizes (80% power, 5% two-sided).
    """
    k, w = len(names), pop.weight
    codes = arm.astype(np.intp)
    ever = pop.vintage >= 0
    defaulted = book.default_month >= 0
    users = np.bincount(codes, minlength=k)[:k]
    invited = np.bincount(codes[pop.invited], minlength=k)[:k]
    n_ever = np.bincount(codes[ever], minlength=k)[:k]
    n_def = np.bincount(codes[ever & defaulted], minlength=k)[:k]
    loss = book.cum_loss.astype(np.float64) / 100.0  # CNY per simulated user
    shares = [a.share for a in ab.arms.values()]
    chi2, p = srm_test(users, shares)
    out = {
        "salt": ab.salt,
        "control": names[0],
        "srm": {"users": [int(u) for u in users], "shares": shares, "chi2": chi2,
                "p_value": p, "alpha": ab.srm_alpha, "mismatch": bool(p < ab.srm_alpha)},
        "arms": {},
    }
    # the base rate of the detectable difference: the control's, or the pooled one when the
    # control has no default yet (a base rate of 0 would claim any difference is detectable)
    base_rate = n_def[0] / n_ever[0] if n_def[0] else (
        n_def.sum() / n_ever.sum() if n_def.sum() else float("nan"))
    for i, name in enumerate(names):
        entry = {
            "users": int(users[i]), "accounts": float(users[i] * w),
            "ever_invited_users": int(n_ever[i]), "ever_invited": float(n_ever[i] * w),
            "default_users": int(n_def[i]),
            "invited_share": float(invited[i] / users[i]) if users[i] else None,
            "default_rate": float(n_def[i] / n_ever[i]) if n_ever[i] else None,
        }
        if i > 0:
            entry["vs_control"] = {
                "invited_share": _interval(two_proportion_interval(
                    invited[0], users[0], invited[i], users[i], level)),
                "default_rate": _interval(two_proportion_interval(
                    n_def[0], n_ever[0], n_def[i], n_ever[i], level)),
                "loss_per_invited": _interval(mean_difference_interval(
                    loss[ever & (codes == 0)], loss[ever & (codes == i)], level)),
                "mde_base_rate": _num(base_rate),
                "mde_default_rate": _num(minimum_detectable_difference(
                    base_rate, n_ever[0] * w, n_ever[i] * w)),
                "mde_default_rate_simulated": _num(minimum_detectable_difference(
                    base_rate, n_ever[0], n_ever[i])),
            }
        out["arms"][name] = entry
    return out


def _interval(values: tuple[float, float, float]) -> dict:
    diff, lo, hi = values
    return {"diff": _num(diff), "ci_low": _num(lo), "ci_high": _num(hi)}


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def small_arm_warnings(arms: pd.DataFrame, users: dict[str, int],
                       min_accounts: float) -> list[str]:
    """A warning for every arm with fewer ever-invited accounts than ``min_accounts``, counted
    in real accounts or in simulated users, whichever is smaller (a simulated arm of a few
    hundred users measures nothing, whatever it stands for)."""
    out = []
    for row in arms.itertuples():
        sim_users = users.get(row.arm, 0)
        n = min(row.ever_invited, sim_users)
        if n < min_accounts:
            unit = "simulated users" if sim_users < row.ever_invited else "accounts"
            out.append(f"arm '{row.arm}' is too small to measure: {n:,.0f} invited {unit}, "
                       f"under the {min_accounts:,.0f} of ab.min_arm_accounts; its default "
                       f"rate and differences are mostly noise")
    return out


# --------------------------------------------------------------------------- swap set


def outcomes(result: Result) -> pd.DataFrame:
    """Compact per-user outcome of a run, one row per simulated user: arm, ever invited,
    defaulted by the horizon, in a holdout, and the latent 12-month default probability the
    simulator knows (the bank does not)."""
    pop, book = result.population, result.book
    arm = result.arm if result.arm is not None else np.zeros(pop.n, dtype=np.int8)
    holdout = result.holdout if result.holdout is not None else np.zeros(pop.n, dtype=bool)
    hazard = pop.hazard.astype(np.float64)
    return pd.DataFrame({
        "arm": pd.Categorical.from_codes(arm.astype(np.int64),
                                         categories=list(result.arm_names)),
        "ever_invited": pop.vintage >= 0,
        "defaulted": book.default_month >= 0,
        "holdout": holdout,
        "latent_pd_12m": 1.0 - (1.0 - hazard) ** 12,
    })


def swap_set(champion: Result, challenger: Result) -> pd.DataFrame:
    """The swap-set table of two strategies run on the same population (common random
    numbers): users invited by both, by the champion only, by the challenger only, by neither,
    with each cell's accounts, the default rate observed in each run that invited it, and the
    latent 12-month default probability (what the bank would never see for ``neither``)."""
    if champion.population.weight != challenger.population.weight:
        raise ValueError("the swap set needs two runs on the same population: the same "
                         "population keys and seed (common random numbers)")
    return swap_set_of(outcomes(champion), outcomes(challenger), champion.population.weight)


def swap_set_of(a: pd.DataFrame, b: pd.DataFrame, weight: float) -> pd.DataFrame:
    """:func:`swap_set` from two runs' :func:`outcomes` (what worker processes send back)."""
    same = len(a) == len(b) and np.array_equal(a["latent_pd_12m"].to_numpy(),
                                               b["latent_pd_12m"].to_numpy())
    if not same:
        raise ValueError("the swap set needs two runs on the same population: the same "
                         "population keys and seed (common random numbers)")
    ia, ib = a["ever_invited"].to_numpy(), b["ever_invited"].to_numpy()
    cells = {"both": ia & ib, "champion_only": ia & ~ib, "challenger_only": ~ia & ib,
             "neither": ~ia & ~ib}
    da, db = a["defaulted"].to_numpy(), b["defaulted"].to_numpy()
    pd12 = a["latent_pd_12m"].to_numpy()
    rows = []
    for cell, mask in cells.items():
        n = int(mask.sum())
        rows.append({
            "cell": cell, "users": n, "accounts": n * weight,
            "default_rate_champion": (da[mask].mean() if n and cell in ("both", "champion_only")
                                      else np.nan),
            "default_rate_challenger": (db[mask].mean()
                                        if n and cell in ("both", "challenger_only")
                                        else np.nan),
            "latent_pd_12m": pd12[mask].mean() if n else np.nan,
        })
    return pd.DataFrame(rows)
