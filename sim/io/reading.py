"""Reading what a folder's JSON files claim, checked: a crafted or damaged ``summary.json``
or ``manifest.json`` is one :class:`~sim.io.folders.OutputError` naming the file and the key,
never a traceback further on.

:func:`read_summary` and :func:`read_manifest` return the mapping with the keys the report
and ``run --check`` read checked for their type (numbers finite, seeds and months whole and
in range); other keys pass through untouched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.io.folders import OutputError

#: JSON files a folder holds are small; a larger one is not greysim's.
MAX_JSON_BYTES = 50_000_000
#: The largest seed a manifest may record (NumPy's seeds, exact in JSON up to 2**63).
MAX_SEED = 2**63 - 1
#: The longest horizon a manifest may record, in months (a century).
MAX_MONTHS = 1200


def read_json(path: Path, *, required: bool = False) -> dict:
    """The JSON mapping in ``path`` ({} when absent and not ``required``)."""
    path = Path(path)
    if not path.exists():
        if required:
            raise OutputError(f"{path} is missing; it is written by greysim with every folder")
        return {}
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise OutputError(f"{path} is larger than {MAX_JSON_BYTES:,} bytes; it was not "
                              "written by greysim")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OutputError(f"{path} is not valid JSON ({_short(exc)}); it was not written by "
                          "greysim, or was damaged") from None
    if not isinstance(data, dict):
        raise OutputError(f"{path} holds {type(data).__name__}, not a JSON mapping of keys; "
                          "it was not written by greysim, or was edited")
    return data


def read_summary(path: Path) -> dict:
    """A run, comparison or sweep ``summary.json`` with the keys the report reads checked."""
    data = read_json(path)
    _check(path, data, {
        "scenario": _text, "strategy": _text, "verdict": _verdict, "decision": _mapping,
        "target": _optional(_share), "final": _mapping_of(_optional(_number)),
        "quarters": _list_of_mappings, "not_eligible_at_start": _mapping_of(_number),
        "seed": _whole(0, MAX_SEED), "users": _whole(1, None), "weight": _positive,
        "months": _whole(1, MAX_MONTHS),
    })
    for key, value in data.items():  # headline cards: any other number must be finite
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(path, key, f"{value!r} is not a finite number")
    return data


def read_manifest(path: Path, *, required: bool = False) -> dict:
    """A folder's ``manifest.json`` with the keys the report and ``run --check`` read
    checked."""
    data = read_json(path, required=required)
    _check(path, data, {
        "scenario": _mapping, "scenarios": _mappings, "scenario_name": _text,
        "scenario_digest": _text, "command": _list_of_text, "created_utc": _text,
        "seed": _whole(0, MAX_SEED), "months": _months, "users": _whole(1, None),
        "greysim_version": _text, "python": _text, "numpy": _text, "pandas": _text,
    })
    scenario = data.get("scenario") or {}
    _check(path, {f"scenario.{k}": v for k, v in scenario.items()},
           {"scenario.calendar": _mapping, "scenario.reporting": _mapping})
    _check(path, {f"scenario.calendar.{k}": v for k, v in (scenario.get("calendar") or {}).items()},
           {"scenario.calendar.holidays": _windows})
    _check(path, {f"scenario.reporting.{k}": v
                  for k, v in (scenario.get("reporting") or {}).items()},
           {"scenario.reporting.target_coverage": _optional(_share)})
    return data


# --------------------------------------------------------------------------- checks
# each returns None when the value is fine, or what is wrong with it

Check = Callable[[Any], str | None]


def _check(path: Path, data: dict, checks: dict[str, Check]) -> None:
    for key, check in checks.items():
        if key in data and (problem := check(data[key])) is not None:
            raise _bad(path, key, problem)


def _bad(path: Path, key: str, problem: str) -> OutputError:
    return OutputError(f"{path} at key '{key}': {problem}; it was not written by greysim, or "
                       "was edited")


def _got(value: Any) -> str:
    return f"got {_short(json.dumps(value, default=str))}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) else f"expected text, {_got(v)}"


def _verdict(v: Any) -> str | None:
    """A comparison's verdict: its sentence, or an object with the sentence as ``text``."""
    if isinstance(v, dict):
        return _text(v.get("text"))
    return _text(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _number(v: Any) -> str | None:
    return None if _is_number(v) else f"expected a finite number, {_got(v)}"


def _positive(v: Any) -> str | None:
    return None if _is_number(v) and v > 0 else f"expected a positive number, {_got(v)}"


def _share(v: Any) -> str | None:
    return None if _is_number(v) and 0 <= v <= 1 else f"expected a share in [0, 1], {_got(v)}"


def _optional(check: Check) -> Check:
    return lambda v: None if v is None else check(v)


def _whole(low: int, high: int | None) -> Check:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and v >= low
        if ok and (high is None or v <= high):
            return None
        allowed = f"{low} to {high:,}" if high is not None else f"at least {low}"
        return f"expected a whole number {allowed}, {_got(v)}"
    return check


def _months(v: Any) -> str | None:
    problem = _whole(3, MAX_MONTHS)(v)
    if problem is None and v % 3:
        return f"expected whole quarters (a multiple of 3 months), {_got(v)}"
    return problem


def _mapping(v: Any) -> str | None:
    return None if isinstance(v, dict) else f"expected a mapping of keys, {_got(v)}"


def _mappings(v: Any) -> str | None:
    values = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
    if values is None or not all(isinstance(x, dict) for x in values):
        return f"expected a list of mappings, {_got(v)}"
    return None


def _list_of_mappings(v: Any) -> str | None:
    if isinstance(v, list) and all(isinstance(x, dict) for x in v):
        return None
    return f"expected a list of mappings, {_got(v)}"


def _windows(v: Any) -> str | None:
    """Holiday windows as the charts read them: mappings with ISO dates ``start`` and
    ``end``."""
    import datetime as dt

    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        return f"expected a list of windows, {_got(v)}"
    for window in v:
        try:
            dt.date.fromisoformat(window["start"])
            dt.date.fromisoformat(window["end"])
        except (KeyError, TypeError, ValueError):
            return f"expected windows with ISO dates 'start' and 'end', {_got(window)}"
    return None


def _list_of_text(v: Any) -> str | None:
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return None
    return f"expected a list of texts, {_got(v)}"


def _mapping_of(check: Check) -> Check:
    def inner(v: Any) -> str | None:
        if not isinstance(v, dict):
            return f"expected a mapping of keys, {_got(v)}"
        for key, value in v.items():
            if (problem := check(value)) is not None:
                return f"{key}: {problem}"
        return None
    return inner
