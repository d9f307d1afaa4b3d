"""Strategy comparison and sweeps: honest intervals, verdicts that follow the table, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.experiments import compare as ex
from sim.experiments import sweep
from sim.experiments.executors import DaskCluster, ProcessPool

SMALL = ["population.users=8000"]


def _per_run(rows):
    return pd.DataFrame(rows)


def test_verdict_follows_the_table():
    rows = []
    for r in range(4):
        rows += [
            {"strategy": "slow", "replication": r, "days_to_target": 540.0 + r,
             "default_12mob_opened_peak": 0.010 + 0.001 * r},
            {"strategy": "fast-risky", "replication": r, "days_to_target": 270.0 + r,
             "default_12mob_opened_peak": 0.060 + 0.001 * r},
            {"strategy": "fast-safe", "replication": r, "days_to_target": 360.0 + 2 * r,
             "default_12mob_opened_peak": 0.020 + 0.001 * r},
        ]
    per_run = _per_run(rows)
    v = ex.verdict(per_run, 0.3, max_default_rate=0.03)
    assert v.winner == "fast-safe" and v.runner_up == "slow" and v.clear
    assert "over the risk budget: 6.15%" in v.reasons["fast-risky"]
    assert ex.verdict(per_run, 0.3, max_default_rate=None).winner == "fast-risky"
    none = ex.verdict(per_run, 0.3, max_default_rate=0.005)
    assert none.winner is None and none.text.startswith("No strategy")
    summary = ex.summarize_strategies(per_run)
    diff = summary[(summary.strategy == "fast-safe") & (summary.metric == "days_to_target")]
    assert diff["diff"].iloc[0] == -180.0 + 0.5 * 3  # paired against the first, 'slow'


def test_compare_finds_the_faster_strategy(baseline_path):
    slow = sim.load(baseline_path, [*SMALL, "rollout.name=slow"])
    fast = sim.load(baseline_path, [*SMALL, "rollout.name=fast",
                                    "rollout.phases.1.batch.share=0.2",
                                    "rollout.phases.2.batch.share=0.2"])
    result = ex.compare([slow, fast], 3, target=0.25, quarters=8)
    per_run, verdict = result.runs, result.verdict
    means = result.summary.pivot(index="strategy", columns="metric", values="mean")
    assert means.loc["fast", "quarters_to_target"] < means.loc["slow", "quarters_to_target"]
    assert verdict.winner == "fast" and "'fast'" in verdict.text
    assert set(per_run.replication) == {0, 1, 2}


def test_common_random_numbers_shrink_the_interval_of_the_difference(baseline_path):
    a = sim.load(baseline_path, [*SMALL, "rollout.name=a"])
    b = sim.load(baseline_path, [*SMALL, "rollout.name=b", "scoring.cutoff=27"])

    def width(crn: bool) -> float:
        s = ex.compare([a, b], 6, target=0.2, quarters=4, common_random_numbers=crn).summary
        row = s[(s.strategy == "b") & (s.metric == "invited_share_q4")].iloc[0]
        return row.diff_ci_high - row.diff_ci_low

    # (with 6 replications an interval's width is itself uncertain by about +-30%; the
    # ratio is about 0.2, with 6 replications as with 12)
    assert width(True) < 0.6 * width(False)


def test_compare_cli_writes_tables_and_verdict(tmp_path, baseline_path):
    other = baseline_path.parent / "conservative.yaml"
    res = CliRunner().invoke(app, ["compare", str(baseline_path), str(other),
                                   "--reps", "2", "--users", "5000", "--quarters", "2",
                                   "--workers", "1", "--quiet", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "verdict" in res.output
    assert (tmp_path / "c" / "comparison.parquet").exists()
    bad = CliRunner().invoke(app, ["compare", str(baseline_path), "--quiet"])
    assert bad.exit_code == 2 and "at least two" in bad.output


def test_sweep_is_identical_in_process_pool_and_dask(tmp_path, baseline_path):
    pytest.importorskip("dask.distributed")
    design = sweep.grid(["scoring.cutoff=22,28"])
    kwargs = {"reps": 2, "quarters": 1, "overrides": SMALL}
    plain = sweep.run_sweep(baseline_path, design, tmp_path / "a", **kwargs)
    pool = ProcessPool(2)
    try:
        pooled = sweep.run_sweep(baseline_path, design, tmp_path / "b", executor=pool, **kwargs)
    finally:
        pool.close()
    dask = DaskCluster(workers=2)
    try:
        clustered = sweep.run_sweep(baseline_path, design, tmp_path / "c", executor=dask,
                                    **kwargs)
    finally:
        dask.close()
    assert plain.equals(pooled) and plain.equals(clustered)
    for name in ("a", "b", "c"):
        m = pd.read_parquet(tmp_path / name / "points" / "point=0001" / "metrics.parquet")
        assert m.equals(pd.read_parquet(tmp_path / "a" / "points" / "point=0001" /
                                        "metrics.parquet"))


def test_grid_sensitivity_names_the_parameter_that_matters(tmp_path, baseline_path):
    design = sweep.grid(["scoring.cutoff=15,25,35", "reporting.bands.income=[4000],[6000]"])
    results = sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=2,
                              overrides=SMALL)
    table = sweep.sensitivity(results, design)
    top = table[table.output == "invited_share_final"].sort_values("rank").iloc[0]
    assert top.parameter == "scoring.cutoff" and top.first_order > 0.9 and top.spearman < 0


def test_interrupted_sweep_resumes_without_recomputing(tmp_path, baseline_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "sim", "sweep", str(baseline_path), "--grid",
           "scoring.cutoff=20,21,22,23,24,25,26,27", "--users", "15000", "--quarters", "4",
           "--workers", "1", "--quiet", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(sweep.completed_points(out)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = sweep.completed_points(out)
    assert 2 <= len(before) < 8
    stamps = {p: (out / "points" / f"point={p:04d}" / "runs.parquet").stat().st_mtime_ns
              for p in before}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    assert sweep.completed_points(out) == set(range(8))
    for p, stamp in stamps.items():  # finished points were not recomputed
        assert (out / "points" / f"point={p:04d}" / "runs.parquet").stat().st_mtime_ns == stamp
    results = pd.read_parquet(out / "summary" / "results.parquet")
    assert len(results) == 8 and results.point.is_unique
    assert not [p for p in (out / "points").iterdir() if p.name.startswith(".")]


def test_swap_set_cells_add_up_and_follow_the_strategies(baseline_path):
    everyone = ("rollout.phases=[{name: all, start: 2025-01-01, cadence_days: 14, "
                "batch: {share: 1.0}}]")  # invite every eligible user at once
    wide = sim.load(baseline_path, [*SMALL, everyone, "rollout.name=wide"])
    narrow = sim.load(baseline_path, [*SMALL, everyone, "rollout.name=narrow",
                                      "scoring.cutoff=40"])
    swaps = ex.compare([wide, narrow], 2, target=0.3, quarters=4).swap_sets
    assert set(swaps.cell) == {"both", "champion_only", "challenger_only", "neither"}
    assert swaps.users.sum() == pytest.approx(8000)  # every user in exactly one cell
    cells = swaps.set_index("cell")
    # a higher cut-off invites a subset: almost nobody is invited by the challenger alone
    assert cells.loc["challenger_only", "users"] < 0.1 * cells.loc["champion_only", "users"]
    # those the narrow strategy leaves out are riskier than those both invite
    assert cells.loc["champion_only", "latent_pd_12m"] > cells.loc["both", "latent_pd_12m"]


def test_sweep_cli_writes_a_report_with_one_series_per_point(tmp_path, baseline_path):
    out = tmp_path / "sweep"
    res = CliRunner().invoke(app, ["sweep", str(baseline_path), "--grid",
                                   "scoring.cutoff=20,25,30", "--users", "5000", "--quarters", "2",
                                   "--workers", "1", "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    page = (out / "summary" / "report.html").read_text()
    assert "Sensitivity" in page and "scoring.cutoff" in page
    metrics = pd.read_parquet(out / "summary" / "metrics.parquet")
    assert sorted(metrics.strategy.unique()) == ["point 0: cutoff=20", "point 1: cutoff=25",
                                                  "point 2: cutoff=30"]


def test_verdict_breaks_a_tie_in_time_by_a_significantly_lower_risk():
    rows = []
    for r in range(3):
        rows += [{"strategy": "wide-risky", "replication": r, "days_to_target": 450.0 + r,
                  "default_12mob_opened": 0.021 + 0.001 * r, "batch_loss_rate": 0.01,
                  "default_12mob_opened_peak": 0.021 + 0.001 * r},
                 {"strategy": "narrow-safe", "replication": r, "days_to_target": 451.0 - r,
                  "default_12mob_opened": 0.011 + 0.0011 * r, "batch_loss_rate": 0.01,
                  "default_12mob_opened_peak": 0.011 + 0.0011 * r}]
    v = ex.verdict(pd.DataFrame(rows), 0.3, max_default_rate=0.025)
    assert v.winner == "narrow-safe" and v.clear


@pytest.mark.parametrize("command", ["compare", "sweep"])
def test_numeric_trouble_in_a_run_is_one_message_not_a_traceback(tmp_path, baseline_path,
                                                                  command):
    args = ([command, str(baseline_path), str(baseline_path.parent / "conservative.yaml"),
             "--reps", "1"]
            if command == "compare" else
            [command, str(baseline_path), "--grid", "risk.monthly_hazard=0.01,0.6"])
    res = CliRunner().invoke(app, [*args, "--users", "2000", "--quarters", "1", "--workers",
                                   "1", "--quiet", "--no-report", "--set",
                                   "risk.monthly_hazard=0.6" if command == "compare" else
                                   "seed=1", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2, res.output
    assert "risk.monthly_hazard" in res.output and res.exc_info[0] is SystemExit
