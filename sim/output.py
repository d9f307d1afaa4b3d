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
              argv: list[str] | None = None) -> Path:
    """Write a run's tables, summary and manifest to ``dest`` atomically; returns ``dest``."""
    dest = Path(dest)
    check_destination(dest, force)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for stem, table in result.tables().items():
            write_table(table, tmp / f"{stem}.parquet")
        write_json(result.summary, tmp / "summary.json")
        write_json(manifest(result, argv), tmp / MANIFEST)
        _replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _replace(tmp: Path, dest: Path) -> None:
    """Move the finished folder into place; an old folder is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path, text: str, *, force: bool = False) -> Path:
    """Write a text file through a temporary file renamed into place; refuse to replace an
    existing file unless ``force``."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; --out names the calibrated scenario file")
    if path.exists() and not force:
        raise OutputError(f"{path} already exists; choose another --out, or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
