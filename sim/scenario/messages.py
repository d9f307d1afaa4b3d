"""What a user reads when a scenario is wrong: the file, the line, the key path, what is allowed.

Messages name keys, never command-line flags: the command line adds its own context (the
override that set a key) through :class:`Origin`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sim.errors import GreysimError
from sim.scenario.base import allowed_keys

#: A key path split at its dots, e.g. ``("rollout", "phases", "0", "batch")``.
Key = tuple[str, ...]


class ScenarioError(GreysimError, ValueError):
    """A scenario that cannot be loaded; ``str()`` is the one-paragraph message users see.

    ``source`` is the file the user loaded; ``file`` and ``line`` say where the offending key
    was written (another file when it came through ``extends``), ``via`` the override that
    set it, if any (e.g. "set on the command line: population.users=-1").
    """

    def __init__(self, source: str, path: str, problem: str, line: int | None = None, *,
                 file: str | None = None, via: str | None = None):
        self.source, self.path, self.problem, self.line = source, path, problem, line
        self.file, self.via = file or source, via
        where = f"{self.file}:{line}" if line else self.file
        if self.file != source:
            where += f" (extended by {source})"
        key = f" at key '{path}'" if path else ""
        how = f" ({via})" if via else ""
        super().__init__(f"{where}{key}{how}: {problem}")


@dataclass(frozen=True)
class Origin:
    """Where a key's value was written: a file and line, or an override (``via``: how)."""

    file: str
    line: int | None = None
    via: str | None = None


class _Located(ValueError):
    """A cross-field error that knows its key path (pydantic only knows the model's)."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


def _located(check, path: str) -> None:
    try:
        check()
    except ValueError as exc:
        raise _Located(path, str(exc)) from None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    hint = difflib.get_close_matches(word, sorted(map(str, choices)), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def placed(source: str, path: str, problem: str, origins: Mapping[Key, Origin]
           ) -> ScenarioError:
    """The error for ``path``, placed at the line that wrote it (or its nearest parent)."""
    parts = tuple(path.split(".")) if path else ()
    below = [o.via for k, o in origins.items() if o.via and k[: len(parts)] == parts]
    for n in range(len(parts), 0, -1):
        origin = origins.get(parts[:n])
        if origin is not None:
            return ScenarioError(source, path, problem, origin.line, file=origin.file,
                                 via=origin.via or (below[0] if below else None))
    return ScenarioError(source, path, problem, via=below[0] if below else None)


#: pydantic's wording for a section given as something else than a mapping.
_MAPPING_TYPES = ("model_type", "model_attributes_type", "dict_type")


def from_validation(exc: ValidationError, root: type) -> tuple[str, str]:
    """The key path and problem of the first validation error of ``root``, in the user's
    terms (an unknown key lists the keys allowed at its place)."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]
           if not str(p).startswith(("function-", "literal[")) and str(p) != "[key]"]
    path = ".".join(loc)
    kind = err["type"]
    located = err.get("ctx", {}).get("error")
    if isinstance(located, _Located):
        return located.path, located.problem
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        problem = f"unknown key '{loc[-1]}'{did_you_mean(loc[-1], allowed)}"
        if allowed:
            problem += f" Allowed here: {', '.join(allowed)}."
        return path, problem
    if kind == "missing":
        return path, "this key is required but missing"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if kind in _MAPPING_TYPES:
        msg = "Input should be a mapping of keys"
    if isinstance(value, dict | list):
        return path, msg
    return path, f"{msg} (got {json.dumps(value, default=str)[:80]})"
