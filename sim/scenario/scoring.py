"""The access score: signals, modules and their weights, cut-offs, penalties, preconditions,
the latent risk the score sees imperfectly and the quarterly re-evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    MAX_FACTOR,
    MAX_MEDIAN,
    MAX_MONTHS,
    MODULES,
    LogSd,
    Median,
    Months,
    Points,
    Probability,
    _check_shares,
    _Model,
)

Threshold = Annotated[float, Field(ge=0.0, le=MAX_MEDIAN)]
#: A signal's weight in logit units.
Weight = Annotated[float, Field(ge=-MAX_FACTOR, le=MAX_FACTOR)]


class Cutoff(_Model):
    """An access threshold on one signal; failing it costs ``points`` (``hard`` excludes)."""

    min: Threshold = Field(description="the reference value of the cut-off")
    points: Points = Field(default=0.0, description="score points lost under it")
    hard: bool = Field(default=False, description="under it, no access whatever the score")


class Penalty(_Model):
    threshold: Threshold = Field(default=0.0, description="the behaviour counts above this value")
    points: Points = Field(description="score points lost")


class Preconditions(_Model):
    min_account_age_months: Annotated[float, Field(ge=0.0, le=MAX_MONTHS)] = Field(
        description="youngest account with access")
    require_real_name_card: bool = Field(
        default=True,
        description="no access without real name and a bound card")
    require_class_iii: bool = Field(
        default=True,
        description="no access without a class III account")
    exclude_past_default: bool = Field(default=True, description="no access after a past default")
    exclude_device_closed: bool = Field(default=True, description="no access on a closed device")
    exclude_risky_social_graph: bool = Field(
        default=True,
        description="no access with a risky social graph")
    exclude_expired_id_after_months: Annotated[float, Field(ge=0.0, le=MAX_MONTHS)] = Field(
        default=3,
        description="months an expired ID is tolerated")


class OtherIndicators(_Model):
    """The many indicators not modelled one by one: a persistent per-user score component."""

    sd: Points = Field(
        description=("spread of the persistent component for indicators not modelled singly, in "
                     "points"))
    persistence: Probability = Field(
        description="quarter-to-quarter correlation of that component (lower: more churn)")


class References(_Model):
    payments_per_month: Median = Field(
        description="payments per month that scores 50 points in its module")
    monthly_spend: Median = Field(description="monthly spend that scores 50 points in its module")
    wealth_days: Median = Field(description="wealth days that scores 50 points in its module")
    wealth_balance: Median = Field(description="wealth balance that scores 50 points in its module")
    credit_history_years: Median = Field(
        description="credit history years that scores 50 points in its module")
    contacts: Median = Field(description="contacts that scores 50 points in its module")
    income: Median = Field(description="income that scores 50 points in its module")


class SpendingSignals(_Model):
    payments: Weight = Field(description="weight of payments a month")
    spend: Weight = Field(description="weight of monthly spend")


class RepaymentSignals(_Model):
    credit_transactions: Weight = Field(description="weight of credit transactions")
    utility_bills: Weight = Field(description="weight of paying utility bills")
    intercept: Weight = Field(description="the module's intercept")


class SocialSignals(_Model):
    contacts: Weight = Field(description="weight of contacts")
    quality: Weight = Field(description="weight of social-graph quality")
    quality_reference: Probability = Field(description="quality that scores 50 points")


class AssetSignals(_Model):
    days: Weight = Field(description="weight of days wealth is held")
    balance: Weight = Field(description="weight of the wealth balance")


class StabilitySignals(_Model):
    intercept: Weight = Field(description="the module's intercept")
    night: Weight = Field(description="weight of night-time activity")
    device_switches: Weight = Field(description="weight of device switches")
    volatility: Weight = Field(description="weight of spend volatility")
    dormant: Weight = Field(description="weight of dormancy")


class ResilienceSignals(_Model):
    debt_to_income: Weight = Field(description="weight of debt to income")
    debt_to_income_reference: Threshold = Field(
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
    slope: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] = Field(
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


class Lifecycle(_Model):
    """How the default hazard of a line varies with its months on book (seasoning).

    ``form: log_logistic`` (the default): the log-logistic hazard shape
    ``(t / scale)^(shape - 1) / (1 + (t / scale)^shape)``, which ramps up, peaks at
    ``scale x (shape - 1)^(1 / shape)`` months (shape > 1) and then declines;
    ``form: table``: one multiplier per month on book from 1 (the last one holds after);
    ``form: flat``: no seasoning. Every form is rescaled so its mean over months on book
    1..``normalise_months`` is 1, so ``risk.monthly_hazard`` keeps its meaning (the mean
    monthly hazard of a line over its first ``normalise_months`` months).
    """

    form: Literal["log_logistic", "table", "flat"] = "log_logistic"
    scale: Annotated[float, Field(gt=0.0, le=MAX_MONTHS)] = 12.0
    shape: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] = 3.0
    table: list[Annotated[float, Field(ge=0.0, le=MAX_FACTOR)]] | None = None
    normalise_months: Annotated[int, Field(gt=0, le=600)] = 36

    @model_validator(mode="after")
    def _table(self):
        if self.form == "table":
            if not self.table:
                raise ValueError("risk.lifecycle.form 'table' needs 'table': one multiplier "
                                 "per month on book from 1")
            if not any(v > 0 for v in self.table[:self.normalise_months]):
                raise ValueError("risk.lifecycle.table needs a positive multiplier in its "
                                 "first normalise_months months")
        elif self.table is not None:
            raise ValueError(f"risk.lifecycle.table is only read with form 'table' (form is "
                             f"'{self.form}')")
        return self


class Risk(_Model):
    """Latent risk: the truth the score sees only imperfectly; the monthly default hazard of
    a line is individual x lifecycle(months on book) x environment (``macro``)."""

    score_correlation: Annotated[float, Field(ge=-1.0, le=1.0)] = Field(
        description="correlation of latent creditworthiness with the score")
    monthly_hazard: Probability = Field(description="population mean monthly default hazard")
    dispersion: LogSd = Field(description="sd of the log hazard across users")
    auc_horizon_months: Months = Field(
        12, description=("horizon of the latent default probability the score's AUC is measured "
                         "against"))
    lifecycle: Lifecycle = Lifecycle()


class Reevaluation(_Model):
    every_months: Months = Field(
        default=3,
        description="months between two re-scorings of everyone")
    admit_new: bool = Field(
        default=True,
        description="newly eligible users join at the coverage the rollout has reached")
