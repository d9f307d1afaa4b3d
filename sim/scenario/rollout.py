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

    count: Annotated[float, Field(gt=0)] | None = Field(
        None, description="real users invited per batch (not scaled by an A/B arm's share)")
    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None, description="share of the eligible, not yet invited pool in reach invited per batch")

    @model_validator(mode="after")
    def _one(self):
        if (self.count is None) == (self.share is None):
            raise ValueError("a batch gives exactly one of 'count' (real users) or 'share'")
        return self


class RampStep(_Model):
    percent: Annotated[float, Field(gt=0.0, le=100.0)] = Field(
        description="share of users (sticky buckets, in %) invited from this step on")
    days: Days = Field(description="days this step lasts before the next")


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

    name: str = Field(description="unique name of the gate, used in gates.parquet")
    metric: Literal["vintage_dpd30", "capital_use"] = Field(
        description=("what is judged: 30+ rate per opened line of the newest seasoned vintages, "
                     "or outstanding over the capital limit"))
    threshold: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)] = Field(
        description="the gate passes at or under this value")
    months_on_book: Months = Field(
        default=3,
        description="age a vintage must reach before it is judged")
    min_lines: Annotated[int, Field(ge=0, le=MAX_USERS)] = 0
    level: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    on_fail: Literal["halt", "shrink", "pause"] = Field(
        default="halt",
        description="what a failed check does: halt, shrink batches, or pause")
    shrink_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.5,
        description="batch size multiplier when a shrink gate fails")
    grow_factor: Annotated[float, Field(ge=1.0, le=MAX_FACTOR)] = Field(
        default=1.0,
        description="batch size multiplier after each passed check")
    max_factor: Annotated[float, Field(ge=1.0, le=MAX_FACTOR)] = Field(
        default=4.0,
        description="largest cumulative batch size multiplier from passed checks")
    dry_run: bool = Field(default=False, description="record the decision without acting on it")

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

    share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        description="share of the near-miss users invited with each batch anyway")
    margin: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] = Field(
        description="score points under the cut-off a user may be and still be held out")
    salt: str | None = Field(
        default=None, description="salt of the holdout draw (default: derived from the rollout)")


class Phase(_Model):
    name: str = Field(description="the phase's name (batches.parquet, charts)")
    start: dt.date = Field(description="date the phase begins; it runs until the next phase starts")
    # a cadence past the horizon sends one batch (tests use 100,000 days for "only once")
    cadence_days: Annotated[int, Field(gt=0, le=MAX_CADENCE_DAYS)] = Field(
        default=14,
        description="days between two batches")
    batch: Batch | None = Field(
        None, description=("batch size: count of real users or share of the eligible pool (give "
                           "batch or ramp)"))
    ramp: list[RampStep] | None = Field(
        default=None,
        description="sticky percentage steps instead of batches (give batch or ramp)")
    ordering: Literal["tier", "score", "random"] = Field(
        default="tier",
        description="who goes first: tier (value score), score, or random")
    min_version: str | None = Field(
        default=None,
        description="oldest client version invited (default: every version)")
    regions: list[str] | None = Field(
        default=None,
        description="region tiers reached (default: every open region)")
    holiday_multiplier: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)] = Field(
        default=1.0,
        description="batch size multiplier inside calendar.holidays")
    min_score: float | None = Field(
        default=None,
        description="lowest score invited, above the cut-off (default: the cut-off)")
    salt: str | None = Field(default=None, description="salt of the sticky buckets of a ramp")
    gates: list[Gate] = Field(
        default=[],
        description="checks made before each of this phase's batches")

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

    name: str = Field(description="the strategy's name in comparisons and reports")
    phases: list[Phase] = Field(description="the phases, in order of start")
    salt: str = Field(
        default="greysim", description=("salt of the sticky buckets of every phase, holdout "
                                        "and admission; renaming the strategy changes no draw"))
    freeze: list[Window] = Field(default=[], description="windows in which no batch is sent")
    value_weights: dict[str, Probability] = Field(
        {"spending_capacity": 0.6, "assets": 0.4},
        description="weights of the score modules in the value score that orders batches")
    gates: list[Gate] = Field(
        default=[],
        description="checks made before every batch of every phase")
    holdout: Holdout | None = Field(
        None, description=("invite a few users just under the cut-off to observe their default "
                           "rate"))

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

    rollout: Rollout = Field(
        description="the arm's strategy: keys merged over the scenario's rollout")


class AB(_Model):
    """Arms inside one population: users split by a stable hash of user id and ``salt``."""

    salt: str = Field(description="salt of the stable hash that assigns users to arms")
    arms: dict[str, Arm] = Field(description="the arms, by name; the first is the control")
    min_arm_accounts: Annotated[float, Field(ge=0.0, le=MAX_AMOUNT)] = Field(
        2500, description="an arm with fewer invited accounts is flagged as too small to measure")
    srm_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.001, description=("p-value under which the arm sizes are flagged as a sample-ratio "
                            "mismatch"))

    @field_validator("arms")
    @classmethod
    def _arms(cls, v):
        if len(v) < 2:
            raise ValueError("an A/B test needs at least two arms")
        return _shared(v, "arm")
