"""Charts: each draws the table's numbers, with its series and labelled axes.

Coverage, funnel, segment and churn charts draw from a small real run. The credit and
comparison charts draw from small synthetic tables with the documented columns (the credit
model and the comparison command fill them in real runs).
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy import stats

import sim
from sim.analysis import charts
from sim.io import report


@pytest.fixture(scope="module")
def small_run(baseline_path) -> sim.Result:
    return sim.run(sim.load(baseline_path, {"population.users": 20000}))


def credit_monthly(strategies=("tier_first",), reps=1, months=12, seed=0) -> pd.DataFrame:
    """A monthly table with the credit model's columns: a book growing 2 bn CNY a month."""
    rng = np.random.default_rng(seed)
    rows = []
    for si, strategy in enumerate(strategies):
        for rep in range(reps):
            for m in range(1, months + 1):
                share = min(0.03 * m * (1 + 0.3 * si), 0.5) + rng.normal(0, 0.004)
                out = 2e9 * m * (1 + 0.3 * si)
                rows.append(dict(
                    strategy=strategy, replication=rep, month=m, quarter=(m - 1) // 3 + 1,
                    date=pd.Timestamp("2025-01-31") + pd.offsets.MonthEnd(m - 1),
                    population=1e9, eligible=6e8, invited=share * 1e9, visible=0.9 * share * 1e9,
                    active=0.5 * share * 1e9, borrowers=0.3 * share * 1e9,
                    invited_share=share, visible_share=0.9 * share, gained_access=1e6 * m,
                    lost_access=5e5 * m, outstanding=out, limit_total=3 * out,
                    capital_limit=18e9, capital_bound=out > 18e9,
                    default_rate_12m=0.012 + 0.006 * si + rng.normal(0, 0.001),
                    interest_revenue=0.015 * out, charge_off_loss=0.008 * out * (m > 4),
                    net_income=0.015 * out - 0.008 * out * (m > 4) - 0.003 * out))
    return pd.DataFrame(rows)


def one_run(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["strategy", "replication"])


def vintages(n=8, horizon=18) -> pd.DataFrame:
    """Monthly vintages seasoning towards a 3% cumulative 90+ rate; under 12 MOB immature."""
    rows = [dict(vintage=v, vintage_date=pd.Timestamp("2025-01-15") + pd.DateOffset(months=v),
                 mob=mob, accounts=1e6, dpd30_rate=0.02,
                 dpd90_cum_rate=0.03 * (1 - np.exp(-mob / 8)), loss_rate=0.01,
                 immature=mob < 12)
            for v in range(n) for mob in range(horizon - v)]
    return pd.DataFrame(rows)


def labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# ----------------------------------------------------------------------- real run


def test_coverage_draws_invited_visible_target_and_holidays(small_run):
    sc = small_run.scenario
    fig = charts.coverage(small_run.monthly, target=0.3, holidays=sc.calendar.holidays)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    invited = lines["invited"].get_ydata()
    np.testing.assert_allclose(invited, small_run.monthly["invited_share"])
    np.testing.assert_allclose(lines["visible (entry shown)"].get_ydata(),
                               small_run.monthly["visible_share"])
    assert set(lines["target 30%"].get_ydata()) == {0.3}
    inside = [h for h in sc.calendar.holidays if h.start <= small_run.monthly.date.max().date()]
    assert len(ax.patches) == len(inside) > 0
    assert "holiday window" in labels(ax)
    assert ax.get_ylabel() == "share of the population (%)" and ax.get_xlabel() == "month end"


def test_funnel_has_a_bar_per_stage_and_quarter(small_run):
    fig = charts.funnel(small_run.monthly)
    ax = fig.axes[0]
    # with the credit model on, the funnel goes on to active lines and borrowers
    assert labels(ax) == ["population", "eligible", "invited", "visible (entry shown)",
                          "active", "borrowers"]
    q = small_run.monthly.groupby("quarter").tail(1)
    assert len(ax.patches) == 6 * len(q)
    invited = [p.get_height() for p in ax.containers[2]]
    np.testing.assert_allclose(invited, q["invited"] / 1e6)
    assert ax.get_ylabel() == "real users, millions"
    assert ax.get_xticklabels()[0].get_text().startswith("Q1\n")


