"""The rollout strategy: phases of invitation batches or ramps, gates, holdouts, freezes,
and A/B arms that each run their own strategy."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    MAX_AMOUNT,
    MAX_FACTOR,
    MAX_USERS,
    MODULES,
    Days,
    Months,
    Probability,
    _Model,
    _Shared,
    _shared,
)
from sim.scenario.calendar import Window

#: The longest cadence: longer than any horizon (one batch), far from timedelta's limit.
MAX_CADENCE_DAYS = 1_000_000


class Batch(_Model):
    """A batch: ``count`` real users, or ``share`` of the eligible, not-yet-invited pool."""

    count: Annotated[float, Field(gt=0)] | None = None
    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.count is None) == (self.share is None):
            raise ValueError("a batch gives exactly one of 'count' (real users) or 'share'")
        return self


class RampStep(_Model):
    percent: Annotated[float, Field(gt=0.0, le=100.0)]
    days: Days


class Gate(_Model):
    """A canary check made before every batch: pass (go on, times ``grow_factor``), fail
    (``on_fail``: halt, shrink by ``shrink_factor`` or pause) or inconclusive (pause).

    ``vintage_dpd30`` judges the newest batch vintage with at least ``months_on_book`` months
    on book (pooled with older seasoned ones up to ``min_lines`` simulated opened lines) by
    its share of opened lines 30+ days past due: it passes when the one-sided upper
    confidence bound at ``level`` (Clopper-Pearson) is at or under ``threshold``, fails
    otherwise; inconclusive while the seasoned vintages are too young or hold too few lines;
    batches go out unjudged (the canary) until they hold ``min_lines``. ``min_lines`` counts
    simulated lines (the sample the rate comes from); the gate judges at least as many lines
    as it takes for a single 30+ line to leave the bound under the threshold, whatever
    ``min_lines`` says, so one simulated default cannot fail it. ``capital_use`` judges
    outstanding over the capital limit (``capital``). A ``dry_run`` gate records what it
    would have decided without acting.
    """

    name: str
    metric: Literal["vintage_dpd30", "capital_use"]
    threshold: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)]
    months_on_book: Months = 3
    min_lines: Annotated[int, Field(ge=0, le=MAX_USERS)] = 0
    level: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    on_fail: Literal["halt", "shrink", "pause"] = "halt"
    shrink_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    grow_factor: Annotated[float, Field(ge=1.0, le=MAX_FACTOR)] = 1.0
    max_factor: Annotated[float, Field(ge=1.0, le=MAX_FACTOR)] = 4.0
    dry_run: bool = False

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        if isinstance(data, dict) and "min_accounts" in data:
            raise ValueError("'min_accounts' (real accounts) is replaced by 'min_lines': the "
                             "simulated lines opened a vintage gate needs before it judges, "
                             "so a decision does not change with --users")
        return data

    @model_validator(mode="after")
    def _share(self):
        if self.metric == "vintage_dpd30" and not 0.0 < self.threshold < 1.0:
            raise ValueError("a vintage_dpd30 threshold is a share of opened lines: over 0 "
                             "and under 1")
        return self


def _unique_gates(gates: list[Gate]) -> list[Gate]:
    names = [g.name for g in gates]
    if len(set(names)) != len(names):
        raise ValueError(f"gate names must be unique, got {names}")
    return gates


class Holdout(_Model):
    """A random ``share`` of the users whose only failing is a score less than ``margin``
    points under the cut-off, invited anyway with each batch and flagged, so that the default
    rate below the cut-off is observed."""

    share: Annotated[float, Field(gt=0.0, le=1.0)]
    margin: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)]  # score points
    salt: str | None = None


class Phase(_Model):
    name: str
    start: dt.date
    # a cadence past the horizon sends one batch (tests use 100,000 days for "only once")
    cadence_days: Annotated[int, Field(gt=0, le=MAX_CADENCE_DAYS)] = 14
    batch: Batch | None = None
    ramp: list[RampStep] | None = None
    ordering: Literal["tier", "score", "random"] = "tier"
    min_version: str | None = None
    regions: list[str] | None = None
    holiday_multiplier: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)] = 1.0
    min_score: float | None = None
    salt: str | None = None
    gates: list[Gate] = []

    @field_validator("gates")
    @classmethod
    def _gates(cls, v):
        return _unique_gates(v)

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.batch is None) == (self.ramp is None):
            raise ValueError("a phase gives exactly one of 'batch' or 'ramp'")
        if self.ramp:
            pct = [s.percent for s in self.ramp]
            if pct != sorted(pct):
                raise ValueError("ramp percentages must not decrease (sticky rollout)")
        return self


class Rollout(_Model):
    """A strategy. ``salt`` keys the sticky buckets of its ramps, random orderings, holdout
    and re-evaluation admissions (with the phase's name): renaming the strategy moves no
    user; a new salt draws a new first 10%."""

    name: str
    phases: list[Phase]
    salt: str = "greysim"
    freeze: list[Window] = []
    value_weights: dict[str, Probability] = {"spending_capacity": 0.6, "assets": 0.4}
    gates: list[Gate] = []
    holdout: Holdout | None = None

    @field_validator("gates")
    @classmethod
    def _gates(cls, v):
        return _unique_gates(v)

    @field_validator("phases")
    @classmethod
    def _ordered(cls, v):
        starts = [p.start for p in v]
        if starts != sorted(starts):
            raise ValueError("phases must be listed in order of 'start'")
        return v

    @field_validator("value_weights")
    @classmethod
    def _value_modules(cls, v):
        unknown = set(v) - set(MODULES)
        if unknown:
            raise ValueError(f"unknown score module {sorted(unknown)}; allowed: {list(MODULES)}")
        return v


class Arm(_Shared):
    """An A/B arm: its ``share`` of the users and the strategy it runs (the scenario's
    ``rollout`` with the arm's keys merged over it, as ``extends`` merges)."""

    rollout: Rollout


class AB(_Model):
    """Arms inside one population: users split by a stable hash of user id and ``salt``."""

    salt: str
    arms: dict[str, Arm]
    min_arm_accounts: Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)] = Field(
        2500, description="an arm with fewer invited accounts is flagged as too small to measure")
    srm_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001

    @field_validator("arms")
    @classmethod
    def _arms(cls, v):
        if len(v) < 2:
            raise ValueError("an A/B test needs at least two arms")
        return _shared(v, "arm")
