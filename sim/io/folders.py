"""Writing run results: every folder appears complete or not at all.

A run is written into a hidden, locked temporary folder beside its destination
(``.<name>.partial-<random>``) and renamed into place when every file is there, so a run that
is interrupted or killed leaves either a complete folder or none. Temporary folders left by a
killed run are recognised (no process holds their lock) and removed by the next write into
the same parent folder. :func:`staged_folder` and :func:`new_run_id` are the building blocks
for any command that writes a result folder.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import io
import json
import os
import platform
import re
import shutil
import signal
import sys
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.engine.result import Result
from sim.engine.tables import Table
from sim.errors import GreysimError
from sim.io import parquet

if TYPE_CHECKING:
    import pandas as pd

try:
    import fcntl
except ImportError:  # Windows: stale folders are recognised by age instead of by lock
    fcntl = None

MANIFEST = "manifest.json"
#: The file that marks a folder as written by greysim: only such a folder may be replaced.
MARKER = ".greysim"
PARTIAL = ".partial-"
OLD = ".old-"
#: Without file locks, a temporary folder this old is taken to be left over.
STALE_SECONDS = 24 * 3600
#: Longest folder name derived from a scenario name (well under the usual 255-byte limit).
SLUG_CHARS = 80


class OutputError(GreysimError):
    """A destination that cannot be written; ``str()`` is the message users see."""


class InterruptedAfterWrite(KeyboardInterrupt):
    """Ctrl-C arrived while the finished folder was being renamed into place: it is there."""

    def __init__(self, dest: Path):
        super().__init__(str(dest))
        self.dest = dest


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable run id: UTC time to the second plus a random suffix.

    Ids are unique in practice; :func:`staged_folder` with ``unique=True`` makes them unique
    for certain by drawing a new id when the rename finds the folder taken.
    """
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def slug(name: str) -> str:
    """A safe folder name for a scenario name: lowercase ASCII letters, digits, ``-``, ``_``
    and inner ``.``, at most :data:`SLUG_CHARS` characters, never empty, hidden, ``.`` or ``..``.

    A name that had to change gets a short hash of the original, so distinct names never
    share a folder; a name already safe is kept as it is.
    """
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9._-]+", "-", ascii_.lower()).strip("-._")
    if text and text == name and len(text) <= SLUG_CHARS:
        return text
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    text = text[:SLUG_CHARS - len(digest) - 1].rstrip("-._")
    return f"{text}-{digest}" if text else f"scenario-{digest}"


def scenario_folder(name: str, root: Path = Path("outputs")) -> Path:
    """``root/<slug of the scenario name>``: always strictly inside ``root``."""
    return Path(root) / slug(name)


def default_destination(result: Result, root: Path = Path("outputs")) -> Path:
    """``outputs/<scenario slug>/<run-id>``."""
    return scenario_folder(result.scenario.name, root) / new_run_id()


def table_bytes(table: pd.DataFrame | Table) -> bytes:
    """A table as Parquet with fixed settings, so equal tables give equal bytes.

    A run's recorded :class:`~sim.engine.tables.Table` is written from its columns without
    pandas (:mod:`sim.io.parquet`: the same bytes as its DataFrame's) until its DataFrame has
    been made: from then on, as a caller may have changed it, the DataFrame is written, like
    a DataFrame or a table whose columns that writer does not know, by pandas."""
    if isinstance(table, Table):
        if not table.built:
            try:
                return parquet.parquet_bytes(parquet.arrow_table(table))
            except parquet.Unsupported:
                pass
        table = table.frame
    buf = io.BytesIO()
    table.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


