"""The credit line: pricing, limits and caps, repayment, delinquency, loss, capital, fraud."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, model_validator

from sim.scenario.base import (
    MAX_DAYS,
    MAX_FACTOR,
    SHARE_TOLERANCE,
    Amount,
    Days,
    Factor,
    Months,
    Points,
    Probability,
    _Model,
)

#: The highest yearly funding rate (per unit of outstanding balance): 100% a year.
MAX_FUNDING_RATE = 1.0
#: Most manual reviews a user may request in a year (counted in int8 arrays).
MAX_REVIEWS_PER_YEAR = 100
#: The largest score value a score effect floor or ceiling may name (scores are 0-100).
MAX_SCORE = 1e6


class Pricing(_Model):
    """Daily interest rate, set at activation by the score's rank among the eligible."""

    min_daily: Annotated[float, Field(ge=0.0, le=0.01)]
    max_daily: Annotated[float, Field(ge=0.0, le=0.01)]

    @model_validator(mode="after")
    def _order(self):
        if self.max_daily < self.min_daily:
            raise ValueError("max_daily is below min_daily")
        return self


class CapRule(_Model):
    """A per-borrower limit cap in force from ``start``: ``amount`` CNY (times the region's
    ``limit_multiplier``) and/or ``income_share`` of annual income."""

    name: str
    start: dt.date
    amount: Amount | None = None
    income_share: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.amount is None and self.income_share is None:
            raise ValueError("a cap gives 'amount', 'income_share' or both")
        return self


class Limits(_Model):
    first_min: Amount
    first_max: Amount
    round_to: Amount = 100.0
    raise_after_months: Annotated[int, Field(gt=0, le=120)]  # months counted in int8
    raise_on_time_share: Probability
    raise_factor: Factor
    # a streak of minimum payments, counted in int8 months
    minimum_streak_cancels_raise: Annotated[int, Field(gt=0, le=120)] = 3
    freeze_days: Annotated[int, Field(ge=0, le=MAX_DAYS)]
    cut_on_delinquency: Probability
    caps: list[CapRule]

    @model_validator(mode="after")
    def _check(self):
        if self.first_max < self.first_min:
            raise ValueError("limits.first_max is below first_min")
        if not self.caps:
            raise ValueError("limits.caps needs at least one rule")
        if len(self.caps) > 8:
            raise ValueError("at most 8 cap rules")
        names = [c.name for c in self.caps]
        if len(set(names)) != len(names):
            raise ValueError("cap names must be unique")
        starts = [c.start for c in self.caps]
        if starts != sorted(starts):
            raise ValueError("caps must be listed in order of 'start'")
        return self


class Repayment(_Model):
    """What a current borrower does with the month's bill."""

    full: Probability
    minimum_only: Probability
    minimum_share: Probability
    instalment_months: Months

    @model_validator(mode="after")
    def _sum(self):
        if self.full + self.minimum_only > 1.0 + SHARE_TOLERANCE:
            raise ValueError("repayment.full + repayment.minimum_only must not exceed 1")
        return self


class Delinquency(_Model):
    """Roll and cure: an account 1-30 / 31-60 / 61-90 days past due cures with
    ``logistic(logit(cure[k]) - cure_elasticity x log(hazard / mean hazard))``, otherwise rolls
    one bucket on;
    reaching 90+ is the default. A current borrower misses a payment with probability
    ``hazard x macro / roll-through``, so the monthly default hazard is ``hazard x macro``."""

    cure: Annotated[list[Probability], Field(min_length=3, max_length=3)]
    cure_elasticity: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)] = 0.5


class Loss(_Model):
    lgd: Probability
    ccf: Probability
    charge_off_dpd: Annotated[int, Field(ge=90, le=MAX_DAYS)]
    lifetime_months: Months
    funding_rate: Annotated[float, Field(ge=0.0, le=MAX_FUNDING_RATE)]  # a year, per balance


class ScoreEffects(_Model):
    overdue_points: Points
    early_repayment_points: Points
    floor: Annotated[float, Field(ge=-MAX_SCORE, le=MAX_SCORE)]
    ceiling: Annotated[float, Field(ge=-MAX_SCORE, le=MAX_SCORE)]


class Credit(_Model):
    """The credit line's life (issue 3): activation, use, repayment, delinquency, loss."""

    activation: dict[str, Probability]
    draw_rate: Probability
    draw_share: Annotated[float, Field(gt=0.0, le=1.0)]
    pricing: Pricing
    limits: Limits
    repayment: Repayment
    delinquency: Delinquency
    loss: Loss
    score: ScoreEffects
    vintage_maturity_months: Months = 12


class Capital(_Model):
    """Total outstanding may not exceed ``equity x max_leverage`` (no cap when null)."""

    equity: Amount | None = None
    max_leverage: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] | None = None

    @property
    def max_outstanding(self) -> float | None:
        if self.equity is None or self.max_leverage is None:
            return None
        return self.equity * self.max_leverage


class Fraud(_Model):
    """Risk signals and levels R1 / R2 / R3 (DOMAIN section 5)."""

    fraudsters: Probability
    r1_rate: Probability
    r2_rate: Probability
    r3_rate: Probability
    fraudster_rate_multiplier: Factor
    fraudster_r3: Probability
    r1_hidden_days: Days
    appeal_rate: Probability
    review_success: Probability
    max_reviews_per_year: Annotated[int, Field(ge=0, le=MAX_REVIEWS_PER_YEAR)]

    @model_validator(mode="after")
    def _rates(self):
        """The monthly chance of a signal is a probability for genuine users and fraudsters
        alike: rates that would exceed 1 are an error, never clipped."""
        base = self.r1_rate + self.r2_rate + self.r3_rate
        if base > 1.0:
            raise ValueError(
                f"fraud.r1_rate + fraud.r2_rate + fraud.r3_rate = {base:g} is a monthly chance "
                "of a signal and must not exceed 1")
        if base * self.fraudster_rate_multiplier > 1.0:
            raise ValueError(
                f"(fraud.r1_rate + fraud.r2_rate + fraud.r3_rate) x "
                f"fraud.fraudster_rate_multiplier = {base:g} x "
                f"{self.fraudster_rate_multiplier:g} = "
                f"{base * self.fraudster_rate_multiplier:g} is a fraudster's monthly chance "
                f"of a signal and must not exceed 1: lower the multiplier to at most "
                f"{1.0 / base:g} or the rates")
        return self
