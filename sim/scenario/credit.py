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

    min_daily: Annotated[float, Field(ge=0.0, le=0.01)] = Field(
        description="daily interest rate of the best scores")
    max_daily: Annotated[float, Field(ge=0.0, le=0.01)] = Field(
        description="daily interest rate of the worst scores")

    @model_validator(mode="after")
    def _order(self):
        if self.max_daily < self.min_daily:
            raise ValueError("max_daily is below min_daily")
        return self


class CapRule(_Model):
    """A per-borrower limit cap in force from ``start``: ``amount`` CNY (times the region's
    ``limit_multiplier``) and/or ``income_share`` of annual income."""

    name: str = Field(description="the rule's name (summary.json counts whom it bound)")
    start: dt.date = Field(description="date the cap applies from")
    amount: Amount | None = Field(default=None, description="largest line in CNY")
    income_share: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] | None = Field(
        default=None,
        description="largest line as a share of annual income")

    @model_validator(mode="after")
    def _something(self):
        if self.amount is None and self.income_share is None:
            raise ValueError("a cap gives 'amount', 'income_share' or both")
        return self


class Limits(_Model):
    first_min: Amount = Field(description="smallest first limit, CNY")
    first_max: Amount = Field(description="largest first limit, CNY")
    round_to: Amount = Field(default=100.0, description="limits are rounded to this many CNY")
    raise_after_months: Annotated[int, Field(gt=0, le=120)] = Field(
        description="months of good behaviour before a limit raise")  # months counted in int8
    raise_on_time_share: Probability = Field(
        description="share of on-time months needed for a raise")
    raise_factor: Factor = Field(description="limit multiplier at a raise")
    # a streak of minimum payments, counted in int8 months
    minimum_streak_cancels_raise: Annotated[int, Field(gt=0, le=120)] = Field(
        default=3,
        description="minimum-only repayments in a row that cancel a raise")
    freeze_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = Field(
        description="days a limit is frozen after an overdue payment")
    cut_on_delinquency: Probability = Field(
        description="share of the limit cut at an overdue episode")
    caps: list[CapRule] = Field(
        description="dated per-borrower caps; all in force apply, the tightest wins")

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

    full: Probability = Field(description="monthly chance a current borrower repays in full")
    minimum_only: Probability = Field(
        description="monthly chance of paying only interest and the minimum")
    minimum_share: Probability = Field(description="share of the principal in a minimum payment")
    instalment_months: Months = Field(description="otherwise, the months of the instalment plan")

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

    cure: Annotated[list[Probability], Field(min_length=3, max_length=3)] = Field(
        description=("monthly chance of curing from 1-30, 31-60 and 61-90 days past due at the "
                     "mean hazard"))
    cure_elasticity: Annotated[float, Field(ge=0.0, le=MAX_FACTOR)] = Field(
        0.5, description=("how much less riskier users cure (on the logit scale per log hazard "
                          "ratio)"))


class Loss(_Model):
    lgd: Probability = Field(description="loss given default")
    ccf: Probability = Field(description="credit conversion factor on the undrawn limit")
    charge_off_dpd: Annotated[int, Field(ge=90, le=MAX_DAYS)] = Field(
        description="days past due at which a line is charged off")
    lifetime_months: Months = Field(
        description="behavioural life for lifetime expected credit loss")
    funding_rate: Annotated[float, Field(ge=0.0, le=MAX_FUNDING_RATE)] = Field(
        description="annual funding cost on the outstanding balance")  # a year, per balance


class ScoreEffects(_Model):
    overdue_points: Points = Field(description="score points lost per overdue episode")
    early_repayment_points: Points = Field(
        description="score points gained per early full repayment")
    floor: Annotated[float, Field(ge=-MAX_SCORE, le=MAX_SCORE)] = Field(
        description="lowest accumulated adjustment")
    ceiling: Annotated[float, Field(ge=-MAX_SCORE, le=MAX_SCORE)] = Field(
        description="highest accumulated adjustment")


class Credit(_Model):
    """The credit line's life (issue 3): activation, use, repayment, delinquency, loss."""

    activation: dict[str, Probability] = Field(
        description=("monthly chance, by archetype, that an invited user who sees the entry opens "
                     "the line"))
    draw_rate: Probability = Field(description="monthly chance an open, current line is drawn")
    draw_share: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        description="mean share of the undrawn limit a draw takes")
    pricing: Pricing
    limits: Limits
    repayment: Repayment
    delinquency: Delinquency
    loss: Loss
    score: ScoreEffects
    vintage_maturity_months: Months = Field(
        default=12,
        description="vintage cells younger than this are flagged immature")


class Capital(_Model):
    """Total outstanding may not exceed ``equity x max_leverage`` (no cap when null)."""

    equity: Amount | None = Field(
        default=None,
        description="capital for the product, CNY (none: no limit)")
    max_leverage: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] | None = Field(
        default=None,
        description="outstanding may reach equity x this")

    @property
    def max_outstanding(self) -> float | None:
        if self.equity is None or self.max_leverage is None:
            return None
        return self.equity * self.max_leverage


class Fraud(_Model):
    """Risk signals and levels R1 / R2 / R3 (DOMAIN section 5)."""

    fraudsters: Probability = Field(description="share of users whose risk signals are right")
    r1_rate: Probability = Field(
        description="monthly R1 (hide for a while) false-alarm rate on genuine users")
    r2_rate: Probability = Field(
        description="monthly R2 (hide until a review) false-alarm rate on genuine users")
    r3_rate: Probability = Field(
        description="monthly R3 (closed for good) false-alarm rate on genuine users")
    fraudster_rate_multiplier: Factor = Field(
        description="how much more often fraudsters trigger signals")
    fraudster_r3: Probability = Field(description="share of a fraudster's signals that are R3")
    r1_hidden_days: Days = Field(description="days an R1 block hides the entry")
    appeal_rate: Probability = Field(
        description="monthly chance an R2-hidden user asks for a review")
    review_success: Probability = Field(description="chance a manual review restores access")
    max_reviews_per_year: Annotated[int, Field(ge=0, le=MAX_REVIEWS_PER_YEAR)] = Field(
        description="review requests allowed per calendar year")

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
