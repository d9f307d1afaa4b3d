"""Resume keys: what a folder of finished runs was computed from, so a rerun resumes only
the very same computation and never mixes results of another one.

:func:`resume_key` lists every input that changes a result (the scenario's digest after
``--set`` and ``--users``, which covers its seed; the users, quarters, replications and seeds;
the design; the greysim version; and whatever else the caller names). :func:`check_resume`
records it in a folder the first time and, on a rerun, refuses a folder whose key differs
with a message naming each input that differs. Sweeps use it; any command that resumes can.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.scenario import Scenario

#: The file in a resumable folder that holds its resume key.
RESUME_FILE = "resume.json"


def resume_key(scenario: Scenario, *, quarters: int | None = None, reps: int = 1,
               seeds: Sequence[int] | None = None, design: str | None = None,
               version: str | None = None, **extra: Any) -> dict[str, str]:
    """Every input that changes a result, by name, as text (JSON-safe, comparable).

    ``design`` is the design's digest (or any text naming it); ``extra`` names further
    inputs (a sweep's ``target`` and ``coverage``, a robustness study's futures ...).
    """
    if version is None:
        from sim import __version__ as version
    key = {
        "scenario digest (after --set and --users)": scenario.digest(),
        "users": str(scenario.population.users),
        "quarters": str(quarters if quarters is not None else scenario.quarters),
        "replications": str(reps),
        "seeds": json.dumps(list(seeds) if seeds is not None else [scenario.seed]),
        "design": str(design),
        "greysim version": str(version),
    }
    key.update({name: value if isinstance(value, str)
                else json.dumps(value, sort_keys=True, default=str)
                for name, value in sorted(extra.items())})
    return key


def key_digest(key: Mapping[str, str], length: int = 12) -> str:
    """A short hash of a resume key, to name a folder after it."""
    text = json.dumps(dict(key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def differences(recorded: Mapping[str, str], key: Mapping[str, str]) -> list[str]:
    """The names of the inputs that differ (or are missing on one side), in key order."""
    names = list(dict.fromkeys([*key, *recorded]))
    return [n for n in names if recorded.get(n) != key.get(n)]


def check_resume(root: Path, key: Mapping[str, str], what: str = "folder") -> bool:
    """Record ``key`` in ``root`` (True) or check the key recorded there (False: resuming).

    Raises :class:`~sim.io.folders.OutputError` naming what differs when ``root`` holds
    results of another computation (or of a greysim that recorded no key): they would mix.
    """
    from sim.io.folders import OutputError, write_text_atomic

    path = Path(root) / RESUME_FILE
    if not path.exists():
        write_text_atomic(path, json.dumps(dict(key), indent=1, sort_keys=True) + "\n")
        return True
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(recorded, dict):
            raise ValueError("not a mapping")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise OutputError(f"{path} cannot be read ({exc}); choose another --out or pass "
                          f"--force to start the {what} again") from None
    differ = differences(recorded, key)
    if not differ:
        return False
    shown = "; ".join(f"{n}: {_short(recorded.get(n))} there, {_short(key.get(n))} now"
                      for n in differ)
    raise OutputError(f"{root} holds a {what} computed from other inputs ({shown}); its "
                      "results would mix with these, so it is not resumed: choose another "
                      f"--out or pass --force to start the {what} again")


def _short(value: str | None) -> str:
    if value is None:
        return "absent"
    return value if len(value) <= 20 else value[:12] + "..."
