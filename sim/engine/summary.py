"""The summary of a run: its headline figures, JSON-ready, computed from the columns of its
monthly table without pandas (the same numbers as pandas' sums and means, to the bit)."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sim.model import credit, fraud
from sim.model.population import Population, weighted_auc
from sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd


class Finished(Protocol):
    """What the summary reads of a finished simulation (``engine.simulation.Simulation``),
    declared here so the summary does not import the simulation that calls it."""

    pop: Population
    scenario: Scenario
    seed: int
    initial_reasons: dict[str, int]  # users the first scoring excludes, by reason
    rollout_months: int
    run_off: int
    end: int
    book: credit.Book
    fraud: fraud.FraudBook

    @property
    def state(self): ...  # its ``batches`` list


def summarize(sim: Finished, monthly: dict[str, list]) -> dict:
    """The headline figures of a run, JSON-ready, from the columns of its monthly table
    (:attr:`sim.engine.tables.Table.columns`)."""
    pop, sc = sim.pop, sim.scenario
    horizon = sc.risk.auc_horizon_months
    # 1 - (1 - h)^horizon in place, in float32 like the hazard: one array a user
    pd_h = np.subtract(np.float32(1.0), pop.hazard, dtype=np.float32)
    pd_h **= np.float32(horizon)
    np.subtract(np.float32(1.0), pd_h, out=pd_h)
    why_not = {name: float(count * pop.weight) for name, count in sim.initial_reasons.items()}
    # coverage is the rollout's: read at the horizon, before the run-off months
    run_off = monthly.get("run_off") or [False] * len(monthly["month"])
    last = max(i for i, off in enumerate(run_off) if not off)
    return {
        "scenario": sc.name,
        "strategy": sc.rollout.name,
        "seed": sim.seed,
        "users": pop.n,
        "weight": pop.weight,
        "population": float(pop.n * pop.weight),
        "months": sim.rollout_months,
        "run_off_months": sim.run_off,
        "score_auc": round(weighted_auc(pop.score, pd_h), 6),
        "score_auc_horizon_months": horizon,
        "mean_monthly_hazard": float(pop.hazard.mean()),
        "final": {
            "eligible_share": float(monthly["eligible_share"][last]),
            "invited_share": float(monthly["invited_share"][last]),
            "visible_share": float(monthly["visible_share"][last]),
        },
        "batches": len(sim.state.batches),
        "quarters": [
            {
                "quarter": int(r["quarter"]),
                "date": str(r["date"]),
                "eligible_share": float(r["eligible_share"]),
                "invited_share": float(r["invited_share"]),
                "visible_share": float(r["visible_share"]),
                "gained_access": float(r["gained_access"]),
                "lost_access": float(r["lost_access"]),
                "gained_rate": _num(r["gained_rate"]),
                "lost_rate": _num(r["lost_rate"]),
                "churn_rate": _num(r["churn_rate"]),
                "default_rate_12m": _num(r["default_rate_12m"]),
                "lagged_default_rate": _num(r["lagged_default_rate"]),
                "loss_rate": _num(r["loss_rate"]),
                "net_income": _num(r["net_income"]),
                "outstanding": _num(r["outstanding"]),
                "ecl_allowance": _num(r["ecl_allowance"]),
                "capital_bound_months": int(r["capital_bound_months"]),
                "run_off": bool(3 * int(r["quarter"]) > sim.rollout_months),
            }
            for r in quarter_rows(monthly)
        ],
        "not_eligible_at_start": why_not,
        "credit": credit_summary(sim, monthly),
    }


def horizon_rows(monthly: pd.DataFrame) -> pd.DataFrame:
    """The months of the rollout horizon (without the run-off months after it)."""
    if "run_off" not in monthly:
        return monthly
    return monthly[~monthly["run_off"].to_numpy(dtype=bool)]


def _num(x) -> float | None:
    return None if x is None or x != x else float(x)


#: The monthly columns summed over each quarter, as ``quarterly`` selects them together
#: (pandas sums the columns of one selection alike: see :func:`group_sums`).
QUARTER_SUMS = (("gained_access", "lost_access", "new_invites"),
                ("charge_off_loss", "interest_revenue", "funding_cost", "net_income",
                 "new_defaults"))
QUARTER_ENDS = ("date", "eligible_share", "invited_share", "visible_share", "invited",
                "outstanding", "default_rate_12m", "lagged_default_rate", "ecl_12m",
                "ecl_lifetime", "ecl_allowance")


def quarter_rows(monthly: dict[str, list]) -> list[dict]:
    """Each quarter's figures, in quarter order, as pandas' ``groupby("quarter")`` takes
    them (the same numbers, to the bit): coverage at the quarter's last month, the
    quarter's flows and credit sums, the churn rates of access relative to those with access
    before the re-evaluation, the annualised loss rate over the mean outstanding and the
    months bound by the capital limit. ``monthly`` holds the monthly table's columns."""
    quarter = np.array(monthly["quarter"], dtype=np.int64)
    order = np.argsort(quarter, kind="stable")  # groupby's groups, rows in table order
    sorted_q = quarter[order]
    starts = np.flatnonzero(np.r_[True, sorted_q[1:] != sorted_q[:-1]])
    groups = np.split(order, starts[1:])
    in_order = bool((np.diff(quarter) >= 0).all())
    out = [{"quarter": int(sorted_q[a]),
            **{name: monthly[name][int(rows[-1])] for name in QUARTER_ENDS}}
           for a, rows in zip(starts, groups, strict=True)]
    for names in QUARTER_SUMS:
        sums = group_sums([monthly[name] for name in names], groups, in_order)
        for name, column in zip(names, sums, strict=True):
            for row, value in zip(out, column, strict=True):
                row[name] = value
    means = group_means(monthly["outstanding"], groups, in_order)
    for row, rows, avg in zip(out, groups, means, strict=True):
        before = row["invited"] - row["gained_access"] + row["lost_access"]
        row["gained_rate"] = _ratio(row["gained_access"], before)
        row["lost_rate"] = _ratio(row["lost_access"], before)
        row["churn_rate"] = row["gained_rate"] + row["lost_rate"]
        row["loss_rate"] = _ratio(row["charge_off_loss"] * 12.0 / len(rows), avg)
        row["capital_bound_months"] = sum(bool(monthly["capital_bound"][i]) for i in rows)
    return out


