"""Output folders: safe names, the greysim marker, and filesystem errors as messages."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.errors import GreysimError
from sim.io import folders
from sim.io.folders import MARKER, OutputError

SAFE = re.compile(r"^[a-z0-9_-]([a-z0-9._-]*[a-z0-9_-])?$")


@pytest.mark.parametrize("name", ["", ".", "..", "/some/abs/X", "../../X", "a/../../b",
                                  "a\x00b", "a\x1bb", "x" * 300, "é" * 300, "[/]x",
                                  "[red]x", "...hidden", "Baseline", "CON", "-", "a b\tc",
                                  "\u202etxt.exe"])
def test_a_slug_is_one_safe_folder_name(name):
    slug = folders.slug(name)
    assert SAFE.match(slug), slug
    assert slug not in (".", "..") and len(slug) <= folders.SLUG_CHARS
    assert len(slug.encode()) <= 255
    root = Path("/outputs")
    assert folders.scenario_folder(name, root).parent == root


def test_a_safe_name_is_kept_and_a_changed_one_is_told_apart():
    assert folders.slug("baseline") == "baseline"
    assert folders.slug("regulated-2020") == "regulated-2020"
    assert folders.slug("Baseline") != folders.slug("baseline")
    assert folders.slug("a/b") != folders.slug("a b")  # both become "a-b": the hash differs
    assert folders.slug("") == folders.slug("")  # stable, so reruns share a folder


def test_output_error_is_a_greysim_error():
    assert issubclass(OutputError, GreysimError)


def test_every_folder_written_holds_its_marker(tmp_path):
    dest = folders.write_folder(tmp_path / "c", jsons={"summary": {}}, kind="comparison")
    info = json.loads((dest / MARKER).read_text())
    assert info["kind"] == "comparison" and info["greysim_version"]
    assert folders.written_by(dest) == "comparison"


def test_force_replaces_a_greysim_folder_only(tmp_path):
    ours = folders.write_folder(tmp_path / "ours", jsons={"a": 1})
    folders.write_folder(ours, jsons={"b": 2}, force=True)
    assert {p.name for p in ours.iterdir()} == {MARKER, "b.json"}
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write") as exc:
        folders.write_folder(theirs, jsons={"b": 2}, force=True)
    assert "--force" not in str(exc.value)
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("marker", ["", "not json", "[1]", '{"kind": 3}'])
def test_a_broken_marker_does_not_make_a_folder_replaceable(tmp_path, marker):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / MARKER).write_text(marker)
    with pytest.raises(OutputError, match="did not write"):
        folders.check_destination(folder, force=True)


def test_an_empty_folder_may_be_used_a_file_or_link_never(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    folders.write_folder(empty, jsons={"a": 1})
    afile = tmp_path / "afile"
    afile.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(empty)
    for dest, needle in ((afile, "is a file"), (afile / "sub", "is not a folder"),
                         (link, "symbolic link")):
        with pytest.raises(OutputError, match=needle):
            folders.write_folder(dest, jsons={"a": 1}, force=True)
    assert afile.read_text() == "keep" and folders.written_by(empty) == "run"


def test_a_folder_is_checked_again_just_before_it_is_replaced(tmp_path):
    dest = folders.write_folder(tmp_path / "r", jsons={"a": 1})
    with pytest.raises(OutputError, match="did not write"), \
            folders.staged_folder(dest, force=True) as staged:
        (staged.tmp / "b.json").write_text("{}")
        (dest / MARKER).unlink()  # meanwhile, the folder stopped being greysim's
    assert (dest / "a.json").exists() and not [p for p in tmp_path.iterdir()
                                                if p.name.startswith(".")]


def test_claim_folder_resumes_its_own_kind_and_refuses_others(tmp_path):
    sweep = folders.claim_folder(tmp_path / "s", "sweep")
    (sweep / "points").mkdir()
    folders.claim_folder(sweep, "sweep")  # a rerun resumes
    assert (sweep / "points").exists()
    folders.claim_folder(sweep, "sweep", force=True)  # --force starts again
    assert [p.name for p in sweep.iterdir()] == [MARKER]
    run = folders.write_folder(tmp_path / "r", jsons={"a": 1})
    with pytest.raises(OutputError, match="greysim run; choose another --out, or pass --force"):
        folders.claim_folder(run, "sweep")
    user = tmp_path / "u"
    user.mkdir()
    (user / "x.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        folders.claim_folder(user, "sweep", force=True)
    assert (user / "x.txt").read_text() == "mine"


@pytest.mark.parametrize(("code", "needle"), [
    (errno.ENOSPC, "disk is full"), (errno.EDQUOT, "quota"),
    (errno.ENAMETOOLONG, "too long"), (errno.EACCES, "permission denied"),
    (errno.EPERM, "not permitted"), (errno.EROFS, "read-only"),
    (errno.ENOENT, "disappeared"), (errno.ENOTDIR, "not a folder"),
    (errno.EIO, "Input/output error"),
])
def test_a_failed_write_is_an_output_error_and_leaves_nothing(tmp_path, monkeypatch, code,
                                                              needle):
    def failing(obj, path):
        raise OSError(code, __import__("os").strerror(code), str(path))

    monkeypatch.setattr(folders, "write_json", failing)
    dest = tmp_path / "r"
    with pytest.raises(OutputError) as exc:
        folders.write_folder(dest, jsons={"a": 1})
    message = str(exc.value)
    assert str(dest) in message and needle in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_with_force_keeps_the_old_folder(tmp_path, monkeypatch):
    dest = folders.write_folder(tmp_path / "r", jsons={"old": 1})

    def rofs(src, dst):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(folders.os, "rename", rofs)
    with pytest.raises(OutputError, match="read-only.*kept as it was"):
        folders.write_folder(dest, jsons={"new": 1}, force=True)
    assert {p.name for p in dest.iterdir()} == {MARKER, "old.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_name_too_long_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(OutputError, match="too long"):
        folders.check_destination(tmp_path / ("d" * 300), force=False)


def test_svg_charts_are_byte_identical(tmp_path):
    from matplotlib.figure import Figure

    from sim.io.report import svg

    def figure() -> Figure:
        fig = Figure()
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 3, 2])
        ax.fill_between([0, 1, 2], [0, 1, 1], [1, 3, 2], alpha=0.3)
        return fig

    first, second = svg(figure()), svg(figure())
    assert b"clip-path" in first and first == second


@pytest.fixture(scope="module")
def small_runs() -> list:
    import sim

    root = Path(__file__).resolve().parents[2] / "scenarios"
    return [sim.run(sim.load(root / name, users=2000), quarters=2)
            for name in ("baseline.yaml", "adaptive.yaml", "ab-version-vs-tier.yaml")]


def test_tables_are_written_without_pandas_as_pandas_writes_them(small_runs):
    """The recorded tables make, byte for byte, the files DataFrame.to_parquet made (so a
    run recorded before reproduces), every column through the writer's own path."""
    import io

    from sim.io import parquet

    for run in small_runs:
        for stem, table in run.recorded().items():
            written = parquet.parquet_bytes(parquet.arrow_table(table))  # no column to pandas
            buf = io.BytesIO()
            run.tables()[stem].to_parquet(buf, index=False, engine="pyarrow",
                                          compression="zstd")
            assert written == buf.getvalue(), stem


