"""The rollout strategy: phases of invitation batches or ramps, gates, holdouts, freezes,
and A/B arms that each run their own strategy."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    MODULES,
    NonNegFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    _Model,
    _Shared,
    _shared,
)
from sim.scenario.calendar import Window


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
    days: PositiveInt = Field(description="days this step lasts before the next")


class Gate(_Model):
    """A canary check made before every batch: pass (go on, times ``grow_factor``), fail
    (``on_fail``: halt, shrink by ``shrink_factor`` or pause) or inconclusive (pause).

    ``vintage_dpd30`` judges the newest batch vintage with at least ``months_on_book`` months
    on book (pooled with older seasoned ones up to ``min_accounts`` real accounts) by its share
    of accounts 30+ days past due: inconclusive while the seasoned vintages are too young or
    too small; batches go out unjudged (the canary) until they hold ``min_accounts``.
    ``capital_use`` judges outstanding over the capital limit (``capital``). A ``dry_run`` gate
    records what it would have decided without acting.
    """

    name: str = Field(description="unique name of the gate, used in gates.parquet")
    metric: Literal["vintage_dpd30", "capital_use"] = Field(
        description=("what is judged: 30+ rate of the newest seasoned vintage, or outstanding over"
                     " the capital limit"))
    threshold: NonNegFloat = Field(description="the gate passes at or under this value")
    months_on_book: PositiveInt = Field(
        3, description="age a vintage must reach before it is judged")
    min_accounts: NonNegFloat = Field(
        0.0, description=("real accounts the judged vintages must hold; batches go out unjudged "
                          "(canary) until then"))
    on_fail: Literal["halt", "shrink", "pause"] = Field(
        "halt", description="what a failed check does: halt, shrink batches, or pause")
    shrink_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.5, description="batch size multiplier when a shrink gate fails")
    grow_factor: Annotated[float, Field(ge=1.0)] = Field(
        1.0, description="batch size multiplier after each passed check")
    max_factor: Annotated[float, Field(ge=1.0)] = Field(
        4.0, description="largest cumulative batch size multiplier from passed checks")
    dry_run: bool = Field(False, description="record the decision without acting on it")


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
    margin: PositiveFloat = Field(
        description="score points under the cut-off a user may be and still be held out")
    salt: str | None = Field(
        None, description="salt of the holdout draw (default: derived from the rollout)")


class Phase(_Model):
    name: str = Field(description="the phase's name (batches.parquet, charts)")
    start: dt.date = Field(description="date the phase begins; it runs until the next phase starts")
    cadence_days: PositiveInt = Field(14, description="days between two batches")
    batch: Batch | None = Field(
        None, description=("batch size: count of real users or share of the eligible pool (give "
                           "batch or ramp)"))
    ramp: list[RampStep] | None = Field(
        None, description="sticky percentage steps instead of batches (give batch or ramp)")
    ordering: Literal["tier", "score", "random"] = Field(
        "tier", description="who goes first: tier (value score), score, or random")
    min_version: str | None = Field(
        None, description="oldest client version invited (default: every version)")
    regions: list[str] | None = Field(
        None, description="region tiers reached (default: every open region)")
    holiday_multiplier: NonNegFloat = Field(
        1.0, description="batch size multiplier inside calendar.holidays")
    min_score: float | None = Field(
        None, description="lowest score invited, above the cut-off (default: the cut-off)")
    salt: str | None = Field(None, description="salt of the sticky buckets of a ramp")
    gates: list[Gate] = Field([], description="checks made before each of this phase's batches")

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
    name: str = Field(description="the strategy's name in comparisons and reports")
    phases: list[Phase] = Field(description="the phases, in order of start")
    freeze: list[Window] = Field([], description="windows in which no batch is sent")
    value_weights: dict[str, Probability] = Field(
        {"spending_capacity": 0.6, "assets": 0.4}, description=("weights of the score modules in "
                                                                "the value score that orders "
                                                                "'tier' batches"))
    gates: list[Gate] = Field([], description="checks made before every batch of every phase")
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
    min_arm_accounts: NonNegFloat = Field(
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
