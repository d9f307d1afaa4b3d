"""Output folders: safe names, the greysim marker, and filesystem errors as messages."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import pytest

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
