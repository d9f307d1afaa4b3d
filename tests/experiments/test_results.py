"""The Python API returns typed results with short reprs: sim.run, sim.compare, sim.sweep and
sim.calibrate's Fit."""

from __future__ import annotations

import pandas as pd
import pytest

import sim

SMALL = ["population.users=4000"]


@pytest.fixture(scope="module")
def comparison(baseline_path):
    slow = sim.load(baseline_path, [*SMALL, "rollout.name=slow"])
    fast = sim.load(baseline_path, [*SMALL, "rollout.name=fast",
                                    "rollout.phases.1.batch.share=0.2"])
    return sim.compare([slow, fast], reps=2, target=0.25, quarters=2)


def test_result_repr_is_a_few_lines(baseline_path):
    result = sim.run(sim.load(baseline_path, SMALL), quarters=1)
    text = repr(result)
    assert len(text) < 1000 and len(text.splitlines()) <= 6
    assert "baseline" in text and "4,000 users" in text and "invited" in text


def test_compare_returns_a_comparison_with_its_tables(comparison):
    assert isinstance(comparison, sim.Comparison)
    assert comparison.strategies == ["slow", "fast"]
    runs = comparison.runs
    assert len(runs) == 4 and set(runs.strategy) == {"slow", "fast"}
    assert {"quarters_to_target", "invited_share_q2"} <= set(runs.columns)
    assert set(comparison.summary.strategy) == {"slow", "fast"}
    assert {"mean", "ci_low", "ci_high"} <= set(comparison.summary.columns)
    # paired differences are the challengers' against the champion (the first strategy)
    assert set(comparison.differences.strategy) == {"fast"}
    assert set(comparison.swap_sets.cell) == {"both", "champion_only", "challenger_only",
                                              "neither"}
    assert set(comparison.metrics.replication) == {0, 1}
    assert isinstance(comparison.verdict, sim.Verdict) and comparison.verdict.text
    assert set(comparison.tables()) >= {"runs", "comparison", "swap_set", "metrics"}


def test_comparison_repr_is_short_and_says_the_verdict(comparison):
    text = repr(comparison)
    assert len(text) < 1000
    assert "slow" in text and "fast" in text and comparison.verdict.text in text


def test_compare_takes_scenario_files_and_refuses_one_strategy(baseline_path):
    with pytest.raises(sim.GreysimError, match="at least two"):
        sim.compare([baseline_path], reps=1)


def test_sweep_returns_a_sweep_with_a_short_repr(baseline_path, tmp_path):
    result = sim.sweep(baseline_path, grid=["scoring.cutoff=20,30"], root=tmp_path / "s",
                       quarters=1, overrides=SMALL)
    assert isinstance(result, sim.Sweep)
    assert sorted(result.results.point) == [0, 1]
    assert set(result.metrics.strategy) == {"point 0: cutoff=20", "point 1: cutoff=30"}
    assert len(repr(result)) < 1000 and "scoring.cutoff" in repr(result)


def test_sweep_without_a_design_is_a_greysim_error(baseline_path, tmp_path):
    with pytest.raises(sim.GreysimError, match="grid"):
        sim.sweep(baseline_path, root=tmp_path / "s")


def test_fit_repr_stays_short_with_many_parameters(baseline_path):
    params = {f"population.tilts.k{i}": 1.0 + i / 100 for i in range(40)}
    report = pd.DataFrame({"target": ["a", "b"], "within": [True, False]})
    fit = sim.Fit(params=params, changed=params, scenario=sim.load(baseline_path),
                  report=report, cost=1.5, evaluations=12, seconds=3.0, message="converged")
    text = repr(fit)
    assert len(text) < 1000
    assert "1 within tolerance" in text and "40 parameters" in text and "more" in text
