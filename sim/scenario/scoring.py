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

    min: Threshold
    points: Points = 0.0
    hard: bool = False


class Penalty(_Model):
    threshold: Threshold = 0.0
    points: Points


class Preconditions(_Model):
    min_account_age_months: Annotated[float, Field(ge=0.0, le=MAX_MONTHS)]
    require_real_name_card: bool = True
    require_class_iii: bool = True
    exclude_past_default: bool = True
    exclude_device_closed: bool = True
    exclude_risky_social_graph: bool = True
    exclude_expired_id_after_months: Annotated[float, Field(ge=0.0, le=MAX_MONTHS)] = 3


class OtherIndicators(_Model):
    """The many indicators not modelled one by one: a persistent per-user score component."""

    sd: Points
    persistence: Probability


class References(_Model):
    payments_per_month: Median
    monthly_spend: Median
    wealth_days: Median
    wealth_balance: Median
    credit_history_years: Median
    contacts: Median
    income: Median


class SpendingSignals(_Model):
    payments: Weight
    spend: Weight


class RepaymentSignals(_Model):
    credit_transactions: Weight
    utility_bills: Weight
    intercept: Weight


class SocialSignals(_Model):
    contacts: Weight
    quality: Weight
    quality_reference: Probability


class AssetSignals(_Model):
    days: Weight
    balance: Weight


class StabilitySignals(_Model):
    intercept: Weight
    night: Weight
    device_switches: Weight
    volatility: Weight
    dormant: Weight


class ResilienceSignals(_Model):
    debt_to_income: Weight
    debt_to_income_reference: Threshold


class Signals(_Model):
    """How each module combines its signals before the logistic (weights in logit units)."""

    spending_capacity: SpendingSignals
    repayment_trust: RepaymentSignals
    social_influence: SocialSignals
    assets: AssetSignals
    behavioural_stability: StabilitySignals
    risk_resilience: ResilienceSignals


class Scoring(_Model):
    weights: dict[str, Probability]
    slope: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)]
    signals: Signals
    references: References
    cutoff: float
    cutoffs: dict[Literal["payments_per_month", "wealth_days", "credit_history_years"], Cutoff]
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
    other_indicators: OtherIndicators
    preconditions: Preconditions

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

    score_correlation: Annotated[float, Field(ge=-1.0, le=1.0)]
    monthly_hazard: Probability
    dispersion: LogSd
    auc_horizon_months: Months = 12
    lifecycle: Lifecycle = Lifecycle()


class Reevaluation(_Model):
    every_months: Months = 3
    admit_new: bool = True
