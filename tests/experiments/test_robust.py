"""Robust comparisons: outcomes, robustness measures, common random numbers, resume."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.analysis.stats import wilson_interval
from sim.cli.app import app
from sim.experiments import robust as rb
from sim.experiments import uncertainties as un
from sim.io.folders import OutputError
from sim.scenario import ScenarioError, load

UNCERTAIN = """
set:
  macro.shocks: [{name: downturn, start: 2025-06-01, end: 2025-08-31, hazard_multiplier: 1.0}]
uncertainties:
  risk.monthly_hazard: {low: 0.004, high: 0.009}
  macro.shocks.0.start: {low: 2025-03-01, high: 2025-09-01}
  credit.activation: {factor: {low: 0.7, high: 1.3}}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, baseline_path):
    folder = tmp_path_factory.mktemp("robust")
    path = folder / "uncertain.yaml"
    path.write_text(UNCERTAIN)
    base = load(baseline_path, users=1500)
    copy = base.replace({"name": "copy"})  # same plan (rollout names salt the buckets)
    wide = base.replace({"rollout.name": "wide",
                         "rollout.phases.0.batch.share": 0.08})
    return folder, path, [base, copy, wide]


def _robust(setup, root, **kw):
    _, path, strategies = setup
    options = {"futures": 4, "quarters": 5, "budget": 0.02, "root": root} | kw
    return rb.robust(strategies, path, **options)


def test_outcomes_interpolate_the_target_and_pool_vintages_at_12_months():
    monthly = pd.DataFrame({"month": [1, 2, 3], "invited_share": [0.1, 0.2, 0.4],
                            "outstanding": [10.0, 40.0, 30.0],
                            "capital_limit": [100.0, 100.0, 100.0],
                            "capital_bound": [False] * 3, "charge_off_loss": [0.0, 1, 2],
                            "net_income": [5.0, 5, 5]})
    vintages = pd.DataFrame({"vintage": [0, 1, 2], "mob": [12, 12, 11],
                             "accounts": [100.0, 300.0, 50.0], "opened": [40.0, 160.0, 20.0],
                             "defaults": [1.0, 9.0, 25.0], "opened_defaults": [1.0, 9.0, 10.0]})
    got = rb.outcomes({"metrics": monthly, "vintages": vintages}, target=0.3)
    assert got["time_to_target_months"] == pytest.approx(2.5)   # halfway from 0.2 to 0.4
    assert got["default_12mob_opened"] == pytest.approx(0.05)  # (1 + 9) / (40 + 160) lines
    assert got["peak_capital_use"] == pytest.approx(0.4)
    assert (got["loss"], got["net_income"]) == (3.0, 15.0)
    assert math.isinf(rb.outcomes({"metrics": monthly}, target=0.5)["time_to_target_months"])
    # coverage already above the target at the first month end: interpolated from 0 at 0
    assert rb.outcomes({"metrics": monthly}, target=0.05)["time_to_target_months"] == \
        pytest.approx(0.5)


def test_wilson_interval_matches_the_closed_form_at_zero():
    share, low, high = wilson_interval(0, 10)
    assert (share, low) == (0.0, 0.0)
    assert high == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-5)


def test_measures_flag_constraints_and_regret_against_the_best_plan():
    table = pd.DataFrame({
        "strategy": ["a", "b", "a", "b"], "future": [0, 0, 1, 1],
        "time_to_target_months": [10.0, 14.0, np.inf, 20.0],
        "default_12mob_opened": [0.01, 0.01, 0.01, 0.05],
        "peak_capital_use": [0.5, 0.5, 0.5, 0.5], "net_income": 1.0})
    m = rb.measures(table, budget=0.02, by_months=18, horizon_months=24)
    assert m["satisficing"].tolist() == [True, True, False, False]
    # future 1: a never reaches (horizon 24), b breaks the budget (horizon 24): no regret
    assert m["regret_months"].tolist() == [0.0, 4.0, 0.0, 0.0]
    ranks = rb.ranking(m, ["b", "a"])
    assert ranks.strategy.tolist() == ["a", "b"]  # equal shares: lower regret first
    assert ranks.loc[0, "regret_max"] == 0.0 and ranks.loc[1, "over_budget"] == 1


