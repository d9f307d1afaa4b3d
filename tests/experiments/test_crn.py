"""Decisions a planner can trust (issue 13): common random numbers hold for every figure,
the bucketing salt is a key of its own, one label per strategy, run-off months."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.errors import GreysimError
from sim.experiments.compare import compare

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "scenarios" / "baseline.yaml"


def _share(s: float, users: int = 3_000, **more) -> sim.Scenario:
    return sim.load(BASE, {"population.users": users, "rollout.phases.0.batch.share": s,
                           "rollout.name": f"share-{s:g}", **more})


def _paired_default_variance(crn: bool) -> float:
    risky = {"risk.monthly_hazard": 0.03}  # enough defaults among 3,000 users to count
    result = compare([_share(0.05, **risky), _share(0.06, **risky)], 4, quarters=4,
                     common_random_numbers=crn)
    defaults = (result.metrics.groupby(["strategy", "replication"])["cum_defaults"].last()
                .unstack("strategy"))
    return float((defaults["share-0.06"] - defaults["share-0.05"]).var(ddof=1))


def test_common_random_numbers_narrow_the_paired_default_difference():
    """Batch share 0.05 vs 0.06: with CRN the two strategies' borrowers draw the same
    repayment, roll and miss numbers, so the paired difference of defaults varies far less
    than with each strategy on its own seeds (fixed seeds: deterministic)."""
    crn, independent = _paired_default_variance(True), _paired_default_variance(False)
    assert independent > 5 * crn


def test_a_strategy_against_a_renamed_copy_differs_by_exactly_zero():
    a = _share(0.05, users=2_000, **{"reporting.run_off_months": 3})
    b = a.replace({"rollout.name": "copy"})
    result = compare([a, b], 2, quarters=2)
    diff = result.differences.fillna(0.0)  # inf - inf: a target neither reaches
    assert (diff["diff"] == 0).all() and (diff["diff_ci_low"] == 0).all()
    assert (diff["diff_ci_high"] == 0).all()


def test_renaming_a_strategy_changes_no_table():
    sc = sim.load(BASE, {"population.users": 3_000, "reporting.run_off_months": 0,
                         "rollout.phases.0.ordering": "random"})
    first = sim.run(sc, quarters=2)
    renamed = sim.run(sc.replace({"rollout.name": "another-name"}), quarters=2)
    pd.testing.assert_frame_equal(first.monthly, renamed.monthly)
    pd.testing.assert_frame_equal(first.batches, renamed.batches)
    pd.testing.assert_frame_equal(first.vintages, renamed.vintages)
    resalted = sim.run(sc.replace({"rollout.salt": "another-salt"}), quarters=2)
    assert not np.array_equal(first.population.vintage, resalted.population.vintage)


def test_duplicate_strategy_labels_are_refused(tmp_path):
    sc = _share(0.05, users=1_000)
    with pytest.raises(GreysimError, match="share-0.05"):
        compare([sc, sc], 1, quarters=1)
    res = CliRunner().invoke(app, ["compare", str(BASE), str(BASE), "--reps", "1",
                                   "--users", "1000", "--quarters", "1", "--quiet",
                                   "--out", str(tmp_path / "c")])
    assert res.exit_code == 2, res.output
    assert "tier-first" in res.output and "baseline.yaml" in res.output
    assert not (tmp_path / "c").exists()


def test_run_off_months_invite_no_one_and_coverage_is_read_at_the_horizon():
    sc = sim.load(BASE, {"population.users": 3_000, "reporting.run_off_months": 6})
    result = sim.run(sc, quarters=2)
    m = result.monthly
    assert len(m) == 6 + 6 and m["run_off"].tolist() == [False] * 6 + [True] * 6
    off = m[m["run_off"]]
    assert (off["new_invites"] == 0).all() and (off["batches"] == 0).all()
    assert (result.batches["date"] <= m.loc[~m["run_off"], "date"].max()).all()
    assert result.summary["final"]["invited_share"] == m.loc[5, "invited_share"]
    assert result.summary["months"] == 6 and result.summary["run_off_months"] == 6
    # the horizon's months are those of a run without run-off
    none = sim.run(sc.replace({"reporting.run_off_months": 0}), quarters=2)
    assert not none.monthly["run_off"].any() and len(none.monthly) == 6
    pd.testing.assert_frame_equal(m[~m["run_off"]].drop(columns="run_off"),
                                  none.monthly.drop(columns="run_off"))