@pytest.mark.parametrize(("rows", "cols", "ylabel", "xlabel"), [
    ("archetype", "region", "archetype", "region tier"),
    ("version", "device_grade", "client version", "device grade"),
])
def test_access_heatmaps_show_each_cells_access_rate(small_run, rows, cols, ylabel, xlabel):
    fig = charts.segment_heatmap(small_run.segments, rows, cols)
    ax = fig.axes[0]
    seg = small_run.segments
    cells = seg[(seg.dimension == f"{rows} x {cols}") & (seg.month == seg.month.max())]
    shown = [t.get_text() for t in ax.texts]
    expected = [f"{v:.0%}" for v in cells.access_rate if not np.isnan(v)]
    assert shown == expected
    assert ax.get_ylabel() == ylabel and ax.get_xlabel() == xlabel
    assert "access rate" in fig.axes[1].get_ylabel()  # the colour bar


def test_churn_bars_gained_up_lost_down(small_run):
    fig = charts.churn(small_run.monthly)
    ax = fig.axes[0]
    gained, lost = ax.containers
    q = small_run.monthly.groupby("quarter")[["gained_access", "lost_access"]].sum()
    np.testing.assert_allclose([p.get_height() for p in gained], q.gained_access / 1e6)
    np.testing.assert_allclose([p.get_height() for p in lost], -q.lost_access / 1e6)
    assert labels(ax) == ["gained", "lost"]
    assert "real users" in ax.get_ylabel() and ax.get_xlabel() == "quarter (end month)"


@pytest.mark.parametrize("fn", [charts.vintage_curves, charts.risk_reach, charts.capital,
                                charts.net_income])
def test_credit_charts_say_what_is_missing_on_a_run_without_credit(small_run, fn):
    credit = ["outstanding", "net_income", "default_rate_12m", "capital_bound", "dpd90"]
    coverage_only = small_run.monthly.drop(columns=credit)
    table = coverage_only if fn is not charts.vintage_curves else None
    with pytest.raises(charts.MissingData, match=r"table|strategies"):
        fn(table)


def test_a_missing_cross_names_the_scenario_key(small_run):
    with pytest.raises(charts.MissingData, match="reporting.crosses"):
        charts.segment_heatmap(small_run.segments, "os", "region")


# ----------------------------------------------------------------------- synthetic tables


def test_band_is_the_t_interval_over_replications():
    df = credit_monthly(("a",), reps=2, months=3)
    df.loc[df.replication == 0, "invited_share"] = 0.1
    df.loc[df.replication == 1, "invited_share"] = 0.3
    ax = charts.coverage(df).axes[0]
    band = next(c for c in ax.collections if isinstance(c, PolyCollection))
    ys = band.get_paths()[0].vertices[:, 1]
    half = stats.t.ppf(0.975, 1) * np.std([0.1, 0.3], ddof=1) / np.sqrt(2)  # 12.7 * 0.1
    assert ys.min() == pytest.approx(0.2 - half) and ys.max() == pytest.approx(0.2 + half)
    assert "95% interval over replications" in labels(ax)


def test_coverage_has_one_colour_per_strategy():
    df = credit_monthly(("tier_first", "version_first"), reps=3)
    ax = charts.coverage(df, target=0.3).axes[0]
    names = [line.get_label() for line in ax.get_lines()]
    assert names[:4] == ["tier_first: invited", "tier_first: visible (entry shown)",
                         "version_first: invited", "version_first: visible (entry shown)"]
    assert ax.get_lines()[0].get_color() != ax.get_lines()[2].get_color()


