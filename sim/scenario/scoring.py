"""The access score: signals, modules and their weights, cut-offs, penalties, preconditions,
the latent risk the score sees imperfectly and the quarterly re-evaluation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

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

    min: NonNegFloat
    points: NonNegFloat = 0.0
    hard: bool = False


class Penalty(_Model):
    threshold: NonNegFloat = 0.0
    points: NonNegFloat


class Preconditions(_Model):
    min_account_age_months: NonNegFloat
    require_real_name_card: bool = True
    require_class_iii: bool = True
    exclude_past_default: bool = True
    exclude_device_closed: bool = True
    exclude_risky_social_graph: bool = True
    exclude_expired_id_after_months: NonNegFloat = 3


class OtherIndicators(_Model):
    """The many indicators not modelled one by one: a persistent per-user score component."""

    sd: NonNegFloat
    persistence: Probability


class References(_Model):
    payments_per_month: PositiveFloat
    monthly_spend: PositiveFloat
    wealth_days: PositiveFloat
    wealth_balance: PositiveFloat
    credit_history_years: PositiveFloat
    contacts: PositiveFloat
    income: PositiveFloat


class SpendingSignals(_Model):
    payments: float
    spend: float


class RepaymentSignals(_Model):
    credit_transactions: float
    utility_bills: float
    intercept: float


class SocialSignals(_Model):
    contacts: float
    quality: float
    quality_reference: Probability


class AssetSignals(_Model):
    days: float
    balance: float


class StabilitySignals(_Model):
    intercept: float
    night: float
    device_switches: float
    volatility: float
    dormant: float


class ResilienceSignals(_Model):
    debt_to_income: float
    debt_to_income_reference: NonNegFloat


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
    slope: PositiveFloat
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
    scale: PositiveFloat = 12.0
    shape: PositiveFloat = 3.0
    table: list[NonNegFloat] | None = None
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
    dispersion: NonNegFloat
    auc_horizon_months: PositiveInt = 12
    lifecycle: Lifecycle = Lifecycle()


class Reevaluation(_Model):
    every_months: PositiveInt = 3
    admit_new: bool = True