#: The quarterly table's columns, in order (:func:`quarterly_frame`).
QUARTER_COLUMNS = ("quarter", "date", "eligible_share", "invited_share", "visible_share",
                   "invited", "gained_access", "lost_access", "new_invites", "gained_rate",
                   "lost_rate", "churn_rate", "charge_off_loss", "interest_revenue",
                   "funding_cost", "net_income", "new_defaults", "outstanding",
                   "default_rate_12m", "lagged_default_rate", "ecl_12m", "ecl_lifetime",
                   "ecl_allowance", "loss_rate", "capital_bound_months")


def quarterly_frame(monthly: dict[str, list]) -> pd.DataFrame:
    """:func:`quarter_rows` as a DataFrame (``Result.quarterly``), dates as datetime64."""
    import pandas as pd

    df = pd.DataFrame(quarter_rows(monthly), columns=list(QUARTER_COLUMNS))
    df["date"] = pd.to_datetime(df["date"])
    return df


def _ratio(a: float, b: float) -> float:
    """``a / b`` where ``b > 0``, else NaN (pandas' ``(a / b).where(b > 0)``)."""
    return float(a / b) if b > 0 else float("nan")


@functools.cache
def _pandas_reduceat() -> bool:
    """Whether the installed pandas sums ordered groups without NaN by ``np.add.reduceat``
    (from 3.1; before, always Kahan-compensated): read without importing pandas."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major, minor = (int("".join(c for c in part if c.isdigit()) or 0)
                        for part in version("pandas").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return False
    return (major, minor) >= (3, 1)


def group_sums(columns: list[list[float]], groups: list[np.ndarray],
               in_order: bool = True) -> list[list[float]]:
    """The sums pandas ``groupby().sum()`` takes of float ``columns`` selected together,
    over the rows of each of ``groups``: from pandas 3.1, with the rows in group order and
    no NaN among all the columns' values, ``np.add.reduceat`` over each group's rows; else,
    value by value, the Kahan-compensated sum of the values that are not NaN."""
    values = np.array(columns, dtype=np.float64).reshape(len(columns), -1)
    if in_order and _pandas_reduceat() and not np.isnan(values).any():
        starts = [int(rows[0]) for rows in groups]
        return np.add.reduceat(values, starts, axis=1).tolist()
    return [[_kahan(column[rows])[0] for rows in groups] for column in values]


def group_means(column: list[float], groups: list[np.ndarray],
                in_order: bool = True) -> list[float]:
    """The means pandas ``groupby().mean()`` takes of a float column (as in
    :func:`group_sums`: a plain sum over the group's size, or a Kahan sum over the count of
    values that are not NaN, NaN without any)."""
    values = np.array(column, dtype=np.float64)
    if in_order and _pandas_reduceat() and not np.isnan(values).any():
        starts = [int(rows[0]) for rows in groups]
        sizes = np.array([len(rows) for rows in groups], dtype=np.float64)
        return (np.add.reduceat(values, starts) / sizes).tolist()
    means = []
    for rows in groups:
        total, count = _kahan(values[rows])
        means.append(total / count if count else float("nan"))
    return means


def _kahan(values: np.ndarray) -> tuple[float, int]:
    """pandas' Cython group sum: Kahan-compensated, in row order, NaN left out; and the
    count of values summed."""
    total = compensation = 0.0
    count = 0
    for value in values.tolist():
        if value != value:
            continue
        count += 1
        y = value - compensation
        t = total + y
        compensation = t - total - y
        if not math.isfinite(compensation):  # an infinite value: keep the sum infinite
            compensation = 0.0
        total = t
    return total, count


def column_sum(values: list[float]) -> float:
    """The sum pandas' ``Series.sum()`` takes of a float column: NumPy's (pairwise), NaN
    counted as 0."""
    column = np.array(values, dtype=np.float64)
    return float(np.where(np.isnan(column), 0.0, column).sum())


def column_mean(values: list[float]) -> float:
    """The mean pandas' ``Series.mean()`` takes of a float column: NumPy's (pairwise) sum of
    the values that are not NaN over their count; NaN without any."""
    column = np.array(values, dtype=np.float64)
    count = np.count_nonzero(~np.isnan(column))
    return column_sum(values) / count if count else float("nan")


def credit_summary(sim: Finished, monthly: dict[str, list]) -> dict:
    """Headline credit and fraud figures of the whole run."""
    pop, book = sim.pop, sim.book
    years = len(monthly["month"]) / 12.0
    borrower_years = column_sum(monthly["borrowers"]) / 12.0
    avg_outstanding = column_mean(monthly["outstanding"])
    cap_bound = {}
    for i, rule in enumerate(sim.scenario.credit.limits.caps):
        for k, kind in enumerate(credit.CAP_KINDS):
            if (rule.income_share is None) == (kind == "income"):
                continue
            bit = np.uint32(1 << (3 * i + k))
            users = np.count_nonzero(book.cap_bound & bit)
            cap_bound[f"{rule.name}:{kind}"] = float(users * pop.weight)
    since = sim.end - 365  # the run's last year
    return {
        "annualised_default_rate": _num(column_sum(monthly["new_defaults"]) / borrower_years
                                        if borrower_years > 0 else np.nan),
        "annualised_loss_rate": _num(column_sum(monthly["charge_off_loss"]) / years
                                     / avg_outstanding if avg_outstanding > 0 else np.nan),
        "default_rate_12m": _num(monthly["default_rate_12m"][-1]),
        "lagged_default_rate": _num(monthly["lagged_default_rate"][-1]),
        "interest_revenue": column_sum(monthly["interest_revenue"]),
        "charge_off_loss": column_sum(monthly["charge_off_loss"]),
        "funding_cost": column_sum(monthly["funding_cost"]),
        "net_income": column_sum(monthly["net_income"]),
        "outstanding": float(monthly["outstanding"][-1]),
        "accounts_opened": float(np.count_nonzero(book.opened) * pop.weight),
        "defaults": float(np.count_nonzero(book.default_month >= 0) * pop.weight),
        "wrongly_blocked_share": _num(fraud.wrongly_blocked_share(sim.fraud, pop, since)),
        "wrongly_blocked_window_days": 365,
        "reviews": column_sum(monthly["reviews"]),
        "cap_bound": cap_bound,
        "capital_bound_months": int(sum(bool(b) for b in monthly["capital_bound"])),
    }