def test_funnel_with_credit_adds_active_and_borrowers():
    ax = charts.funnel(one_run(credit_monthly())).axes[0]
    assert labels(ax)[-2:] == ["active", "borrowers"]


def test_vintage_curves_one_line_per_vintage_seasoned_part_solid():
    v = vintages()
    fig = charts.vintage_curves(v)
    ax = fig.axes[0]
    seasoned = [line for line in ax.get_lines() if line.get_label().startswith("vintage ")]
    assert len(seasoned) == v.loc[~v.immature, "vintage"].nunique()  # only old enough ones
    faded = [line for line in ax.get_lines() if line.get_label() == "_vintage"]
    assert len(faded) == v.vintage.nunique()
    assert max(line.get_ydata().max() for line in faded) == pytest.approx(v.dpd90_cum_rate.max())
    assert ax.get_xlabel() == "months on book" and "90+" in ax.get_ylabel()
    assert fig.axes[1].get_ylabel() == "vintage (invite date)"


def test_risk_reach_draws_the_efficient_frontier():
    df = credit_monthly(("cautious", "balanced", "reckless"), reps=4, months=6)
    # reckless: more risk than balanced and no more reach, so it is off the frontier
    df.loc[df.strategy == "reckless", "invited_share"] = (
        df.loc[df.strategy == "balanced", "invited_share"].to_numpy() - 0.01)
    ax = charts.risk_reach(df).axes[0]
    frontier = next(line for line in ax.get_lines() if line.get_label() == "efficient frontier")
    last = df[df.month == 6].groupby("strategy", sort=False)[["default_rate_12m",
                                                              "invited_share"]].mean()
    np.testing.assert_allclose(frontier.get_xdata(),
                               last.loc[["cautious", "balanced"], "default_rate_12m"])
    assert [t.get_text() for t in ax.texts] == ["cautious", "balanced", "reckless"]
    assert ax.get_xlabel() == "12-month default rate (%)" and "coverage" in ax.get_ylabel()
    assert len(ax.containers) == 3  # an error bar per strategy


def test_capital_marks_the_limit_and_the_months_it_binds():
    df = one_run(credit_monthly())
    ax = charts.capital(df).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_allclose(lines["outstanding balance"].get_ydata(), df.outstanding / 1e9)
    assert set(lines["capital limit"].get_ydata()) == {18.0}
    assert len(ax.patches) == df.capital_bound.sum() > 0
    assert ax.get_ylabel() == "balance (CNY, billions)"


def test_net_income_per_quarter():
    df = one_run(credit_monthly())
    ax = charts.net_income(df).axes[0]
    assert labels(ax) == ["interest revenue", "charge-off loss", "net income"]
    net = df.groupby("quarter").net_income.sum()
    np.testing.assert_allclose([p.get_height() for p in ax.containers[2]], net / 1e6)
    assert all(p.get_height() <= 0 for p in ax.containers[1])
    assert ax.get_ylabel() == "per quarter (CNY, millions)"


def test_frontier_keeps_only_undominated_points():
    points = pd.DataFrame({"risk": [0.01, 0.02, 0.03, 0.015], "reach": [0.2, 0.4, 0.35, 0.1]},
                          index=list("abcd"))
    assert list(charts.frontier(points).index) == ["a", "b"]


def test_crosses_must_name_categorical_dimensions(baseline_path, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {baseline_path}\nreporting:\n  crosses: [[archetype, income]]\n")
    with pytest.raises(sim.ScenarioError, match=r"reporting\.crosses.*income"):
        sim.load(bad)


def test_holiday_windows_reaching_outside_the_horizon_are_clipped(small_run):
    # found by the scenario fuzzer: a window starting in year 1 broke the date axis
    fig = charts.coverage(small_run.monthly, holidays=[("0001-01-01", "2025-02-04")])
    assert report.png(fig)[:4] == b"\x89PNG"
    span = fig.axes[0].patches[0].get_x()
    assert span >= mpl.dates.date2num(small_run.monthly.date.min())
