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
from chart_data import credit_monthly, vintages
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy import stats

import sim
from sim.analysis import charts
from sim.io import report


@pytest.fixture(scope="module")
def small_run(baseline_path) -> sim.Result:
    return sim.run(sim.load(baseline_path, {"population.users": 20000}))


def one_run(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["strategy", "replication"])


def labels(fig) -> list[str]:
    """The entries of a figure's legends (placed outside the axes)."""
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


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
    assert "holiday window" in labels(fig)
    assert ax.get_ylabel() == "share of the population (%)" and ax.get_xlabel() == "month end"


def test_funnel_has_a_bar_per_stage_and_quarter(small_run):
    fig = charts.funnel(small_run.monthly)
    ax = fig.axes[0]
    # with the credit model on, the funnel goes on to active lines and borrowers; the
    # population is stated, not drawn (its constant bar flattened the stages)
    assert labels(fig) == ["eligible", "invited", "visible (entry shown)", "active",
                           "borrowers"]
    assert ax.get_title(loc="left").endswith("(population 100 million)")
    q = small_run.monthly.groupby("quarter").tail(1)
    assert len(ax.patches) == 5 * len(q)
    assert len({p.get_facecolor() for p in ax.patches}) == 5
    invited = [p.get_height() for p in ax.containers[1]]
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
    assert labels(fig) == ["gained", "lost"]
    assert ax.get_ylabel() == "real users, millions: gained (up), lost (down)"
    assert ax.get_xlabel() == "quarter (end month)"


@pytest.mark.parametrize("fn", [charts.vintage_curves, charts.batch_default, charts.risk_reach,
                                charts.speed_risk, charts.capital, charts.net_income])
def test_credit_charts_say_what_is_missing_on_a_run_without_credit(small_run, fn):
    credit = ["outstanding", "net_income", "default_rate_12m", "capital_bound", "dpd90"]
    coverage_only = small_run.monthly.drop(columns=credit)
    table = coverage_only if fn not in (charts.vintage_curves, charts.batch_default) else None
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
    assert "95% interval over replications" in labels(ax.figure)


def test_coverage_has_one_colour_per_strategy():
    df = credit_monthly(("tier_first", "version_first"), reps=3)
    ax = charts.coverage(df, target=0.3).axes[0]
    names = [line.get_label() for line in ax.get_lines()]
    assert names[:4] == ["tier_first: invited", "tier_first: visible (entry shown)",
                         "version_first: invited", "version_first: visible (entry shown)"]
    assert ax.get_lines()[0].get_color() != ax.get_lines()[2].get_color()


def test_funnel_with_credit_adds_active_and_borrowers():
    fig = charts.funnel(one_run(credit_monthly()))
    assert labels(fig)[-2:] == ["active", "borrowers"]


def test_vintage_curves_one_line_per_phase_with_its_mean_and_young_part_dashed():
    v = vintages()
    v.loc[v.vintage == 0, "accounts"] = 3e6  # weights the pilot's mean towards vintage 0
    v.loc[v.vintage == 0, "dpd90_cum_rate"] *= 2
    batches = pd.DataFrame({"vintage": range(8), "phase": ["pilot"] * 4 + ["wide"] * 4})
    fig = charts.vintage_curves(v, batches)
    ax = fig.axes[0]
    solid = {line.get_label(): line for line in ax.get_lines()
             if not line.get_label().startswith("_")}
    assert list(solid) == ["pilot", "wide"]
    x, y = solid["pilot"].get_xdata(), solid["pilot"].get_ydata()
    base = 0.03 * (1 - np.exp(-x / 8))
    # accounts-weighted: vintage 0 (weight 3, rate doubled) with those of vintages 1-3
    # (weight 1 each) that have reached x months on book (vintage v reaches 17 - v)
    others = np.array([sum(17 - v >= m for v in (1, 2, 3)) for m in x])
    expected = base * (3 * 2 + others) / (3 + others)
    seen = ~np.isnan(y)
    assert seen.any() and (x[seen] >= 12).all()  # seasoned part only
    np.testing.assert_allclose(y[seen], expected[seen])
    dashed = [line for line in ax.get_lines() if line.get_label() == "_young"]
    assert len(dashed) == 2 and all(line.get_linestyle() == "--" for line in dashed)
    assert ax.get_title(loc="left") == "Vintage curves by phase"
    assert "seasoned (12+ months on book)" in labels(fig)


def test_vintage_curves_without_phases_group_by_invite_year():
    fig = charts.vintage_curves(vintages())
    assert fig.axes[0].get_title(loc="left") == "Vintage curves by invite year"
    assert labels(fig)[0] == "batches of 2025"


