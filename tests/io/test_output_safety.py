"""Interrupted, killed and concurrent runs never leave half-written results or lose a run."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.io import folders as output

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SMALL = ["--users", "2000", "--quarters", "1", "--quiet", "--no-report"]
FILES = {"metrics.parquet", "segments.parquet", "batches.parquet", "vintages.parquet",
         "arms.parquet", "gates.parquet", "summary.json", "manifest.json", output.MARKER}
linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")


def _greysim() -> list[str]:
    script = Path(sys.executable).with_name("greysim")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sim.cli.app"]


def _complete_or_absent(folder: Path) -> None:
    """The run folder is either complete or not there, and nothing half-written is visible."""
    if folder.exists():
        assert {p.name for p in folder.iterdir()} == FILES
        json.loads((folder / "manifest.json").read_text())
    visible = [p for p in folder.parent.iterdir() if not p.name.startswith(".")]
    assert visible in ([], [folder]), visible


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _rss_kb(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def _start_big_run(out: Path) -> subprocess.Popen:
    """A real run of the console script, long enough (a million users, 12 quarters, ~20 s)
    to be caught mid-run: returns once it is drawing or simulating the population."""
    proc = subprocess.Popen([*_greysim(), "run", str(BASELINE), "--users", "1000000",
                             "--quiet", "--no-report", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while _rss_kb(proc.pid) < 250_000:  # past start-up: the arrays are being allocated
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    return proc


def _rerun(out: Path, *extra: str):
    res = CliRunner().invoke(app, ["run", str(BASELINE), *SMALL, "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == FILES
    return res


@linux_only
def test_ctrl_c_mid_run_stops_with_one_line_and_exit_130(tmp_path):
    out = tmp_path / "runs" / "big"
    proc = _start_big_run(out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == ["error: interrupted; no run folder was written"]
    assert "Traceback" not in stdout + stderr
    assert not out.exists() and not (tmp_path / "runs").exists()
    _rerun(out)
    _complete_or_absent(out)
    assert _hidden(out.parent) == []


def test_ctrl_c_while_the_libraries_load_is_one_line_and_exit_130(monkeypatch, capsys):
    """The console script catches Ctrl-C raised while it imports the command line."""
    import types

    from sim import cli as entry

    loading = types.ModuleType("sim.cli.app")

    def interrupt(name):
        raise KeyboardInterrupt

    loading.__getattr__ = interrupt
    monkeypatch.setitem(sys.modules, "sim.cli.app", loading)
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    assert exit_.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_importing_sim_loads_no_numerical_library():
    """``import sim`` stays light, so the console script is interruptible from its start."""
    code = "import sys, sim; print(sorted({'numpy', 'pandas', 'scipy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@linux_only
def test_kill_mid_run_leaves_no_folder_and_a_rerun_succeeds(tmp_path):
    out = tmp_path / "runs" / "big"
    proc = _start_big_run(out)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    _rerun(out)
    _complete_or_absent(out)
    assert _hidden(out.parent) == []


KILL_WHILE_WRITING = """
import os, signal, sys
import sim
from sim.io import folders as output
real = output.write_json
def dying(obj, path):
    if path.name == "manifest.json":  # the tables are written, the manifest is not
        os.kill(os.getpid(), signal.SIGKILL)
    real(obj, path)
output.write_json = dying
result = sim.run(sim.load(sys.argv[1], {"population.users": 2000}), quarters=1)
output.write_run(result, sys.argv[2])
"""


def test_kill_while_writing_leaves_no_run_folder_and_the_rerun_sweeps_up(tmp_path):
    out = tmp_path / "runs" / "r1"
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_WRITING, str(BASELINE), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    left = _hidden(out.parent)
    assert len(left) == 1 and left[0].startswith(".r1.partial-")  # hidden, not a run folder
    _rerun(out)
    _complete_or_absent(out)
    assert _hidden(out.parent) == []  # the killed run's temporary folder was swept


KILL_WHILE_REPLACING = """
import os, signal, sys, types
import sim
from sim.io import folders as output
def dying(src, dst):
    os.kill(os.getpid(), signal.SIGKILL)  # the old run is set aside, the new one not in place
