"""Hostile input: each case exits 2 with one paragraph naming the file or key, never a
traceback, and the costly ones are refused fast (before parsing, or counting the work)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli.app import app
from sim.scenario import ScenarioError, load
from sim.scenario.files import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
TINY = ("--users", "300", "--quarters", "1", "--quiet", "--no-report")
SWEEP = ("--workers", "1")


def greysim(*args: str, cwd: Path | None = None, env: dict | None = None):
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        res = CliRunner().invoke(app, [str(a) for a in args], env=env)
    finally:
        os.chdir(old)
    return res.exit_code, " ".join(res.output.split())


def assert_refused(code: int, text: str, *words: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text and "bug in greysim" not in text, text
    for w in words:
        assert w in text, text


def merge_bomb(levels: int) -> str:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * 10) + "]"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_merge_key_bomb_is_refused_in_under_two_seconds(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(merge_bomb(8))  # 10**8 merges: 53 s of CPU before the guard counted work
    assert len(bomb.read_bytes()) < 600
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match="more than 100,000 values"):
        load(bomb)
    assert time.perf_counter() - start < 2.0


def test_a_5_mb_flat_list_is_refused_before_parsing(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\nlist: [" + ",".join(["1"] * 2_600_000) + "]\n")
    assert big.stat().st_size > 5_000_000

    def never(*_a, **_k):
        raise AssertionError("the YAML parser was started")

    monkeypatch.setattr("sim.scenario.files._Loader", never)
    start = time.perf_counter()
    with pytest.raises(ScenarioError) as info:
        load(big)
    assert time.perf_counter() - start < 1.0
    assert str(big) in str(info.value) and f"{MAX_FILE_BYTES:,} bytes" in str(info.value)


def test_a_file_just_over_the_limit_is_refused_from_the_command_line(tmp_path):
    (tmp_path / "big.yaml").write_text("name: x\n# " + "x" * MAX_FILE_BYTES + "\n")
    assert_refused(*greysim("validate", "big.yaml", cwd=tmp_path), "big.yaml",
                   "at most 1,000,000 bytes")


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\ufffe"])
def test_control_characters_are_refused_naming_the_line(tmp_path, char):
    (tmp_path / "c.yaml").write_text(f"name: ok\nquarters: 1\nnote: a{char}b\n")
    assert_refused(*greysim("validate", "c.yaml", cwd=tmp_path), "c.yaml:3",
                   "not allowed in YAML")


@pytest.mark.parametrize("where", ["file", "set"])
def test_integers_beyond_python_s_4300_digits_are_refused(tmp_path, where):
    digits = "9" * 5000
    if where == "file":
        (tmp_path / "c.yaml").write_text(f"extends: {BASELINE}\nseed: {digits}\n")
        args = ("validate", "c.yaml")
    else:
        args = ("validate", BASELINE, "--set", f"seed={digits}")
    assert_refused(*greysim(*args, cwd=tmp_path), "'seed'")


def test_keys_yaml_reads_as_one_are_refused(tmp_path):
    (tmp_path / "c.yaml").write_text(f"extends: {BASELINE}\nreporting:\n  bands:\n"
                                     "    income: [1]\n    income: [2]\n")
    assert_refused(*greysim("validate", "c.yaml", cwd=tmp_path), "appears twice")
    for a, b in [("1", "0x1"), ("1", "+1"), ("1", "1.0"), ("true", "True"), ("~", "null")]:
        text = f"name: x\nm:\n  {a}: 1\n  {b}: 2\n"
        (tmp_path / "d.yaml").write_text(text)
        assert_refused(*greysim("validate", "d.yaml", cwd=tmp_path), "d.yaml:4",
                       "appears twice")


@pytest.mark.parametrize("limit", [".", "", " ", "abc", "-1", "0", "1e999", "8 X"])
def test_a_memory_limit_that_is_not_a_size_is_one_message(tmp_path, limit):
    code, text = greysim("run", BASELINE, *TINY, "--out", "r", cwd=tmp_path,
                         env={"GREYSIM_MEMORY_LIMIT": limit})
    if limit.strip():
        assert_refused(code, text, "GREYSIM_MEMORY_LIMIT")
    else:  # empty: no override, the run goes ahead
        assert code == 0, text


@pytest.mark.parametrize("spec", ['name="x', "name='x", "name=[x", "seed=1,\"2",
                                  "scoring.cutoff=", "=1,2", "scoring.cutoff"])
def test_malformed_grid_values_never_give_a_traceback(tmp_path, spec):
    code, text = greysim("sweep", BASELINE, "--grid", spec, *TINY, *SWEEP, "--out", "sw",
                         cwd=tmp_path)
    assert code in (0, 2), text
    assert "Traceback" not in text and "bug in greysim" not in text, text


def test_a_sweep_rerun_with_other_users_or_quarters_is_refused_not_mixed(tmp_path):
    grid = ("--grid", "scoring.cutoff=23,25", *SWEEP)
    code, text = greysim("sweep", BASELINE, *grid, *TINY, "--out", "sw", cwd=tmp_path)
    assert code == 0, text
    before = sorted(p.name for p in (tmp_path / "sw" / "points").iterdir())
    for flag, value, named in [("--users", "400", "users: 300 there, 400 now"),
                               ("--quarters", "2", "quarters: 1 there, 2 now"),
                               ("--reps", "2", "replications: 1 there, 2 now")]:
        args = [a for a in TINY]
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
        code, text = greysim("sweep", BASELINE, *grid, *args, "--out", "sw", cwd=tmp_path)
        assert_refused(code, text, named, "not resumed", "--force")
    assert sorted(p.name for p in (tmp_path / "sw" / "points").iterdir()) == before
    # the same command resumes; --force starts again at the new size
    assert greysim("sweep", BASELINE, *grid, *TINY, "--out", "sw", cwd=tmp_path)[0] == 0
    args = list(TINY)
    args[1] = "400"
    code, text = greysim("sweep", BASELINE, *grid, *args, "--out", "sw", "--force",
                         cwd=tmp_path)
    assert code == 0, text