def test_batch_default_is_per_opened_line_when_lines_are_counted():
    v = vintages(n=4, horizon=14)
    per_user = charts.batch_default(v)
    assert per_user.axes[0].get_ylabel().endswith("per invited user")
    v["opened"] = v["accounts"] / 2  # half the invited open a line: twice the rate per line
    rows, per = charts.batch_rates(v)
    assert per == "per opened line"
    last = v.sort_values("mob").groupby("vintage").tail(1).sort_values("vintage")
    np.testing.assert_allclose(rows["rate"], 2 * last["dpd90_cum_rate"])
    fig = charts.batch_default(v)
    assert fig.axes[0].get_ylabel().endswith("per opened line")
    # vintages 0 and 1 have 13 and 12 months on book: seasoned (filled); 2 and 3 are young
    assert rows["seasoned"].tolist() == [True, True, False, False]


def test_crossings_find_the_first_month_at_the_target():
    df = credit_monthly(("a",), reps=1, months=12)
    df["invited_share"] = 0.03 * df["month"]  # reaches 30% in month 10
    hits = charts.crossings(df, 0.3)
    assert hits["month"].tolist() == [10.0]
    assert charts.crossings(df, 0.9)["month"].isna().all()


def test_speed_risk_places_each_strategy_at_its_months_to_target_and_risk():
    df = credit_monthly(("fast", "slow", "never"), reps=2, months=12)
    speed = {"fast": 0.06, "slow": 0.03, "never": 0.01}
    for name, per_month in speed.items():
        df.loc[df.strategy == name, "invited_share"] = per_month * df["month"]
    fig = charts.speed_risk(df, target=0.3, budget=0.02)
    ax = fig.axes[0]
    points = {c.get_label(): c.lines[0] for c in ax.containers}
    assert points["fast"].get_xdata()[0] == 5 and points["slow"].get_xdata()[0] == 10
    assert points["never"].get_xdata()[0] > 12 and points["never"].get_marker() == ">"
    last = df[df.month == 12].groupby("strategy").default_rate_12m.mean()
    assert points["slow"].get_ydata()[0] == pytest.approx(last["slow"])
    assert "default budget 2.0%" in labels(fig)
    assert ax.get_ylim()[0] == 0
    assert "never" in [t.get_text() for t in ax.texts][-1]


def test_speed_risk_draws_no_frontier_of_one_point():
    df = credit_monthly(("a", "b"), reps=2, months=12)
    df.loc[df.strategy == "b", "invited_share"] = 0.01
    fig = charts.speed_risk(df, target=0.3)
    assert not any("frontier" in label for label in labels(fig))


def test_visibility_by_version_is_visible_among_invited(small_run):
    fig = charts.visibility_by_version(small_run.segments)
    seg = small_run.segments
    cells = seg[(seg.dimension == "version") & (seg.month == seg.month.max())]
    shown = [p.get_height() for p in fig.axes[0].containers[0]]
    expected = cells.visible / cells.invited.where(cells.invited > 0)
    np.testing.assert_allclose(shown, expected, equal_nan=True)
    # the newest clients see the entry far more often than 8.0.20 (89% vs 12% in the brief)
    by_version = dict(zip(cells.value, expected, strict=True))
    assert by_version["8.0.40"] > 0.75 > 0.25 > by_version["8.0.20"]


def test_strategies_get_distinct_colours_and_legends_sit_outside_the_data():
    names = [f"s{i}" for i in range(10)]
    assert len(set(charts.colours(names).values())) == 10
    df = credit_monthly(("tier_first", "version_first"), reps=2)
    fig = charts.coverage(df, target=0.3)
    report.png(fig)  # lays the figure out
    legend = fig.legends[0].get_window_extent()
    assert legend.x0 >= fig.axes[0].get_window_extent().x1


def test_risk_reach_draws_the_efficient_frontier():
    df = credit_monthly(("cautious", "balanced", "reckless"), reps=4, months=6)
    # reckless: more risk than balanced and no more reach, so it is off the frontier
    df.loc[df.strategy == "reckless", "invited_share"] = (
        df.loc[df.strategy == "balanced", "invited_share"].to_numpy() - 0.01)
    fig = charts.risk_reach(df)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0 and ax.get_xlim()[0] == 0  # noise must not look like reach
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


def test_net_income_parts_add_up_to_the_net_income():
    df = one_run(credit_monthly())
    fig = charts.net_income(df)
    ax = fig.axes[0]
    assert labels(fig) == ["net income", "interest revenue", "charge-off loss", "funding cost"]
    net = df.groupby("quarter").net_income.sum() / 1e6
    revenue, loss, cost = ([p.get_height() for p in c] for c in ax.containers)
    np.testing.assert_allclose(np.add(np.add(revenue, loss), cost), net)
    assert all(h <= 0 for h in loss + cost)
    marker = next(line for line in ax.get_lines() if line.get_label() == "net income")
    np.testing.assert_allclose(marker.get_ydata(), net)
    assert ax.get_ylabel() == "per quarter (CNY, millions)"


def test_capital_in_a_comparison_marks_each_strategys_bound_months():
    df = credit_monthly(("a", "b"), reps=2)
    fig = charts.capital(df)
    ticks = [line for line in fig.axes[0].get_lines() if line.get_label() == "_bound"]
    bound = df.groupby(["strategy", "date"]).capital_bound.any().sum()
    assert len(ticks) == bound > 0
    assert "capital limit" in labels(fig)


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
