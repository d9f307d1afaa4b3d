"""The command line: exit codes, messages, and the run folder it writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli.app import app

runner = CliRunner()
SMALL = ["--users", "20000", "--quarters", "2", "--quiet"]
#: Tables and folders only: the report is checked in tests/io/test_report.py (2 s a run).
TABLES = [*SMALL, "--no-report"]


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_run_writes_a_complete_run_folder(tmp_path, baseline_path):
    out = tmp_path / "run"
    res = _run("run", baseline_path, *SMALL, "--out", out)
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"metrics.parquet", "segments.parquet",
                                                 "batches.parquet", "summary.json",
                                                 "manifest.json"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 20250101 and manifest["scenario"]["population"]["users"] == 20000
    assert len(manifest["scenario_digest"]) == 64
    metrics = pd.read_parquet(out / "metrics.parquet")
    # two quarters of rollout, then the default 12 run-off months
    assert list(metrics.month) == list(range(1, 6 + 12 + 1))
    assert metrics.run_off.tolist() == [False] * 6 + [True] * 12
    assert "invited" in res.output and "churn" in res.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_same_seed_same_bytes_different_seed_differs(tmp_path, baseline_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        assert _run("run", baseline_path, *TABLES, "--seed", seed, "--out",
                    tmp_path / name).exit_code == 0
    read = {n: (tmp_path / n / "metrics.parquet").read_bytes() for n in "abc"}
    assert read["a"] == read["b"] != read["c"]
    seg = {n: (tmp_path / n / "segments.parquet").read_bytes() for n in "ab"}
    assert seg["a"] == seg["b"]


def test_out_refuses_a_folder_with_files_unless_forced(tmp_path, baseline_path):
    """--force replaces a run folder greysim wrote, never a folder of the user's files."""
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for extra in ([], ["--force"]):
        res = _run("run", baseline_path, *TABLES, "--out", out, *extra)
        assert res.exit_code == 2 and "--force" not in res.output
    assert (out / "notes.txt").read_text() == "mine"
    run = tmp_path / "run"
    assert _run("run", baseline_path, *TABLES, "--out", run).exit_code == 0
    res = _run("run", baseline_path, *TABLES, "--out", run)
    assert res.exit_code == 2 and "--force" in res.output
    assert _run("run", baseline_path, *TABLES, "--out", run, "--force").exit_code == 0
    assert (run / "metrics.parquet").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--set", "population.users=-1"], "population.users"),
    (["--set", "rollout.phases.0.ordering=alphabetical"], "rollout.phases.0.ordering"),
    (["--set", "nonsense.key=1"], "nonsense"),
    (["--quarters", "40"], "quarters"),
])
def test_bad_input_exits_2_with_the_key(baseline_path, args, needle):
    res = _run("run", baseline_path, "--quiet", *args)
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output


def test_validate(baseline_path, tmp_path):
    ok = _run("validate", baseline_path)
    assert ok.exit_code == 0 and "valid" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: {baseline_path}\npopulation:\n  regions:\n    tier1: {{share: 2}}\n")
    res = _run("validate", bad)
    assert res.exit_code == 2 and str(bad) in res.output and "population.regions" in res.output


def test_console_script_gives_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    proc = subprocess.run([sys.executable, "-m", "sim.cli.app", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout and "bad.yaml" in proc.stderr


def test_error_text_is_printed_as_written(tmp_path, baseline_path):
    """Messages are plain text: ':100:' is a line number, not an emoji code, and brackets in
    a user's key are not console markup."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n" + "\n" * 98 + "population: {users: 3}: oops\n")
    res = CliRunner().invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    assert "bad.yaml:100" in res.output, res.output
    res = CliRunner().invoke(app, ["validate", str(baseline_path),
                                   "--set", "population.[bold]users=3"])
    assert res.exit_code == 2
    assert "[bold]users" in res.output, res.output
