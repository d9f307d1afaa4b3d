"""One Parameter type for sweeps and calibration; the seed has one home."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.experiments.compare import compare
from sim.experiments.parameters import Parameter
from sim.scenario import ScenarioError

runner = CliRunner()


def test_a_range_needs_an_existing_numeric_key():
    p = Parameter.parse_range("rollout.phases.0.batch.share=0.01:0.2")
    assert (p.low, p.high, p.kind) == (0.01, 0.2, "continuous")
    assert Parameter.parse_range("population.users=1000:5000").kind == "integer"
    with pytest.raises(ScenarioError, match="did you mean 'cutoff'"):
        Parameter.parse_range("scoring.cutof=1:2")
    with pytest.raises(ScenarioError, match="holds a number"):
        Parameter.parse_range("rollout.phases.0.ordering=1:2")
    with pytest.raises(ScenarioError, match="low < high"):
        Parameter.parse_range("scoring.cutoff=5:1")


def test_levels_take_any_existing_key():
    p = Parameter.parse_levels("rollout.phases.0.ordering=tier,score")
    assert p.levels == ("tier", "score")
    with pytest.raises(ScenarioError, match="does not exist"):
        Parameter.parse_levels("rollout.phases.0.orderin=tier")


def _by_strategy(comparison) -> dict[str, pd.DataFrame]:
    label = [c for c in ("strategy", "replication") if c in comparison.metrics]
    return {name: g.drop(columns=label).reset_index(drop=True)
            for name, g in comparison.metrics.groupby("strategy")}


def test_compare_uses_each_scenarios_own_seed(baseline):
    small = baseline.replace({"population.users": 3000})
    a = small.replace({"rollout.name": "a", "seed": 1})
    b = small.replace({"rollout.name": "b", "seed": 2})
    tables = _by_strategy(compare([a, b], 1, target=0.3, quarters=1))
    # same strategy, different seeds: different populations, so different tables
    assert not tables["a"].equals(tables["b"])
    b_first = _by_strategy(compare([b, a], 1, target=0.3, quarters=1))
    pd.testing.assert_frame_equal(b_first["b"], tables["b"])  # not the first one's seed


def test_sweeping_the_seed_gives_each_point_its_own_run(baseline_path, tmp_path):
    res = runner.invoke(app, ["sweep", str(baseline_path), "--grid", "seed=1,2,3",
                              "--users", "3000", "--quarters", "1", "--out",
                              str(tmp_path / "x"), "--workers", "1", "--quiet",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    tables = [pd.read_parquet(tmp_path / "x" / "points" / f"point={p:04d}" / "metrics.parquet")
              .drop(columns=["point", "replication"]) for p in range(3)]
    assert not tables[0].equals(tables[1]) and not tables[1].equals(tables[2])


def test_calibrate_a_batch_share(baseline_path, tmp_path):
    """A plain `.share` key is fitted as a number (it used to end in a TypeError)."""
    out = tmp_path / "fit.yaml"
    res = runner.invoke(app, ["calibrate", str(baseline_path), "--targets",
                              str(baseline_path.parent / "targets" / "domain.yaml"),
                              "--params", "rollout.phases.0.batch.share=0.01:0.2",
                              "--users", "3000", "--budget-evals", "2", "--out", str(out),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    fitted = sim.load(out)
    assert 0.01 <= fitted.rollout.phases[0].batch.share <= 0.2
