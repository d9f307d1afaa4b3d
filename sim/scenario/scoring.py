"""The access score: signals, modules and their weights, cut-offs, penalties, preconditions,
the latent risk the score sees imperfectly and the quarterly re-evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from sim.scenario.base import (
    MODULES,
    NonNegFloat,
    PositiveFloat,
    PositiveInt,
    Probability,
    _check_shares,
    _Model,
)


class Cutoff(_Model):
    """An access threshold on one signal; failing it costs ``points`` (``hard`` excludes)."""

    min: NonNegFloat = Field(description="the reference value of the cut-off")
    points: NonNegFloat = Field(0.0, description="score points lost under it")
    hard: bool = Field(False, description="under it, no access whatever the score")


class Penalty(_Model):
    threshold: NonNegFloat = Field(0.0, description="the behaviour counts above this value")
    points: NonNegFloat = Field(description="score points lost")


class Preconditions(_Model):
    min_account_age_months: NonNegFloat = Field(description="youngest account with access")
    require_real_name_card: bool = Field(
        True, description="no access without real name and a bound card")
    require_class_iii: bool = Field(True, description="no access without a class III account")
    exclude_past_default: bool = Field(True, description="no access after a past default")
    exclude_device_closed: bool = Field(True, description="no access on a closed device")
    exclude_risky_social_graph: bool = Field(
        True, description="no access with a risky social graph")
    exclude_expired_id_after_months: NonNegFloat = Field(
        3, description="months an expired ID is tolerated")


class OtherIndicators(_Model):
    """The many indicators not modelled one by one: a persistent per-user score component."""

    sd: NonNegFloat = Field(
        description=("spread of the persistent component for indicators not modelled singly, in "
                     "points"))
    persistence: Probability = Field(
        description="quarter-to-quarter correlation of that component (lower: more churn)")


class References(_Model):
    payments_per_month: PositiveFloat = Field(
        description="payments per month that scores 50 points in its module")
    monthly_spend: PositiveFloat = Field(
        description="monthly spend that scores 50 points in its module")
    wealth_days: PositiveFloat = Field(
        description="wealth days that scores 50 points in its module")
    wealth_balance: PositiveFloat = Field(
        description="wealth balance that scores 50 points in its module")
    credit_history_years: PositiveFloat = Field(
        description="credit history years that scores 50 points in its module")
    contacts: PositiveFloat = Field(description="contacts that scores 50 points in its module")
    income: PositiveFloat = Field(description="income that scores 50 points in its module")


class SpendingSignals(_Model):
    payments: float = Field(description="weight of payments a month")
    spend: float = Field(description="weight of monthly spend")


class RepaymentSignals(_Model):
    credit_transactions: float = Field(description="weight of credit transactions")
    utility_bills: float = Field(description="weight of paying utility bills")
    intercept: float = Field(description="the module's intercept")


class SocialSignals(_Model):
    contacts: float = Field(description="weight of contacts")
    quality: float = Field(description="weight of social-graph quality")
    quality_reference: Probability = Field(description="quality that scores 50 points")


class AssetSignals(_Model):
    days: float = Field(description="weight of days wealth is held")
    balance: float = Field(description="weight of the wealth balance")


class StabilitySignals(_Model):
    intercept: float = Field(description="the module's intercept")
    night: float = Field(description="weight of night-time activity")
    device_switches: float = Field(description="weight of device switches")
    volatility: float = Field(description="weight of spend volatility")
    dormant: float = Field(description="weight of dormancy")


class ResilienceSignals(_Model):
    debt_to_income: float = Field(description="weight of debt to income")
    debt_to_income_reference: NonNegFloat = Field(
        description="debt-to-income ratio that scores 50 points")


class Signals(_Model):
    """How each module combines its signals before the logistic (weights in logit units)."""

    spending_capacity: SpendingSignals
    repayment_trust: RepaymentSignals
    social_influence: SocialSignals
    assets: AssetSignals
    behavioural_stability: StabilitySignals
    risk_resilience: ResilienceSignals


class Scoring(_Model):
    weights: dict[str, Probability] = Field(
        description="weights of the six score modules (sum to 1)")
    slope: PositiveFloat = Field(
        description="module score = 100 x logistic(slope x log(signal / reference))")
    signals: Signals = Field(description="how each module weighs its own signals")
    references: References = Field(description="signal values scoring 50 points")
    cutoff: float = Field(description="score points needed for access")
    cutoffs: dict[Literal["payments_per_month", "wealth_days", "credit_history_years"],
                  Cutoff] = Field(description="behaviour cut-offs with their penalty")
    penalties: dict[
        Literal[
            "low_offline_share",
            "high_spend_volatility",
            "night_activity",
            "device_switches",
            "no_utility_bills",
            "awakened",
        ],
        Penalty,
    ]
    other_indicators: OtherIndicators = Field(
        description="the persistent component that drives quarterly churn")
    preconditions: Preconditions = Field(description="hard conditions for access")

    @field_validator("weights")
    @classmethod
    def _modules(cls, v):
        unknown = set(v) - set(MODULES)
        if unknown:
            raise ValueError(f"unknown score module {sorted(unknown)}; allowed: {list(MODULES)}")
        missing = set(MODULES) - set(v)
        if missing:
            raise ValueError(f"missing score module weights {sorted(missing)}")
        _check_shares(v, "score module weight")
        return v


class Risk(_Model):
    """Latent risk: the truth the score sees only imperfectly."""

    score_correlation: Annotated[float, Field(ge=-1.0, le=1.0)] = Field(
        description="correlation of latent creditworthiness with the score")
    monthly_hazard: Probability = Field(description="population mean monthly default hazard")
    dispersion: NonNegFloat = Field(description="sd of the log hazard across users")
    auc_horizon_months: PositiveInt = Field(
        12, description=("horizon of the latent default probability the score's AUC is measured "
                         "against"))


class Reevaluation(_Model):
    every_months: PositiveInt = Field(3, description="months between two re-scorings of everyone")
    admit_new: bool = Field(
        True, description="newly eligible users join at the coverage the rollout has reached")