def test_dates_become_the_seconds_numpy_converts_them_to():
    """The writer's date column: the seconds ``np.array(dates, "datetime64[s]")`` holds,
    for dates across NumPy's and Python's whole range."""
    import datetime as dt
    import random

    from sim.io import parquet

    draw = random.Random(18)
    dates = [dt.date.fromordinal(draw.randint(1, dt.date.max.toordinal())) for _ in range(5000)]
    dates += [dt.date.min, dt.date.max, dt.date(1970, 1, 1), dt.date(1969, 12, 31)]
    expected = np.array(dates, dtype="datetime64[s]").view(np.int64)
    assert np.array_equal(parquet.seconds_since_epoch(dates), expected)


def test_a_written_run_reads_back_as_its_frames(small_runs, tmp_path):
    """Values and types read back as the run's DataFrames; Parquet keeps dates to the
    millisecond, so pandas reads them as datetime64[ms] (the frames': [s])."""
    import pandas as pd

    for i, run in enumerate(small_runs):
        dest = folders.write_run(run, tmp_path / str(i), argv=["test"])
        for stem, frame in run.tables().items():
            back = pd.read_parquet(dest / f"{stem}.parquet")
            dates = [c for c in frame if frame[c].dtype.kind == "M"]
            assert all(str(back[c].dtype) == "datetime64[ms]" for c in dates)
            back[dates] = back[dates].astype(frame[dates].dtypes)
            pd.testing.assert_frame_equal(back, frame, obj=stem)
        manifest = json.loads((dest / "manifest.json").read_text())
        assert manifest["pandas"] == pd.__version__


def test_a_column_the_writer_does_not_know_is_written_by_pandas():
    import io

    import pandas as pd

    from sim.engine.tables import rows_table
    from sim.io import parquet

    rows = [{"a": 1, "b": None, "c": True}, {"a": 2, "b": 1.5, "c": None}]
    table = rows_table(rows, ["a", "b", "c"])
    with pytest.raises(parquet.Unsupported):  # None among numbers or booleans: pandas' types
        parquet.arrow_table(table)
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=["a", "b", "c"]).to_parquet(buf, index=False, engine="pyarrow",
                                                           compression="zstd")
    assert folders.table_bytes(table) == buf.getvalue()


@pytest.mark.parametrize("value", [np.float32(1.5), np.int32(3), np.uint8(7), np.float16(0.5)])
def test_numpy_numbers_pandas_keeps_narrow_are_written_by_pandas(value):
    """A column of NumPy's narrower numbers keeps its dtype in a DataFrame: the writer
    leaves it to pandas, so the file holds the frame's type."""
    import io

    import pandas as pd

    from sim.engine.tables import rows_table
    from sim.io import parquet

    rows = [{"a": value}, {"a": value}]
    table = rows_table(rows, ["a"])
    with pytest.raises(parquet.Unsupported):
        parquet.arrow_table(table)
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=["a"]).to_parquet(buf, index=False, engine="pyarrow",
                                                 compression="zstd")
    assert folders.table_bytes(table) == buf.getvalue()


def test_a_table_changed_after_it_was_read_is_written_as_changed(baseline_path, tmp_path):
    """Once a run's table has been read as a DataFrame, its writer writes that DataFrame,
    with whatever its reader changed."""
    import pandas as pd

    run = sim.run(sim.load(baseline_path, {"population.users": 2000}), quarters=1)
    run.monthly["note"] = 1.0
    run.arms.loc[0, "users"] = 7
    dest = folders.write_run(run, tmp_path / "changed", argv=["test"])
    assert (pd.read_parquet(dest / "metrics.parquet")["note"] == 1.0).all()
    assert pd.read_parquet(dest / "arms.parquet")["users"].iloc[0] == 7
