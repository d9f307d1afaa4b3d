"""Uncertainties: the assumptions a robust comparison samples, and the futures drawn from them.

An uncertainties file names scenario keys and what each may be::

    set:                                   # fixed in every future (e.g. a shock to move)
      macro.shocks: [{name: downturn, start: 2026-01-01, end: 2026-06-30,
                      hazard_multiplier: 1.0}]
    uncertainties:
      risk.monthly_hazard: {low: 0.0045, high: 0.009}                # uniform
      macro.shocks.0.hazard_multiplier: {low: 1.0, mode: 1.3, high: 2.2}  # triangular
      macro.shocks.0.start: {low: 2025-10-01, high: 2026-12-01}      # a date; the window moves
      credit.activation: {factor: {low: 0.7, high: 1.3}}             # every number below, scaled

Any numeric key takes a range (through the one :class:`~sim.experiments.parameters.Parameter`
type); a date key takes a range of dates (a window's ``end`` moves with its ``start``, so the
window keeps its length); a mapping of numbers takes a ``factor`` that scales each of them.
Futures are a Latin hypercube over the uncertainties, mapped through each one's distribution.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.experiments.parameters import Parameter
from sim.scenario import Scenario, ScenarioError, keys
from sim.scenario.files import parse_yaml

KINDS = ("value", "date", "factor")
ALLOWED = "low and high (and optionally mode, for a triangular distribution)"


@dataclass(frozen=True)
class Uncertainty:
    """One uncertain assumption: a :class:`Parameter` over its range, how it is applied
    (``value``: the key's value; ``date``: days after ``low``'s date; ``factor``: a multiplier
    of every number under the key) and its distribution (``mode`` set: triangular)."""

    parameter: Parameter
    kind: str = "value"
    mode: float | None = None
    origin: dt.date | None = None  # date uncertainties: the day the range counts from

    @property
    def key(self) -> str:
        return self.parameter.key

    def value(self, unit: float) -> Any:
        """The value at quantile ``unit`` of the distribution, as the futures table holds it."""
        p = self.parameter
        if self.mode is None:
            x = p.low + unit * (p.high - p.low)
        else:
            from scipy.stats import triang

            c = (self.mode - p.low) / (p.high - p.low)
            x = float(triang.ppf(unit, c, loc=p.low, scale=p.high - p.low))
        if self.kind == "date":
            return pd.Timestamp(self.origin + dt.timedelta(days=int(round(x))))
        return p.value(x) if self.kind == "value" else float(x)

    def changes(self, value: Any, scenario: Scenario) -> dict[str, Any]:
        """The scenario changes of this uncertainty at ``value``, for :meth:`Scenario.replace`."""
        if self.kind == "value":
            return {self.key: keys.plain(value)}
        data = scenario.model_dump(mode="json")
        if self.kind == "date":
            day = pd.Timestamp(value).date()
            out = {self.key: day.isoformat()}
            parts = keys.split(self.key)
            if parts[-1] == "start":
                window = keys.get(data, parts[:-1])
                if isinstance(window, dict) and "end" in window:
                    shift = day - dt.date.fromisoformat(str(keys.get(data, parts)))
                    end = dt.date.fromisoformat(str(window["end"])) + shift
                    out[".".join([*parts[:-1], "end"])] = end.isoformat()
            return out
        return {k: v * float(value) for k, v in _numbers(keys.get(data, self.key),
                                                         self.key).items()}

    def spec(self) -> dict:
        p = self.parameter
        return {"key": p.key, "kind": self.kind, "low": p.low, "high": p.high,
                "mode": self.mode, "origin": self.origin.isoformat() if self.origin else None}


def _numbers(node: Any, prefix: str) -> dict[str, float]:
    """Every number below ``node`` by dotted key (switches left out)."""
    if isinstance(node, dict):
        out: dict[str, float] = {}
        for k, v in node.items():
            out.update(_numbers(v, f"{prefix}.{k}"))
        return out
    if isinstance(node, list):
        out = {}
        for i, v in enumerate(node):
            out.update(_numbers(v, f"{prefix}.{i}"))
        return out
    if isinstance(node, int | float) and not isinstance(node, bool):
        return {prefix: float(node)}
    return {}


@dataclass(frozen=True)
class Uncertainties:
    """The uncertainties of a file, and the settings every future shares (``fixed``)."""

    items: tuple[Uncertainty, ...]
    fixed: dict
    source: str = "<uncertainties>"

    @property
    def keys(self) -> list[str]:
        return [u.key for u in self.items]

    def digest(self) -> str:
        text = json.dumps({"items": [u.spec() for u in self.items], "fixed": self.fixed},
                          sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        """``n`` futures: a Latin hypercube (scipy.stats.qmc) over the uncertainties, seeded,
        one row per future, one column per key."""
        from scipy.stats import qmc

        if n < 2:
            raise ScenarioError(self.source, "futures", f"sample at least 2 futures, got {n}")
        unit = qmc.LatinHypercube(d=len(self.items), rng=np.random.default_rng(seed)).random(n)
        table = pd.DataFrame({u.key: [u.value(x) for x in unit[:, i]]
                              for i, u in enumerate(self.items)})
        table.insert(0, "future", range(n))
        return table

    def apply(self, scenario: Scenario, future: pd.Series | dict) -> Scenario:
        """``scenario`` in one future: the fixed settings, then every uncertainty's value."""
        try:
            if self.fixed:
                scenario = scenario.replace(self.fixed)
            changes: dict[str, Any] = {}
            for u in self.items:
                changes.update(u.changes(future[u.key], scenario))
            return scenario.replace(changes)
        except ScenarioError as exc:
            where = f"future {future['future']}" if "future" in future else "a future"
            raise ScenarioError(self.source, exc.path, f"{exc.problem} ({where} of "
                                f"scenario '{scenario.name}')", exc.line) from None


