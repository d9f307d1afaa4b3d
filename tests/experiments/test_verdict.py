"""The verdict: a renamed copy is no clear difference; exclusions say why with their figure;
too few replications are warned about."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.experiments import compare as ex

SMALL = {"population.users": 4000}


@pytest.fixture(scope="module")
def copy_comparison(baseline_path):
    a = sim.load(baseline_path, SMALL)
    b = a.replace({"rollout.name": "renamed"})  # the same strategy under another label
    return ex.compare([a, b], 3, quarters=6, mob=3, max_default_rate=0.5)


def test_a_renamed_copy_is_no_clear_difference(copy_comparison):
    c = copy_comparison
    assert len(c.strategies) == 2
    diffs = c.differences
    finite = diffs[np.isfinite(diffs["diff"])]
    assert len(finite) > 10 and (finite["diff"] == 0).all()
    assert not c.summary["significant"].any()
    v = c.verdict
    assert not v.clear and v.winner is not None and v.runner_up is not None
    assert v.text.lower().startswith("no clear difference")
    assert v.to_dict()["clear"] is False


def _rows(reps: int = 4) -> pd.DataFrame:
    rows = []
    for r in range(reps):
        rows += [{"strategy": "safe", "replication": r, "days_to_target": 400.0 + r,
                  "default_12mob_opened_peak": 0.004 + 0.0001 * r, "capital_use_peak": 0.5,
                  "capital_bound_months": 0.0},
                 {"strategy": "risky", "replication": r, "days_to_target": 200.0 + r,
                  "default_12mob_opened_peak": 0.009 + 0.0002 * r, "capital_use_peak": 0.7,
                  "capital_bound_months": 0.0},
                 {"strategy": "big", "replication": r, "days_to_target": 100.0 + r,
                  "default_12mob_opened_peak": 0.003, "capital_use_peak": 1.2,
                  "capital_bound_months": 3.0},
                 {"strategy": "slow", "replication": r,
                  "days_to_target": np.inf if r == 0 else 500.0,
                  "default_12mob_opened_peak": 0.002, "capital_use_peak": 0.2,
                  "capital_bound_months": 0.0}]
    return pd.DataFrame(rows)


def test_every_excluded_strategy_says_why_with_its_number():
    v = ex.verdict(_rows(), 0.3, max_default_rate=0.006)
    assert v.winner == "safe" and v.runner_up is None and v.clear
    assert "over the risk budget: 0.93%" in v.reasons["risky"] and "0.60%" in v.reasons["risky"]
    assert "over the capital limit" in v.reasons["big"] and "120%" in v.reasons["big"]
    assert "held batches back in 3.0 months" in v.reasons["big"]
    assert "does not reach 30% invited coverage in 1 of 4" in v.reasons["slow"]
    assert not v.warnings


def test_the_runner_up_and_a_clear_time_difference():
    v = ex.verdict(_rows(), 0.3, max_default_rate=0.01)
    assert (v.winner, v.runner_up, v.clear) == ("risky", "safe", True)
    assert "+200 days" in v.text


def test_fewer_than_three_replications_are_warned():
    v = ex.verdict(_rows(2), 0.3, max_default_rate=0.01)
    assert any("cannot decide" in w for w in v.warnings)