def json_text(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"


def write_table(table: pd.DataFrame | Table, path: Path) -> None:
    Path(path).write_bytes(table_bytes(table))


def write_json(obj, path: Path) -> None:
    Path(path).write_text(json_text(obj), encoding="utf-8")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date):  # a pandas Timestamp too (a datetime)
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def manifest(result: Result, argv: list[str] | None = None) -> dict:
    """How the run was made: enough to make it again and to check that it reproduces."""
    from sim import __version__

    return {
        "greysim_version": __version__,
        "scenario_name": result.scenario.name,
        "scenario_digest": result.scenario.digest(),
        "scenario": result.scenario.model_dump(mode="json"),
        "seed": result.seed,
        "months": int(result.summary["months"]),
        "users": int(result.summary["users"]),
        "wall_seconds": round(result.wall_seconds, 3),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": argv if argv is not None else sys.argv,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": parquet.pandas_version(),
        "platform": platform.platform(),
    }


#: What went wrong and what to do, by errno, when a folder cannot be written.
_ADVICE = {
    errno.ENOSPC: "the disk is full; free some space, or choose an --out on another disk",
    errno.EDQUOT: "the disk quota is used up; free some space, or choose an --out on another disk",
    errno.ENAMETOOLONG: "a name in the path is too long for the file system; choose a shorter "
                        "--out",
    errno.EACCES: "permission denied; choose an --out you can write to, or fix the folder's "
                  "permissions",
    errno.EPERM: "the operation is not permitted; choose an --out you can write to, or fix the "
                 "folder's permissions",
    errno.EROFS: "the file system is read-only; choose an --out on a writable disk",
    errno.ENOENT: "a folder on the way disappeared while writing (deleted or moved meanwhile); "
                  "run the command again",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another --out",
    errno.EEXIST: "a file is in the way where a folder belongs; choose another --out",
    errno.ELOOP: "the path loops through symbolic links; choose another --out",
}


def os_error(path: Path, exc: OSError, outcome: str = "nothing was written") -> OutputError:
    """An :class:`OutputError` for a failed write: the path, what went wrong, what to do."""
    advice = _ADVICE.get(exc.errno, f"{exc.strerror or exc}; check the folder and try again")
    return OutputError(f"cannot write {path}: {advice} ({outcome})")


