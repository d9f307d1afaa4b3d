"""Loading a scenario: its file and ``extends`` chain, overrides by key, a sample size."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

from sim.scenario import keys
from sim.scenario.files import resolve
from sim.scenario.messages import Key, Origin, ScenarioError
from sim.scenario.root import Scenario, validate


def load(path: str | Path, overrides: Mapping[str, Any] | Iterable[str] | None = None,
         users: int | None = None, *, note: str = "overridden") -> Scenario:
    """Load, resolve ``extends``, apply ``overrides`` and validate a scenario file.

    ``overrides`` maps dotted keys to values (``{"population.users": 5000}``); a list of
    ``"key=value"`` strings is also accepted. An error in an overridden value says it was
    ``note`` (the command line passes "set on the command line").

    ``users`` simulates that many users standing for the same real population (the weight
    scales with it), so a smaller or larger sample models the same market: absolute figures
    (batch sizes in accounts, the capital limit) bind alike.
    """
    path = Path(path)
    changes = _changes(overrides, str(path))
    if users is not None and (isinstance(users, bool) or not isinstance(users, Integral)
                              or users < 1):
        raise ScenarioError(str(path), "population.users",
                            f"simulated users must be a whole number of at least 1, got {users!r}")
    raw, origins = resolve(path, ())
    if users is None:
        return _validated(path, raw, origins, changes, note)
    # validated twice (the weight needs the file's users): from one reading of the file, as
    # parsing it again took ~5 ms; the changes are set in place, so the first gets copies
    # (the origins' values are frozen: a shallow copy)
    scenario = _validated(path, copy.deepcopy(raw), dict(origins), changes, note)
    pop = scenario.population
    weight = float(pop.users * pop.weight / users)
    return _validated(path, raw, origins, {**changes, "population.users": int(users),
                                           "population.weight": weight}, note)


def _validated(path: Path, raw: dict, origins: dict[Key, Origin], changes: Mapping[str, Any],
               note: str) -> Scenario:
    """The scenario of a resolved file's mapping with ``changes`` set in it (in place), the
    origins recording them."""
    keys.set_values(raw, changes, Scenario, source=str(path), origins=origins, note=note)
    return validate(raw, str(path), origins)


def _changes(overrides: Mapping[str, Any] | Iterable[str] | None, source: str
             ) -> dict[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [overrides]
    return keys.parse_assignments(overrides, source)