def test_every_strategy_runs_on_the_same_futures_and_random_numbers(setup):
    folder, _, _ = setup
    result = _robust(setup, folder / "whole")
    out = result.outcomes.set_index(["strategy", "future"]).sort_index()
    a, b = out.loc["baseline:tier-first"], out.loc["copy:tier-first"]
    cols = ["time_to_target_months", "default_12mob_opened", "net_income"]
    pd.testing.assert_frame_equal(a[cols], b[cols])  # same plan, same future: same outcome
    assert not out.loc["baseline:wide"][cols].equals(a[cols])
    assert len(result.futures) == 4 and set(result.ranking.strategy) == {
        "baseline:tier-first", "copy:tier-first", "baseline:wide"}
    assert "Robustness of 3 strategies x 4 futures" in repr(result)
    assert result.summary()["recommended"] == result.recommended


def test_resume_after_a_kill_gives_the_same_tables_and_other_inputs_are_refused(setup):
    from sim.experiments.executors import ProcessPool

    folder, _, _ = setup
    whole = _robust(setup, folder / "whole")

    def stop(done, total):
        if done == 5:
            raise KeyboardInterrupt  # like a kill: 5 of 12 runs are on disk
    with pytest.raises(KeyboardInterrupt):
        _robust(setup, folder / "half", progress=stop)
    assert len(rb.completed(folder / "half")) == 5
    pool = ProcessPool(2)
    try:
        resumed = _robust(setup, folder / "half", executor=pool)
    finally:
        pool.close()
    for name in ("outcomes", "futures", "ranking"):
        pd.testing.assert_frame_equal(getattr(resumed, name), getattr(whole, name))
    with pytest.raises(OutputError, match="differ in: reps"):
        _robust(setup, folder / "half", reps=2)


def test_uncertainty_files_name_the_bad_key(setup, tmp_path):
    _, _, strategies = setup
    bad = tmp_path / "bad.yaml"
    bad.write_text("uncertainties:\n  risk.monthly_hazzard: {low: 0.1, high: 0.2}\n")
    with pytest.raises(ScenarioError, match="monthly_hazard"):
        un.read(bad, strategies[0])
    bad.write_text("uncertainties:\n  risk.monthly_hazard: {low: 0.2, high: 0.1}\n")
    with pytest.raises(ScenarioError, match="low < high"):
        un.read(bad, strategies[0])


def test_a_date_uncertainty_moves_the_whole_window(setup):
    _, path, strategies = setup
    unc = un.read(path, strategies[0])
    futures = unc.sample(6, seed=3)
    for row in futures.to_dict("records"):
        shock = unc.apply(strategies[0], row).macro.shocks[0]
        assert shock.start == row["macro.shocks.0.start"].date()
        assert (shock.end - shock.start).days == 91  # 2025-06-01 to 2025-08-31
    factor = futures["credit.activation"].iloc[0]
    world = unc.apply(strategies[0], futures.iloc[0].to_dict())
    assert world.credit.activation["mass_market"] == pytest.approx(0.05 * factor)


def test_the_command_writes_tables_summary_and_charts(setup, tmp_path, baseline_path):
    _, path, _ = setup
    res = CliRunner().invoke(app, ["robust", str(baseline_path),
                                   "scenarios/conservative.yaml", "--uncertainties",
                                   str(path), "--futures", "2", "--users", "1500",
                                   "--quarters", "5", "--workers", "1", "--quiet",
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "recommended:" in res.output
    summary = tmp_path / "r" / "summary"
    assert (summary / "summary.json").exists() and (summary / "ranking.parquet").exists()
    assert {p.name for p in (summary / "charts").iterdir()} >= {"satisficing.png",
                                                                 "regret.png", "tradeoff.png"}
    page = (summary / "report.html").read_text()  # the page answers first, charts inline
    best = json.loads((summary / "summary.json").read_text())["recommended"]
    assert page.index("Recommended:") < page.index("Plans ranked") < page.index("<img")
    assert f"<b>{best}</b>" in page and page.count("data:image/png;base64,") >= 3
    # greysim report re-renders the same folder
    assert CliRunner().invoke(app, ["report", str(summary)]).exit_code == 0
    bad = CliRunner().invoke(app, ["robust", str(baseline_path), "--uncertainties",
                                   str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2 and "missing.yaml" in bad.output