@contextmanager
def mapped_os_errors(path: Path, outcome: str = "nothing was written") -> Iterator[None]:
    """Turn any OSError raised in the block into an :class:`OutputError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise os_error(path, exc, outcome) from None


def write_marker(folder: Path, kind: str) -> None:
    """Mark ``folder`` as written by greysim (``kind``: run, comparison, sweep...)."""
    from sim import __version__

    write_json({"kind": kind, "greysim_version": __version__}, Path(folder) / MARKER)


def written_by(folder: Path) -> str | None:
    """The kind of folder greysim wrote at ``folder``, or None when it holds no valid marker."""
    marker = Path(folder) / MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return None
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = info.get("kind") if isinstance(info, dict) else None
    return kind if isinstance(kind, str) else None


def check_destination(dest: Path, force: bool) -> None:
    """Refuse a destination whose files would be lost: a file, a link, or a folder holding
    files; ``force`` replaces only a folder that greysim wrote (it holds the marker)."""
    dest = Path(dest)
    with mapped_os_errors(dest):
        _check_destination(dest, force)


def _check_destination(dest: Path, force: bool) -> None:
    if dest.is_symlink():
        raise OutputError(f"{dest} is a symbolic link; give the folder itself as --out")
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"{dest} is a file, not a folder; choose another --out (greysim "
                          "never replaces a file with a folder)")
    if not dest.exists():
        _check_parents(dest)
        return
    if not any(dest.iterdir()):
        return
    kind = written_by(dest)
    if kind is None:
        raise OutputError(f"{dest} holds files that greysim did not write (it has no {MARKER} "
                          "marker), so greysim will not replace it; choose another --out, or "
                          "move or remove that folder yourself")
    if not force:
        raise OutputError(f"{dest} already holds a greysim {kind}; choose another --out, or "
                          "pass --force to replace it")


def _check_parents(dest: Path) -> None:
    """Fail before a long run, not after it, when the folder could never be made there."""
    for parent in dest.absolute().parents:
        if parent.is_dir():
            return
        if parent.exists() or parent.is_symlink():
            raise OutputError(f"cannot write {dest}: {parent} is not a folder; "
                              "choose another --out")


def claim_folder(folder: Path, kind: str, *, force: bool = False) -> Path:
    """Make ``folder`` a marked greysim folder of ``kind`` that commands add to over time (a
    sweep's points): create it, or keep it when it already is one.

    ``force`` starts it again, but only when greysim wrote it; files, links and folders of
    other files are refused as in :func:`check_destination`.
    """
    folder = Path(folder)
    with mapped_os_errors(folder):
        found = written_by(folder) if folder.is_dir() else None
        if found != kind or force:
            _check_destination(folder, force)
            if force and found is not None:
                _discard(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if written_by(folder) != kind:
            write_marker(folder, kind)
    return folder


def _discard(folder: Path) -> None:
    """Remove a greysim folder: set it aside first, so its name is free at once."""
    old = folder.parent / f".{folder.name}{OLD}{uuid.uuid4().hex[:8]}"
    os.replace(folder, old)
    shutil.rmtree(old, ignore_errors=True)


def write_run(result: Result, dest: Path | None = None, *, force: bool = False,
              argv: list[str] | None = None, root: Path = Path("outputs"),
              finish: Callable[[Path], object] | None = None) -> Path:
    """Write a run's tables, summary and manifest atomically; returns the folder written.

    Without ``dest`` the folder is ``root/<scenario>/<run-id>`` and never collides with
    another run's, even one started in the same second. ``finish(folder)`` runs on the
    complete temporary folder before it is renamed into place (the report writer uses it, so
    charts and report appear with the run or not at all).
    """
    unique = dest is None
    dest = default_destination(result, root) if unique else Path(dest)
    return write_folder(dest, tables=result.recorded(),
                        jsons={"summary": result.summary, "manifest": manifest(result, argv)},
                        kind="run", force=force, unique=unique, finish=finish)


def write_folder(dest: Path, *, tables: dict[str, pd.DataFrame | Table] | None = None,
                 jsons: dict[str, object] | None = None, kind: str = "run",
                 force: bool = False, unique: bool = False,
                 finish: Callable[[Path], object] | None = None) -> Path:
    """Write Parquet tables and JSON documents as one marked folder of ``kind`` that appears
    all at once (see :func:`staged_folder`); ``finish(folder)`` may add files before it
    appears."""
    with staged_folder(Path(dest), kind=kind, force=force, unique=unique) as staged:
        for stem, table in (tables or {}).items():
            write_table(table, staged.tmp / f"{stem}.parquet")
        for stem, doc in (jsons or {}).items():
            write_json(doc, staged.tmp / f"{stem}.json")
        if finish is not None:
            finish(staged.tmp)
    return staged.dest


@dataclass
class Staged:
    """A folder being written: files go into ``tmp``; ``dest`` is where it ends up."""

    tmp: Path
    dest: Path


@contextmanager
def staged_folder(dest: Path, *, kind: str = "run", force: bool = False,
                  unique: bool = False) -> Iterator[Staged]:
    """Write a folder atomically: yield a hidden locked temporary folder beside ``dest``,
    holding the greysim marker of ``kind``, then, if the block succeeds, flush it to disk and
    rename it to ``dest``.

    On any error, Ctrl-C included, the temporary folder is removed and nothing appears; an
    OSError (disk full, read-only, permissions...) becomes an :class:`OutputError`. ``force``
    replaces a ``dest`` that greysim wrote (the old folder is removed only once the new one is
    in place); ``unique`` means ``dest`` ends in a run id that may be redrawn if another run
    took it meanwhile (``Staged.dest`` then tells the final path).
    """
    dest = Path(dest)
    outcome = "the folder already there is kept as it was" if force else "nothing was written"
    with mapped_os_errors(dest, outcome):
        while unique and dest.exists():
            dest = dest.parent / new_run_id()
        _check_destination(dest, force)
        dest.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(dest.parent)
        tmp, lock = _new_partial(dest)
        staged = Staged(tmp, dest)
        placed = False
        try:
            write_marker(tmp, kind)
            yield staged
            _flush(tmp)
            with defer_interrupts():
                staged.dest = _place(tmp, dest, force=force, unique=unique)
                placed = True
        except InterruptedAfterWrite:
            raise
        except KeyboardInterrupt:
            if placed:
                raise InterruptedAfterWrite(staged.dest) from None
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            _unlock(lock)


def _new_partial(dest: Path) -> tuple[Path, int | None]:
    """Create and lock ``.<name>.partial-<random>`` beside ``dest``."""
    while True:
        tmp = dest.parent / f".{dest.name}{PARTIAL}{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        lock = _lock(tmp, wait=False)
        if lock is None or os.fstat(lock).st_nlink > 0:
            return tmp, lock
        _unlock(lock)  # a cleaner removed it before we could lock it: draw another name


def _place(tmp: Path, dest: Path, *, force: bool, unique: bool) -> Path:
    """Rename ``tmp`` to ``dest``; never onto another run's files unless ``force``, and
    never onto files greysim did not write."""
    while True:
        old = lock = None
        if force and dest.exists():
            lock = _lock(dest, wait=True)
            try:
                _check_destination(dest, force=True)  # it may have changed since the first check
                old = dest.parent / f".{dest.name}{OLD}{uuid.uuid4().hex[:8]}"
                os.replace(dest, old)
            except BaseException:
                _unlock(lock)
                raise
        try:
            os.rename(tmp, dest)  # refuses a folder that holds files
        except OSError as exc:
            if old is not None:
                os.replace(old, dest)
            _unlock(lock)
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            if not unique:
                raise OutputError(f"{dest} was written by another run meanwhile; choose "
                                  "another --out") from None
            dest = dest.parent / new_run_id()
            continue
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _unlock(lock)
        return dest


def _flush(folder: Path) -> None:
    """Make the files durable before the rename publishes them (power loss, not just kill)."""
    for path in folder.iterdir():
        if path.is_dir():
            _flush(path)  # charts/ and any other sub-folder
            continue
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder
    finally:
        os.close(fd)


def _lock(folder: Path, *, wait: bool) -> int | None:
    """An exclusive lock on a folder, held until :func:`_unlock` or the process dies.

    Returns the descriptor, or None without lock support; raises BlockingIOError when
    ``wait`` is false and another process holds it.
    """
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def clean_stale(parent: Path) -> list[Path]:
    """Remove temporary folders that killed runs left in ``parent``; returns what was removed.

    A temporary folder is stale when no process holds its lock. An old folder set aside by a
    killed ``--force`` write is put back if its replacement never arrived.
    """
    removed = []
    try:
        entries = [p for p in Path(parent).iterdir()
                   if p.name.startswith(".") and (PARTIAL in p.name or OLD in p.name)]
    except OSError:
        return removed
    for path in entries:
        try:
            lock = _lock(path, wait=False)
        except (BlockingIOError, OSError):
            continue  # in use by a running write (or already gone)
        try:
            if lock is None and time.time() - path.stat().st_mtime < STALE_SECONDS:
                continue
            if OLD in path.name:
                original = path.parent / path.name[1:].rsplit(OLD, 1)[0]
                if not original.exists():
                    os.replace(path, original)
                    continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            _unlock(lock)
    return removed


@contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, so a pair of renames is never cut in half.

    Only the main thread can change signal handlers; elsewhere the block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)


def write_text_atomic(path: Path, text: str, *, force: bool = False) -> Path:
    """Write a text file through a temporary file renamed into place; refuse to replace an
    existing file unless ``force``."""
    path = Path(path)
    with mapped_os_errors(path):
        if path.is_dir():
            raise OutputError(f"{path} is a folder; --out names the calibrated scenario file")
        if path.exists() and not force:
            raise OutputError(f"{path} already exists; choose another --out, or pass --force")
        path.parent.mkdir(parents=True, exist_ok=True)
        return replace_text(path, text)


def replace_text(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` and rename it into place: a reader sees the old file or
    the new one, never half of it."""
    tmp = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
