"""A run's tables as recorded (sim.engine.tables) and its summary without pandas: the
columns the summary and the writer read are the DataFrames' columns, and the summary's sums
and means are pandas' own, to the bit."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine import summary
from sim.engine.result import Result

AB = Path(__file__).resolve().parents[2] / "scenarios" / "ab-version-vs-tier.yaml"


@pytest.fixture(scope="module")
def ab_run() -> sim.Result:
    return sim.run(sim.load(AB, users=3000), quarters=2)


def _from_columns(table) -> pd.DataFrame:
    """The plain DataFrame of a table's recorded columns."""
    df = pd.DataFrame({name: pd.Series(values, dtype=object if not values else None)
                       for name, values in table.columns.items()})
    for name in table.dates:
        df[name] = pd.to_datetime(df[name])
    return df


@pytest.mark.parametrize("which", ["baseline", "ab"])
def test_the_recorded_columns_are_the_frames_columns(which, baseline_run, ab_run):
    run = baseline_run if which == "baseline" else ab_run
    for stem, table in run.recorded().items():
        frame = run.tables()[stem]
        assert list(table.columns) == list(frame.columns), stem
        assert len(table) == len(frame), stem
        plain = _from_columns(table)
        if len(frame):
            pd.testing.assert_frame_equal(plain, frame, check_dtype=False, obj=stem)


def test_the_frames_are_made_once_and_a_result_takes_frames_too(baseline_run):
    first = baseline_run.monthly
    assert baseline_run.monthly is first  # kept, not made again
    copy = Result(baseline_run.scenario, baseline_run.seed, first, baseline_run.segments,
                  baseline_run.batches, baseline_run.vintages, baseline_run.summary,
                  baseline_run.population, 0.0, arms=baseline_run.arms)
    assert copy.monthly is first and copy.gates is None
    assert copy.recorded()["metrics"].frame is first
    pd.testing.assert_frame_equal(copy.quarterly, baseline_run.quarterly)
    # a recorded table travels (to a worker process) as its frame
    table = pickle.loads(pickle.dumps(baseline_run.recorded()["vintages"]))
    pd.testing.assert_frame_equal(table.frame, baseline_run.vintages)


def _pandas_quarterly(monthly: pd.DataFrame) -> pd.DataFrame:
    """The quarterly figures as pandas' groupby makes them (the reference)."""
    ends = monthly.groupby("quarter").tail(1).set_index("quarter")
    flows = monthly.groupby("quarter")[["gained_access", "lost_access", "new_invites"]].sum()
    out = ends[["date", "eligible_share", "invited_share", "visible_share", "invited"]].join(flows)
    before = ends["invited"] - flows["gained_access"] + flows["lost_access"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["gained_rate"] = (flows["gained_access"] / before).where(before > 0)
        out["lost_rate"] = (flows["lost_access"] / before).where(before > 0)
        out["churn_rate"] = out["gained_rate"] + out["lost_rate"]
    g = monthly.groupby("quarter")
    money = g[["charge_off_loss", "interest_revenue", "funding_cost", "net_income",
               "new_defaults"]].sum()
    avg = g["outstanding"].mean()
    out = out.join(money)
    out = out.join(ends[["outstanding", "default_rate_12m", "lagged_default_rate", "ecl_12m",
                         "ecl_lifetime", "ecl_allowance"]])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["loss_rate"] = (money["charge_off_loss"] * 12.0 / g.size() / avg).where(avg > 0)
    out["capital_bound_months"] = g["capital_bound"].sum()
    return out.reset_index()


@pytest.mark.parametrize("which", ["baseline", "ab"])
def test_the_quarterly_figures_are_pandas_groupby_to_the_bit(which, baseline_run, ab_run):
    """The summary's quarter rows (from the recorded columns) and ``Result.quarterly`` (from
    the frame) are what pandas' groupby gives, to the bit, column by column."""
    run = baseline_run if which == "baseline" else ab_run
    expected = _pandas_quarterly(run.monthly)
    pd.testing.assert_frame_equal(run.quarterly, expected, check_exact=True)
    rows = summary.quarter_rows(run.recorded()["metrics"].columns)
    assert [r["quarter"] for r in rows] == expected["quarter"].tolist()
    for name in rows[0]:
        if name in ("quarter", "date"):
            continue
        got = np.array([r[name] for r in rows], dtype=np.float64)
        np.testing.assert_array_equal(got, expected[name].to_numpy(dtype=np.float64),
                                      err_msg=name, strict=True)
    assert [str(r["date"]) for r in rows] == [str(d.date()) for d in expected["date"]]


@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("in_order", [True, False])
def test_group_sums_and_means_are_pandas_on_random_floats(nan, in_order):
    """Both of pandas' ways (reduceat over ordered groups without NaN, else Kahan sums)."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        columns = rng.lognormal(10, 3, (2, n)) * rng.choice([-1, 1], (2, n))
        if nan:
            columns[rng.random((2, n)) < 0.2] = np.nan
        quarter = rng.integers(1, 6, n)
        if in_order:
            quarter.sort()
        frame = pd.DataFrame({"q": quarter, "a": columns[0], "b": columns[1]})
        sums = frame.groupby("q")[["a", "b"]].sum()
        means = frame.groupby("q")["a"].mean()
        keys = np.unique(quarter)
        groups = [np.flatnonzero(quarter == q) for q in keys]
        ordered = bool((np.diff(quarter) >= 0).all())
        got = summary.group_sums(columns.tolist(), groups, ordered)
        np.testing.assert_array_equal(got, sums.loc[keys].to_numpy().T, strict=True)
        np.testing.assert_array_equal(summary.group_means(columns[0].tolist(), groups, ordered),
                                      means.loc[keys].to_numpy(), strict=True)
        assert summary.column_sum(columns[0].tolist()) == frame["a"].sum()
