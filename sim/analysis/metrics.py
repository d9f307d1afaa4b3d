"""Every rate greysim reports, defined once: what it counts, over what, in which unit.

:data:`METRICS` is the one table of definitions; ``docs/metrics.md`` is generated from it
(``python -m sim.analysis.metrics`` rewrites it; a test fails when it is stale). The functions
below compute the derived figures from a run's tables (the engine records counts, this module
divides them): vintage cumulative default at fixed months on book per opened line and per
invited user, the lifetime loss rate of a batch, the maturity-matched default rate the verdict
reads, the lagged default rate and the time to a coverage target, to the day.

A run with run-off months (``reporting.run_off_months``) has a boolean ``run_off`` column in
its monthly table: coverage is read at the horizon, the last month that is not run-off;
vintages keep maturing through the run-off months.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: The fixed months on book at which vintage cumulative default rates are reported.
MONTHS_ON_BOOK = (6, 12, 18)
#: The months on book of the verdict's maturity-matched risk measure.
RISK_MOB = 12


@dataclass(frozen=True)
class Metric:
    """One reported rate: ``name`` as in the tables, ``numerator`` over ``denominator``,
    ``unit`` (the denominator's kind), ``table`` where it appears, ``meaning`` in one line."""

    name: str
    numerator: str
    denominator: str
    unit: str
    table: str
    meaning: str


METRICS: tuple[Metric, ...] = (
    Metric("invited_share", "users invited now", "population", "per user", "monthly",
           "coverage: share of the population holding an invitation"),
    Metric("visible_share", "invited users who see the entry", "population", "per user",
           "monthly", "reach: share of the population that can see and open the line"),
    Metric("default_rate_12m", "defaults in the last 12 months (annualised when fewer)",
           "mean borrowers over those months", "per borrower", "monthly",
           "trailing default rate: reads book age as much as risk (a young book looks clean)"),
    Metric("lagged_default_rate", "balance defaulted in the last 12 months",
           "outstanding balance 12 months earlier", "per balance", "monthly",
           "defaults set against the book that produced them (nan in the first year)"),
    Metric("loss_rate_12m", "charge-off loss in the last 12 months (annualised)",
           "mean outstanding balance", "per balance", "monthly",
           "annualised net loss rate of the book"),
    Metric("dpd30_rate", "accounts of the vintage 30+ days past due now",
           "accounts invited in the vintage", "per invited user", "vintages",
           "30+ rate of a batch, diluted by the invited who never opened a line"),
    Metric("dpd30_opened_rate", "lines of the vintage 30+ days past due now",
           "lines opened in the vintage", "per opened line", "vintages, gates",
           "30+ rate of a batch's loans: what the vintage gates read"),
    Metric("dpd90_cum_rate", "accounts of the vintage ever defaulted (90+)",
           "accounts invited in the vintage", "per invited user", "vintages",
           "cumulative default of a batch per invitation sent"),
    Metric("default_opened_rate", "lines of the vintage ever defaulted (90+)",
           "lines opened in the vintage", "per opened line", "vintages",
           "cumulative default of a batch's loans"),
    Metric("loss_rate", "net charge-off loss of the vintage", "amount drawn by the vintage",
           "per balance drawn", "vintages", "lifetime loss rate of a batch so far"),
    *(Metric(f"default_{m}mob_opened", f"defaults by {m} months on book",
             f"lines opened by {m} months on book, over vintages {m} months old",
             "per opened line", "comparison",
             f"cumulative default at {m} months on book, pooled over the batches that "
             f"reached it: equally aged loans") for m in MONTHS_ON_BOOK),
    *(Metric(f"default_{m}mob_invited", f"defaults by {m} months on book",
             f"users invited, over vintages {m} months old", "per invited user",
             "comparison", f"cumulative default at {m} months on book per invitation")
      for m in MONTHS_ON_BOOK),
    Metric("default_12mob_opened_peak", "the pooled 12-month-on-book default rate",
           "lines opened, as of each month end", "per opened line", "comparison",
           "its highest value along the path: the budget holds at every month, not only "
           "at the horizon"),
    Metric("batch_loss_rate", "net charge-off loss of the batches", "amount they drew",
           "per balance drawn", "comparison", "lifetime loss rate of all batches at the end"),
    Metric("days_to_target", "days from the start until coverage reaches the target",
           "-", "days", "comparison",
           "interpolated between month ends; inf when the target is not reached"),
    Metric("capital_use_peak", "highest outstanding balance", "capital limit", "per limit",
           "comparison, gates", "over 1: the book broke the capital limit"),
    Metric("capital_bound_months", "months the capital limit held batches back", "-",
           "months", "comparison", "how often capital, not strategy, set the pace"),
    Metric("default_rate", "ever-invited accounts of the arm that defaulted",
           "ever-invited accounts of the arm", "per invited user", "arms",
           "an arm's cumulative default rate"),
    Metric("holdout_default_rate", "holdout users who defaulted", "holdout users invited",
           "per invited user", "arms",
           "default below the cut-off (with a Clopper-Pearson interval in the A/B summary)"),
)

BY_NAME = {m.name: m for m in METRICS}


def glossary() -> str:
    """``docs/metrics.md``: the table of :data:`METRICS` as Markdown."""
    lines = ["# Metrics", "",
             "Generated from `sim/analysis/metrics.py` (`python -m sim.analysis.metrics`); "
             "do not edit by hand. Every rate names its denominator.", "",
             "| name | numerator | denominator | unit | table | meaning |",
             "|---|---|---|---|---|---|"]
    for m in METRICS:
        lines.append(f"| `{m.name}` | {m.numerator} | {m.denominator} | {m.unit} | "
                     f"{m.table} | {m.meaning} |")
    return "\n".join(lines) + "\n"


GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

# ----------------------------------------------------------------------------- monthly


def horizon(monthly: pd.DataFrame) -> pd.DataFrame:
    """The rollout months: every month but the run-off ones (all without a ``run_off``)."""
    if "run_off" in monthly:
        return monthly[~monthly["run_off"].astype(bool)]
    return monthly


def lagged_default_rate(monthly: pd.DataFrame) -> float:
    """The lagged default rate at the horizon (per balance; nan in the first year)."""
    rows = horizon(monthly)
    if "lagged_default_rate" not in rows or rows.empty:
        return math.nan
    return float(rows["lagged_default_rate"].iloc[-1])


def days_to_target(monthly: pd.DataFrame, target: float, coverage: str = "invited") -> float:
    """Days from the start until ``coverage`` share first reaches ``target``, interpolated
    linearly between month ends (coverage 0 at the start); inf when never reached by the
    horizon."""
    rows = horizon(monthly).sort_values("month")
    share = rows[f"{coverage}_share"].to_numpy(dtype=float)
    dates = pd.to_datetime(rows["date"])
    if share.size == 0:
        return math.inf
    first = dates.iloc[0]
    start = first - pd.Timedelta(days=first.day - 1)  # month 1 ends on the last day of it
    days = np.asarray((dates - start).dt.days, dtype=float) + 1.0
    hit = np.flatnonzero(share >= target)
    if hit.size == 0:
        return math.inf
    i = int(hit[0])
    d0, s0 = (0.0, 0.0) if i == 0 else (days[i - 1], share[i - 1])
    d1, s1 = days[i], share[i]
    if s1 <= s0:
        return float(d1)
    return float(d0 + (target - s0) / (s1 - s0) * (d1 - d0))


def capital_figures(monthly: pd.DataFrame) -> dict:
    """Peak outstanding over the capital limit (nan without a limit) and the months the
    limit bound (held batches back, or the book was at it)."""
    out = {}
    if {"outstanding", "capital_limit"} <= set(monthly.columns):
        limit = monthly["capital_limit"].to_numpy(dtype=float)
        use = monthly["outstanding"].to_numpy(dtype=float) / limit
        out["capital_use_peak"] = float(np.nanmax(use)) if np.isfinite(limit).any() \
            else math.nan
    if "capital_bound" in monthly:
        out["capital_bound_months"] = float(monthly["capital_bound"].astype(bool).sum())
    return out

# ----------------------------------------------------------------------------- vintages


def vintage_rates(vintages: pd.DataFrame) -> pd.DataFrame:
    """The vintage table with its per-opened-line rates: ``dpd30_opened_rate`` and
    ``default_opened_rate`` (nan before a line opened)."""
    out = vintages.copy()
    opened = out["opened"].where(out["opened"] > 0)
    out["dpd30_opened_rate"] = out["dpd30_opened"] / opened
    out["default_opened_rate"] = out["opened_defaults"] / opened
    return out


def at_months_on_book(vintages: pd.DataFrame, mob: int) -> pd.DataFrame:
    """One row per vintage that reached ``mob`` months on book: its counts then, with the
    cumulative default rate per opened line and per invited user."""
    rows = vintages[vintages["mob"] == mob]
    keys = [c for c in ("strategy", "replication", "arm", "vintage") if c in rows]
    rows = rows.drop_duplicates(keys, keep="last")
    out = rows[[*keys, "accounts", "opened", "defaults", "opened_defaults"]].copy()
    out["default_opened_rate"] = out["opened_defaults"] / out["opened"].where(out["opened"] > 0)
    out["default_invited_rate"] = out["defaults"] / out["accounts"].where(out["accounts"] > 0)
    return out.reset_index(drop=True)


def pooled_default_at(vintages: pd.DataFrame, mob: int, per: str = "opened",
                      until_month: int | None = None) -> float:
    """Cumulative default at ``mob`` months on book, pooled over every vintage that reached
    it (by ``until_month`` when given): defaults over lines opened (``per="opened"``) or over
    users invited (``per="invited"``); nan when no vintage is that old."""
    rows = vintages if until_month is None else vintages[vintages["month"] <= until_month]
    cells = at_months_on_book(rows, mob)
    num = cells["opened_defaults" if per == "opened" else "defaults"].sum()
    den = cells["opened" if per == "opened" else "accounts"].sum()
    return float(num / den) if den > 0 else math.nan


#: Simulated opened lines the pooled path must hold before its value counts for the peak: the
#: maximum of a path is biased upward by its noisy first points (a pool of 50 lines with one
#: default reads 2%), so the path is judged from where one default moves it by 0.1 pp at most.
PATH_MIN_LINES = 1_000


def pooled_path(vintages: pd.DataFrame, mob: int = RISK_MOB, weight: float | None = None,
                min_lines: int = PATH_MIN_LINES) -> pd.Series:
    """The pooled cumulative default at ``mob`` months on book per opened line as it stood at
    each month end (over the vintages that had reached ``mob`` by then), by month. With the
    run's ``weight`` (real users per simulated one), months whose pool holds fewer than
    ``min_lines`` simulated lines are left out, except the last when none holds that many."""
    cells = vintages[vintages["mob"] == mob].sort_values("month")
    if cells.empty:
        return pd.Series(dtype=float)
    num = cells.groupby("month")["opened_defaults"].sum().cumsum()
    den = cells.groupby("month")["opened"].sum().cumsum()
    path = (num / den.where(den > 0)).rename(f"default_{mob}mob_opened")
    if weight is not None:
        enough = den / weight >= min_lines
        path = path[enough] if enough.any() else path.iloc[-1:]
    return path


def batch_loss_rate(vintages: pd.DataFrame) -> float:
    """Lifetime loss rate of all batches at the last month: net charge-off loss over the
    amount drawn (per balance drawn)."""
    last = vintages[vintages["month"] == vintages["month"].max()]
    drawn = last["drawn"].sum()
    return float(last["loss"].sum() / drawn) if drawn > 0 else math.nan


def risk_figures(vintages: pd.DataFrame | None, mob: int = RISK_MOB,
                 weight: float | None = None) -> dict:
    """The vintage figures the verdict reads from one run: pooled cumulative default at each
    of :data:`MONTHS_ON_BOOK` per opened line and per invited user, the peak of the pooled
    ``mob`` rate along the path (from where the pool holds :data:`PATH_MIN_LINES` simulated
    lines, given the run's ``weight``), the number of vintages that reached ``mob`` and the
    batches' lifetime loss rate."""
    if vintages is None or "opened_defaults" not in vintages or vintages.empty:
        return {}
    out = {}
    for m in sorted({*MONTHS_ON_BOOK, mob}):
        out[f"default_{m}mob_opened"] = pooled_default_at(vintages, m, "opened")
        out[f"default_{m}mob_invited"] = pooled_default_at(vintages, m, "invited")
    path = pooled_path(vintages, mob, weight)
    out[f"default_{mob}mob_opened_peak"] = float(path.max()) if path.notna().any() \
        else math.nan
    out[f"vintages_{mob}mob"] = float(len(at_months_on_book(vintages, mob)))
    out["batch_loss_rate"] = batch_loss_rate(vintages)
    return out


def main() -> None:
    """Rewrite ``docs/metrics.md`` from :data:`METRICS`."""
    GLOSSARY.parent.mkdir(parents=True, exist_ok=True)
    GLOSSARY.write_text(glossary(), encoding="utf-8")
    print(f"wrote {GLOSSARY}")


if __name__ == "__main__":
    main()
