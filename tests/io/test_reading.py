"""What ``greysim report`` and ``run --check`` read from a folder is checked first: a crafted
or damaged summary.json or manifest.json is one message naming the file and the key (exit 2),
never a traceback; the manifest's seed and months are covered like its scenario."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli.app import app
from sim.io.folders import OutputError
from sim.io.reading import read_manifest, read_summary

ROOT = Path(__file__).resolve().parents[2]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")


def greysim(*args) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, " ".join(res.output.split())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("reading") / "run"
    code, text = greysim("run", BASELINE, "--users", "1500", "--quarters", "1", "--quiet",
                         "--no-report", "--out", folder)
    assert code == 0, text
    return folder


@pytest.fixture
def copy(run_dir, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(run_dir, dest)
    return dest


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split("__")
        target = data
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(json.dumps(data))


def _refused(code: int, text: str, *words: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text and "bug in greysim" not in text, text
    for w in words:
        assert w in text, text


@pytest.mark.parametrize(("key", "value"), [
    ("target", "x"), ("target", 7), ("final", [1, 2]), ("final", {"invited_share": "a"}),
    ("quarters", "abc"), ("quarters", [1, 2]), ("not_eligible_at_start", {"age": "x"}),
    ("users", "many"), ("weight", -1), ("months", 1.5), ("seed", -3), ("verdict", {"a": 1}),
])
def test_report_on_a_crafted_summary_names_the_file_and_key(copy, key, value):
    _edit(copy / "summary.json", **{key: value})
    _refused(*greysim("report", copy), "summary.json", f"'{key}'")


@pytest.mark.parametrize("text", ["[1, 2]", "{", "", "\"x\"", "NaN", "1e999"])
def test_report_on_a_summary_that_is_not_a_mapping(copy, text):
    (copy / "summary.json").write_text(text)
    _refused(*greysim("report", copy), "summary.json")


@pytest.mark.parametrize(("key", "value"), [
    ("scenario", [1]), ("command", 5), ("command", [1, {}]), ("scenario_digest", 3),
    ("scenario__calendar", "x"), ("scenario__calendar__holidays", [{"start": "soon"}]),
    ("scenario__reporting__target_coverage", "<script>"), ("scenarios", 3),
])
def test_report_on_a_crafted_manifest_names_the_file_and_key(copy, key, value):
    _edit(copy / "manifest.json", **{key: value})
    _refused(*greysim("report", copy), "manifest.json", f"'{key.replace('__', '.')}'")


@pytest.mark.parametrize(("key", "value", "words"), [
    ("seed", "abc", ("'seed'", "whole number")),
    ("seed", -1, ("'seed'",)),
    ("seed", 1e400, ("'seed'",)),
    ("seed", 12345, ("'seed'", "digest covers")),       # outside the digest: now covered
    ("months", "x", ("'months'",)),
    ("months", 7, ("'months'", "multiple of 3")),
    ("months", 0, ("'months'",)),
    ("months", 3 * 400, ("'months'", "longer than the scenario's horizon")),
    ("scenario", "x", ("'scenario'",)),
])
def test_check_validates_the_manifest_it_trusts(copy, key, value, words):
    _edit(copy / "manifest.json", **{key: value})
    _refused(*greysim("run", "--check", copy, "--quiet"), *words)


def test_check_still_reproduces_an_untouched_run_and_catches_a_flipped_byte(copy):
    code, text = greysim("run", "--check", copy, "--quiet")
    assert code == 0, text
    table = copy / "metrics.parquet"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0xFF
    table.write_bytes(bytes(data))
    code, text = greysim("run", "--check", copy, "--quiet")
    assert code == 1 and "metrics.parquet" in text, text


def test_the_readers_accept_what_greysim_writes(run_dir):
    summary = read_summary(run_dir / "summary.json")
    manifest = read_manifest(run_dir / "manifest.json")
    assert summary["users"] == 1500 and manifest["months"] == 3


def test_a_missing_required_manifest_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="missing"):
        read_manifest(tmp_path / "manifest.json", required=True)
    assert read_summary(tmp_path / "summary.json") == {}
    assert os.path.exists(tmp_path)
