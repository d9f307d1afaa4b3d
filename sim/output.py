"""Writing run results: every folder appears complete or not at all.

A run is written into a hidden temporary folder beside its destination and renamed into place
when every file is there, so an interrupted run leaves no half-written results.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .engine import Result

MANIFEST = "manifest.json"


class OutputError(RuntimeError):
    """A destination that cannot be written; ``str()`` is the message users see."""


def new_run_id(now: dt.datetime | None = None) -> str:
    """A sortable, collision-free run id: UTC time to the second plus a random suffix."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def default_destination(result: Result, root: Path = Path("outputs")) -> Path:
    return root / result.scenario.name / new_run_id()


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Parquet with fixed settings, so equal tables give equal bytes."""
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")


def write_json(obj, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n",
                    encoding="utf-8")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def manifest(result: Result, argv: list[str] | None = None) -> dict:
    """How the run was made: enough to make it again and to check that it reproduces."""
    from . import __version__

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
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


def check_destination(dest: Path, force: bool) -> None:
    """Refuse to replace a folder that already holds files, unless ``force``."""
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"{dest} exists and is not a folder; choose another --out")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        kind = "an earlier greysim run" if (dest / MANIFEST).exists() else "other files"
        raise OutputError(
            f"{dest} already holds {kind}; choose another --out, or pass --force to replace it"
        )


def write_run(result: Result, dest: Path, *, force: bool = False,
              argv: list[str] | None = None,
              finish: Callable[[Path], object] | None = None) -> Path:
    """Write a run's tables, summary and manifest to ``dest`` atomically; returns ``dest``.

    ``finish(folder)`` runs on the complete temporary folder before it is renamed into place
    (the report writer uses it, so charts and report appear with the run or not at all).
    """
    check_destination(Path(dest), force)
    return write_folder(dest, tables=result.tables(),
                        jsons={"summary": result.summary, "manifest": manifest(result, argv)},
                        finish=finish)


def _replace(tmp: Path, dest: Path) -> None:
    """Move the finished folder into place; an old folder is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(dest: Path, *, tables: dict[str, pd.DataFrame] | None = None,
                 jsons: dict[str, object] | None = None, force: bool = True,
                 finish=None) -> Path:
    """Write Parquet tables and JSON documents as one folder that appears all at once;
    ``finish(folder)`` may add files (charts, a report) before it appears."""
    dest = Path(dest)
    if not force:
        check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for stem, table in (tables or {}).items():
            write_table(table, tmp / f"{stem}.parquet")
        for stem, doc in (jsons or {}).items():
            write_json(doc, tmp / f"{stem}.json")
        if finish is not None:
            finish(tmp)
        _replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
