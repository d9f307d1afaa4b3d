"""Parameters: the scenario keys an experiment varies, with their bounds or levels.

One type for sweeps (grid levels, Latin hypercube ranges) and calibration (fitted ranges). A
parameter is checked against the scenario schema when it is made, so a misspelt key fails
before any run, naming the key and the nearest one; a range needs a key that holds a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from sim.scenario import Scenario, ScenarioError, keys
from sim.scenario.base import annotation_at, strip

Kind = Literal["continuous", "integer", "levels"]


@dataclass(frozen=True)
class Parameter:
    """A scenario key (dotted path, as in an override) and the values it may take: ``low`` to
    ``high`` (``continuous`` or ``integer``, from the schema) or a list of ``levels``."""

    key: str
    kind: Kind
    low: float = math.nan
    high: float = math.nan
    levels: tuple[Any, ...] = ()

    @classmethod
    def between(cls, key: str, low: float, high: float, source: str = "<parameters>"
                ) -> Parameter:
        """A range ``low`` < ``high`` over a numeric key."""
        key = key.strip()
        if not keys.numeric_key(Scenario, key):
            raise ScenarioError(source, key, "a range needs a key that holds a number; this "
                                "one does not (give levels instead)")
        if not low < high:
            raise ScenarioError(source, key, f"a range needs low < high, got {low:g} to "
                                f"{high:g}")
        kind: Kind = "integer" if strip(annotation_at(Scenario, keys.split(key))) is int \
            else "continuous"
        return cls(key, kind, float(low), float(high))

    @classmethod
    def at_levels(cls, key: str, levels: list[Any], source: str = "<parameters>"
                  ) -> Parameter:
        """The listed values of any key (numbers, names, switches)."""
        key = key.strip()
        keys.numeric_key(Scenario, key)  # raises for an unknown key
        if not levels:
            raise ScenarioError(source, key, "give at least one level")
        return cls(key, "levels", levels=tuple(keys.plain(v) for v in levels))

    @classmethod
    def parse_range(cls, text: str, source: str = "<parameters>") -> Parameter:
        """``key=lo:hi``, e.g. ``scoring.cutoff=10:40``."""
        key, sep, span = text.partition("=")
        lo, colon, hi = span.partition(":")
        try:
            low, high = float(lo), float(hi)
        except ValueError:
            low = high = math.nan
        if not sep or not colon or not key.strip() or math.isnan(low) or math.isnan(high):
            raise ScenarioError(source, key.strip(), f"a range is key=lo:hi with numbers, got "
                                f"'{text}'")
        return cls.between(key, low, high, source)

    @classmethod
    def parse_levels(cls, text: str, source: str = "<parameters>") -> Parameter:
        """``key=v1,v2,...``, each value read as YAML (``0.1``, ``tier``, ``true``)."""
        key, sep, values = text.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ScenarioError(source, key.strip(), f"levels are key=v1,v2,..., got '{text}'")
        return cls.at_levels(key, [_scalar(v.strip()) for v in values.split(",")], source)

    def value(self, x: float) -> float | int:
        """A value of the range as the key holds it (whole numbers for integer keys)."""
        return int(round(x)) if self.kind == "integer" else float(x)


def _scalar(text: str) -> Any:
    value = keys.parse_value(text)
    return value if isinstance(value, int | float | str | bool) else text