def read(path: str | Path, scenario: Scenario) -> Uncertainties:
    """The uncertainties file at ``path``, checked against ``scenario``'s schema and values
    (a key the schema lacks, a range the wrong way round, a date range on a number...)."""
    path = Path(path)
    source = str(path)
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(source, "", f"cannot read the uncertainties file: "
                            f"{exc.strerror or exc}") from None
    except Exception as exc:  # YAML syntax
        raise ScenarioError(source, "", f"not a valid YAML file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("uncertainties"), dict) \
            or not data["uncertainties"]:
        raise ScenarioError(source, "uncertainties", "the file needs an 'uncertainties' "
                            "mapping of scenario keys to ranges, e.g. "
                            "risk.monthly_hazard: {low: 0.004, high: 0.009}")
    unknown = set(data) - {"set", "uncertainties", "description"}
    if unknown:
        raise ScenarioError(source, sorted(unknown)[0], "allowed top-level keys: "
                            "description, set, uncertainties")
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise ScenarioError(source, "set", "a mapping of scenario keys to values")
    fixed = {str(k): keys.plain(v) for k, v in fixed.items()}
    try:
        base = scenario.replace(fixed) if fixed else scenario
    except ScenarioError as exc:
        raise ScenarioError(source, f"set.{exc.path}", exc.problem) from None
    items = tuple(_uncertainty(str(k), v, base, source)
                  for k, v in data["uncertainties"].items())
    return Uncertainties(items, fixed, source)


def _uncertainty(key: str, spec: Any, scenario: Scenario, source: str) -> Uncertainty:
    where = f"uncertainties.{key}"
    if not isinstance(spec, dict):
        raise ScenarioError(source, where, f"give {ALLOWED}, e.g. {{low: 0.5, high: 1.5}}")
    data = scenario.model_dump(mode="json")
    try:
        current = keys.get(data, key)
    except KeyError:
        current = None
        try:
            keys.numeric_key(Scenario, key)
        except ScenarioError as exc:
            raise ScenarioError(source, f"uncertainties.{exc.path}", exc.problem) from None
    if "factor" in spec:
        numbers = _numbers(current, key)
        if not numbers:
            raise ScenarioError(source, where, "a factor scales the numbers under a key; "
                                "this key holds none")
        low, high, mode = _bounds(spec["factor"], f"{where}.factor", source, float)
        return Uncertainty(Parameter(key, "continuous", low, high), "factor", mode)
    extra = set(spec) - {"low", "high", "mode"}
    if extra:
        raise ScenarioError(source, f"{where}.{sorted(extra)[0]}", f"allowed: {ALLOWED}, or "
                            "factor")
    if isinstance(spec.get("low"), dt.date) or isinstance(current, str) and _is_date(current):
        low, high, mode = _bounds(spec, where, source, _date)
        origin = dt.date.fromordinal(int(low))
        return Uncertainty(Parameter(key, "continuous", 0.0, high - low), "date",
                           None if mode is None else mode - low, origin)
    low, high, mode = _bounds(spec, where, source, float)
    try:
        parameter = Parameter.between(key, low, high, source)
    except ScenarioError as exc:
        raise ScenarioError(source, f"uncertainties.{exc.path}", exc.problem) from None
    return Uncertainty(parameter, "value", mode)


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _date(value: Any) -> float:
    if isinstance(value, dt.date):
        return float(value.toordinal())
    return float(dt.date.fromisoformat(str(value)).toordinal())


def _bounds(spec: Any, where: str, source: str, as_number) -> tuple[float, float, float | None]:
    if not isinstance(spec, dict) or "low" not in spec or "high" not in spec:
        raise ScenarioError(source, where, f"give {ALLOWED}")
    try:
        low, high = as_number(spec["low"]), as_number(spec["high"])
        mode = None if spec.get("mode") is None else as_number(spec["mode"])
    except (TypeError, ValueError):
        raise ScenarioError(source, where, f"give {ALLOWED} as numbers (or dates for a date "
                            f"key), got {spec}") from None
    if not low < high:
        raise ScenarioError(source, where, f"a range needs low < high, got {spec['low']} to "
                            f"{spec['high']}")
    if mode is not None and not low <= mode <= high:
        raise ScenarioError(source, f"{where}.mode", "the mode must lie between low and high")
    return low, high, mode
