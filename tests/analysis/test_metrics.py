"""One table of metric definitions, the glossary generated from it, and the derived figures
computed from tables (analytic values)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis import metrics


def test_glossary_file_is_generated_from_the_definitions():
    # python -m sim.analysis.metrics rewrites docs/metrics.md
    assert metrics.GLOSSARY.read_text(encoding="utf-8") == metrics.glossary()


def test_every_rate_names_its_numerator_denominator_and_unit():
    names = [m.name for m in metrics.METRICS]
    assert len(names) == len(set(names))
    for m in metrics.METRICS:
        assert m.numerator and m.denominator and m.meaning and m.table
        assert m.unit.startswith("per ") or m.unit in ("days", "months")
    assert metrics.BY_NAME["default_12mob_opened"].unit == "per opened line"
    assert metrics.BY_NAME["dpd30_rate"].unit == "per invited user"


def _monthly(shares, run_off=None):
    dates = pd.date_range("2025-01-31", periods=len(shares), freq="ME")
    df = pd.DataFrame({"date": dates, "month": range(1, len(shares) + 1),
                       "invited_share": shares, "visible_share": shares})
    if run_off is not None:
        df["run_off"] = run_off
    return df


def test_days_to_target_interpolates_between_month_ends():
    # month ends: Jan 31 = day 31, Feb 28 = day 59, Mar 31 = day 90; 0.3 is half way from
    # 0.2 (day 59) to 0.4 (day 90)
    assert metrics.days_to_target(_monthly([0.1, 0.2, 0.4]), 0.3) == pytest.approx(74.5)
    # from coverage 0 at the start to 0.6 at day 31: 0.3 at day 15.5
    assert metrics.days_to_target(_monthly([0.6, 0.7]), 0.3) == pytest.approx(15.5)
    assert metrics.days_to_target(_monthly([0.1, 0.2]), 0.3) == math.inf


def test_run_off_months_are_not_the_horizon():
    monthly = _monthly([0.1, 0.2, 0.4], run_off=[False, False, True])
    assert metrics.days_to_target(monthly, 0.3) == math.inf
    assert len(metrics.horizon(monthly)) == 2


def _vintages():
    # two vintages; the first reached 12 months on book at month 13, the second at month 15;
    # a third never did
    rows = []
    for v, sent, opened, defaults in ((0, 1, 100.0, 4.0), (1, 3, 300.0, 3.0),
                                      (2, 10, 50.0, 5.0)):
        for month in range(sent, 16):
            mob = month - sent
            grown = min(mob, 12) / 12
            rows.append({"vintage": v, "month": month, "mob": mob, "accounts": 1000.0,
                         "opened": opened, "defaults": defaults * grown,
                         "opened_defaults": defaults * grown, "dpd30_opened": 0.0,
                         "drawn": 10.0 * opened, "loss": defaults * grown})
    return pd.DataFrame(rows)


def test_pooled_default_at_months_on_book_per_opened_line_and_per_invited_user():
    v = _vintages()
    assert metrics.pooled_default_at(v, 12, "opened") == pytest.approx(7 / 400)
    assert metrics.pooled_default_at(v, 12, "invited") == pytest.approx(7 / 2000)
    assert metrics.pooled_default_at(v, 12, until_month=13) == pytest.approx(4 / 100)
    assert math.isnan(metrics.pooled_default_at(v, 18))
    path = metrics.pooled_path(v, 12)
    assert path.to_dict() == pytest.approx({13: 0.04, 15: 7 / 400})
    figures = metrics.risk_figures(v, 12)
    assert figures["default_12mob_opened_peak"] == pytest.approx(0.04)
    assert figures["vintages_12mob"] == 2
    assert figures["batch_loss_rate"] == pytest.approx((4 + 3 + 5 * 5 / 12) / 4500)


def test_the_peak_along_the_path_ignores_pools_too_small_to_read():
    # the first pool (100 lines, 4 defaults: 4%) is noise at one simulated user per line; the
    # second (400 lines, 7 defaults) is what the budget is judged on from 400 lines up
    v = _vintages()
    path = metrics.pooled_path(v, 12, weight=1.0, min_lines=400)
    assert path.to_dict() == pytest.approx({15: 7 / 400})
    figures = metrics.risk_figures(v, 12, weight=1.0)  # no pool reaches 1,000: the last one
    assert figures["default_12mob_opened_peak"] == pytest.approx(7 / 400)
    # at 10 real users a simulated one, the first pool is 10 simulated lines
    assert metrics.pooled_path(v, 12, weight=10.0, min_lines=30).to_dict() == \
        pytest.approx({15: 7 / 400})


def test_vintage_rates_divide_by_opened_lines():
    v = metrics.vintage_rates(pd.DataFrame({"opened": [0.0, 50.0], "dpd30_opened": [0.0, 2.0],
                                            "opened_defaults": [0.0, 1.0]}))
    assert np.isnan(v["dpd30_opened_rate"].iloc[0])
    assert v["dpd30_opened_rate"].iloc[1] == 0.04 and v["default_opened_rate"].iloc[1] == 0.02
