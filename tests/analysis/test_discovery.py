"""Scenario discovery: PRIM recovers a known failure threshold."""

import numpy as np
import pandas as pd

from sim.analysis.discovery import prim, tree


def _futures(n=400, seed=7):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"risk.monthly_hazard": rng.uniform(0.004, 0.010, n),
                         "release.adoption_half_life_weeks": rng.uniform(6, 20, n),
                         "macro.shocks.0.start": pd.Timestamp("2025-10-01")
                         + pd.to_timedelta(rng.integers(0, 365, n), unit="D")})


def test_prim_recovers_the_hazard_threshold_where_a_strategy_fails():
    x = _futures()
    threshold = 0.0075
    fails = x["risk.monthly_hazard"] > threshold
    found = prim(x, fails)
    assert found.coverage >= 0.8 and found.density >= 0.8
    box = found.box.set_index("key")
    assert box.loc["risk.monthly_hazard", "restricted"]
    span = 0.010 - 0.004
    assert abs(box.loc["risk.monthly_hazard", "low"] - threshold) <= 0.1 * span
    assert not box.loc["release.adoption_half_life_weeks", "restricted"]
    assert found.trajectory["chosen"].sum() == 1
    assert box.loc["risk.monthly_hazard", "qp_value"] < 0.01 and found.significant
    assert "risk.monthly_hazard >= " in repr(found)


def test_dates_are_reported_as_dates_and_nothing_to_find_says_so():
    x = _futures()
    late = x["macro.shocks.0.start"] > pd.Timestamp("2026-06-01")
    box = prim(x, late).box.set_index("key")
    low = pd.Timestamp(box.loc["macro.shocks.0.start", "low"])
    assert abs((low - pd.Timestamp("2026-06-01")).days) <= 37  # 10% of the year sampled
    assert "no future" in repr(prim(x, np.zeros(len(x), bool)))


def test_cart_tree_splits_on_the_hazard():
    x = _futures()
    assert "risk.monthly_hazard" in tree(x, x["risk.monthly_hazard"] > 0.0075)


def test_failures_at_random_give_a_box_flagged_as_possibly_chance():
    x = _futures(n=40)
    fails = np.zeros(40, bool)
    fails[np.random.default_rng(3).choice(40, 6, replace=False)] = True
    found = prim(x, fails)
    assert not found.significant and "may describe chance" in repr(found)