output.os = types.SimpleNamespace(**{**vars(os), "rename": dying})
result = sim.run(sim.load(sys.argv[1], {"population.users": 2000}), quarters=1)
output.write_run(result, sys.argv[2], force=True)
"""


def test_kill_while_replacing_with_force_keeps_the_old_run(tmp_path):
    out = tmp_path / "runs" / "r1"
    _rerun(out)
    before = (out / "manifest.json").read_text()
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_REPLACING, str(BASELINE), str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()  # killed between the two renames
    output.clean_stale(out.parent)
    assert (out / "manifest.json").read_text() == before  # the planner's run is back
    assert _hidden(out.parent) == []


def test_ctrl_c_while_writing_removes_the_temporary_folder(tmp_path, monkeypatch):
    def interrupted(obj, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "write_json", interrupted)
    out = tmp_path / "runs" / "r1"
    res = CliRunner().invoke(app, ["run", str(BASELINE), *SMALL, "--out", str(out)])
    assert res.exit_code == 130
    assert res.output.strip() == "error: interrupted; no run folder was written"
    assert not out.exists() and _hidden(out.parent) == []


def test_ctrl_c_is_held_until_the_folder_is_in_place(tmp_path, monkeypatch):
    """A Ctrl-C during the final renames lets them finish, then stops, naming the folder."""
    real = os.rename

    def rename_then_ctrl_c(src, dst):
        os.kill(os.getpid(), signal.SIGINT)
        real(src, dst)

    monkeypatch.setattr(output.os, "rename", rename_then_ctrl_c)
    out = tmp_path / "runs" / "r1"
    res = CliRunner().invoke(app, ["run", str(BASELINE), *SMALL, "--out", str(out)])
    assert res.exit_code == 130
    assert res.output.strip() == f"error: interrupted after writing {out}"
    _complete_or_absent(out)
    assert out.exists()


@pytest.fixture(scope="module")
def small_result() -> sim.Result:
    return sim.run(sim.load(BASELINE, {"population.users": 2000}), quarters=1)


def test_two_runs_started_in_the_same_second_both_survive(tmp_path, monkeypatch, small_result):
    ids = iter(["20250101-120000-aaaaaa", "20250101-120000-aaaaaa", "20250101-120000-bbbbbb"])
    monkeypatch.setattr(output, "new_run_id", lambda now=None: next(ids))
    first = output.write_run(small_result, root=tmp_path)
    second = output.write_run(small_result, root=tmp_path)  # drew the same id: redrawn
    assert first != second and first.parent == second.parent
    for folder in (first, second):
        assert {p.name for p in folder.iterdir()} == FILES


def test_a_run_id_taken_while_writing_is_redrawn(tmp_path):
    taken = tmp_path / "20250101-120000-aaaaaa"
    with output.staged_folder(taken, unique=True) as staged:
        (staged.tmp / "mine.txt").write_text("mine")
        taken.mkdir()  # another run, started in the same second, finished first
        (taken / "theirs.txt").write_text("theirs")
    assert staged.dest != taken
    assert [p.name for p in taken.iterdir()] == ["theirs.txt"]
    assert {p.name for p in staged.dest.iterdir()} == {"mine.txt", output.MARKER}


def test_concurrent_console_runs_get_distinct_folders(tmp_path):
    procs = [subprocess.Popen([*_greysim(), "run", str(BASELINE), *SMALL], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    runs = sorted((tmp_path / "outputs" / "baseline").iterdir())
    assert len(runs) == 2 and all({p.name for p in r.iterdir()} == FILES for r in runs)


def test_out_must_not_be_taken_meanwhile(tmp_path, small_result):
    out = tmp_path / "r"
    with pytest.raises(output.OutputError, match="written by another run meanwhile"), \
            output.staged_folder(out) as staged:
        (staged.tmp / "a.txt").write_text("mine")
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"] and _hidden(tmp_path) == []


def test_stale_temporary_folders_are_swept_but_live_ones_kept(tmp_path, small_result):
    stale = tmp_path / ".old-run.partial-deadbeef"
    stale.mkdir()
    (stale / "metrics.parquet").write_bytes(b"half")
    live = tmp_path / ".other.partial-cafef00d"
    live.mkdir()
    lock = output._lock(live, wait=False)  # a write in progress in another process
    try:
        dest = output.write_run(small_result, tmp_path / "new")
    finally:
        output._unlock(lock)
    assert not stale.exists() and live.exists()
    assert {p.name for p in dest.iterdir()} == FILES


def test_check_reports_a_run_that_reproduces_and_one_that_does_not(tmp_path):
    out = tmp_path / "r"
    _rerun(out)
    ok = CliRunner().invoke(app, ["run", "--check", str(out), "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "reproduces byte for byte" in ok.output
    # another seed's table in place of this run's
    other = sim.run(sim.load(BASELINE, {"population.users": 2000}), seed=1, quarters=1)
    output.write_table(other.monthly, out / "metrics.parquet")
    bad = CliRunner().invoke(app, ["run", "--check", str(out), "--quiet"])
    assert bad.exit_code == 1, bad.output
    assert "metrics.parquet: DIFFERS" in bad.output
    assert "segments.parquet: reproduces" in bad.output
    assert "does NOT reproduce: metrics.parquet differ" in bad.output


def test_check_refuses_a_tampered_manifest_and_extra_options(tmp_path):
    out = tmp_path / "r"
    _rerun(out)
    res = CliRunner().invoke(app, ["run", "--check", str(out), "--seed", "3"])
    assert res.exit_code == 2 and "takes no --seed" in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["scenario"]["scoring"]["cutoff"] = 99
    (out / "manifest.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(app, ["run", "--check", str(out), "--quiet"])
    assert res.exit_code == 2 and "does not match its recorded digest" in res.output


def test_key_order_in_the_yaml_does_not_change_the_tables(tmp_path):
    """Listing regions, archetypes and sections in another order is the same scenario."""
    raw = sim.scenario.parse_yaml(BASELINE.read_text())

    def reverse(value):
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        return value

    import yaml

    shuffled = tmp_path / "shuffled.yaml"
    shuffled.write_text(yaml.safe_dump(reverse(raw), sort_keys=False))
    assert list(sim.scenario.parse_yaml(shuffled.read_text())["population"]["regions"])[0] \
        == "closed_province"
    runs = [sim.run(sim.load(path, {"population.users": 3000}), quarters=2)
            for path in (BASELINE, shuffled)]
    for stem in ("metrics", "segments", "batches"):
        a, b = (output.table_bytes(r.tables()[stem]) for r in runs)
        assert a == b, stem


def test_rerun_writes_byte_identical_tables(tmp_path):
    for name in ("a", "b"):
        _rerun(tmp_path / name)
    for stem in ("metrics", "segments", "batches"):
        a, b = ((tmp_path / n / f"{stem}.parquet").read_bytes() for n in "ab")
        assert a == b, stem



# --------------------------------------------------------------------------- hostile input

TINY = ["--users", "60", "--quarters", "1", "--quiet", "--no-report"]


def _tiny_run(*args):
    """A tiny run through the command line; returns the CliRunner result."""
    return CliRunner().invoke(app, ["run", *map(str, args), *TINY])


def _one_paragraph(res) -> str:
    text = res.output.strip()
    assert res.exit_code == 2, text
    assert text.startswith("error: ") and "Traceback" not in text, text
    assert "\n" not in text, text  # one paragraph, soft-wrapped by the terminal
    assert res.exception is None or isinstance(res.exception, SystemExit)
    return text


def _scenario(tmp_path: Path, name_yaml: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"extends: {BASELINE}\nname: {name_yaml}\n", encoding="utf-8")
    return path


def test_force_refuses_a_folder_greysim_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    (mine / "deep").mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    (mine / "deep" / "data.csv").write_text("1,2")
    for extra in ([], ["--force"]):
        text = _one_paragraph(_tiny_run(BASELINE, "--out", mine, *extra))
        assert "did not write" in text and "--force" not in text, text
        assert "choose another --out" in text and "remove" in text
    assert (mine / "notes.txt").read_text() == "mine"
    assert (mine / "deep" / "data.csv").read_text() == "1,2"
    assert _hidden(tmp_path) == []


def test_force_replaces_a_folder_greysim_wrote(tmp_path):
    out = tmp_path / "r"
    assert _tiny_run(BASELINE, "--out", out).exit_code == 0
    text = _one_paragraph(_tiny_run(BASELINE, "--out", out))
    assert "already holds a greysim run" in text and "--force" in text
    res = _tiny_run(BASELINE, "--out", out, "--force", "--seed", "7")
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == FILES
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7
    assert _hidden(tmp_path) == []


def test_an_empty_folder_may_be_used(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _tiny_run(BASELINE, "--out", out).exit_code == 0
    assert {p.name for p in out.iterdir()} == FILES


def test_out_an_existing_file_is_refused(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for args in (["--out", afile], ["--out", afile, "--force"], ["--out", afile / "sub"]):
        text = _one_paragraph(_tiny_run(BASELINE, *args))
        assert str(afile) in text
    assert afile.read_text() == "keep"


def test_sweep_force_refuses_a_folder_greysim_did_not_write_and_a_file(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    afile = tmp_path / "afile"
    afile.write_text("keep")
    base = ["sweep", str(BASELINE), "--grid", "seed=1,2", "--users", "60", "--quarters", "1",
            "--quiet", "--no-report", "--workers", "1"]
    for out in (mine, afile):
        for extra in ([], ["--force"]):
            res = CliRunner().invoke(app, [*base, "--out", str(out), *extra])
            assert "--force" not in _one_paragraph(res) or out == afile
    assert (mine / "notes.txt").read_text() == "mine" and afile.read_text() == "keep"
    sweep_dir = tmp_path / "sw"
    assert CliRunner().invoke(app, [*base, "--out", str(sweep_dir)]).exit_code == 0
    res = CliRunner().invoke(app, [*base, "--out", str(sweep_dir), "--force"])
    assert res.exit_code == 0, res.output
    assert output.written_by(sweep_dir) == "sweep"


@pytest.mark.parametrize("name_yaml", ["/some/abs/X", "../../X", "'a/../../../b'", '""',
                                       '"."', '".."', "'" + "n" * 300 + "'", '"a\\0b"',
                                       '"a\\x1bb"', '"\\u00e9t\\u00e9"'])
def test_a_scenario_name_never_leaves_outputs(tmp_path, monkeypatch, name_yaml):
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    scenario = _scenario(tmp_path, name_yaml)
    res = CliRunner().invoke(app, ["run", str(scenario), *TINY])
    assert res.exit_code == 0, res.output
    outputs = work / "outputs"
    [folder] = list(outputs.iterdir())
    [run_dir] = list(folder.iterdir())
    assert {p.name for p in run_dir.iterdir()} == FILES
    assert {p.name for p in tmp_path.iterdir()} == {"work", "s.yaml"}
    assert [p.name for p in work.iterdir()] == ["outputs"]
    assert not Path("/some/abs/X").exists()


@pytest.mark.parametrize("name", ["[/]x", "[red]x", "[bold]y[/bold]", "x :100: y"])
def test_a_scenario_name_prints_as_written(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    scenario = _scenario(tmp_path, json.dumps(name))
    res = CliRunner().invoke(app, ["run", str(scenario), *TINY])
    assert res.exit_code == 0, res.output
    assert name in " ".join(res.output.split()), res.output
    res = CliRunner().invoke(app, ["validate", str(scenario)])
    assert res.exit_code == 0 and f"'{name}'" in res.output, res.output


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES, errno.ENOENT])
def test_a_failed_write_exits_2_with_one_paragraph_and_no_partial_folder(tmp_path, monkeypatch,
                                                                         code):
    """Root ignores permissions, so read-only and full disks are simulated at the rename."""
    def failing(src, dst):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(output.os, "rename", failing)
    out = tmp_path / "runs" / "r"
    text = _one_paragraph(_tiny_run(BASELINE, "--out", out))
    assert f"cannot write {out}" in text and "nothing was written" in text
    assert not out.exists() and _hidden(out.parent) == []


def test_a_failed_write_with_force_keeps_the_earlier_run(tmp_path, monkeypatch):
    out = tmp_path / "r"
    assert _tiny_run(BASELINE, "--out", out).exit_code == 0
    before = (out / "manifest.json").read_text()

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "rename", full)
    text = _one_paragraph(_tiny_run(BASELINE, "--out", out, "--force"))
    assert "disk is full" in text and "kept as it was" in text
    assert (out / "manifest.json").read_text() == before and _hidden(tmp_path) == []


def test_the_output_folder_deleted_mid_write_is_a_message(tmp_path, monkeypatch):
    import shutil

    real = output.write_table

    def vanish(df, path):
        shutil.rmtree(path.parent.parent)  # someone removed the --out parent meanwhile
        real(df, path)

    monkeypatch.setattr(output, "write_table", vanish)
    text = _one_paragraph(_tiny_run(BASELINE, "--out", tmp_path / "gone" / "r"))
    assert "disappeared" in text and "run the command again" in text


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_compare_sweep_and_report_on_a_failing_disk_exit_2(tmp_path, monkeypatch, code):
    run_dir = tmp_path / "r"
    assert _tiny_run(BASELINE, "--out", run_dir).exit_code == 0
    import sim.io.report as report

    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(output.os, "rename", failing)
    monkeypatch.setattr(report.os, "replace", failing)
    other = ROOT / "scenarios" / "conservative.yaml"
    commands = [
        ["compare", str(BASELINE), str(other), "--reps", "1", *TINY[:4], "--quiet",
         "--no-report", "--workers", "1", "--out", str(tmp_path / "c")],
        ["sweep", str(BASELINE), "--grid", "seed=1,2", *TINY, "--workers", "1",
         "--out", str(tmp_path / "s")],
        ["report", str(run_dir)],
    ]
    for args in commands:
        text = _one_paragraph(CliRunner().invoke(app, args))
        assert "cannot write" in text, text
    points = tmp_path / "s" / "points"
    assert not (tmp_path / "c").exists() and not (points.exists() and any(points.iterdir()))
    assert not (run_dir / "report.html").exists()
    assert not [p for p in (*tmp_path.iterdir(), *run_dir.iterdir())
                if p.name.startswith(".") and p.name != output.MARKER]


def test_report_keeps_a_charts_folder_of_other_files(tmp_path):
    run_dir = tmp_path / "r"
    assert _tiny_run(BASELINE, "--out", run_dir).exit_code == 0
    (run_dir / "charts").mkdir()
    (run_dir / "charts" / "notes.txt").write_text("mine")
    text = _one_paragraph(CliRunner().invoke(app, ["report", str(run_dir)]))
    assert "not greysim charts" in text
    assert (run_dir / "charts" / "notes.txt").read_text() == "mine"
