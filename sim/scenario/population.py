"""Who is simulated: archetypes, regions, devices, OS, data sharing, account classes, how
users vary around their archetype and how their behaviour ages month to month."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    MAX_FACTOR,
    MAX_MEDIAN,
    MAX_MONTHS,
    MAX_SHAPE,
    MAX_USERS,
    MIN_SHARE,
    LogSd,
    Median,
    NonNegFloat,
    Probability,
    _Model,
    _Shared,
    _shared,
)
from sim.scenario.messages import _Located


class Archetype(_Shared):
    """A user archetype: medians and rates of its observable behaviour and its latent risk."""

    payments_per_month: Median
    monthly_spend: Median
    wealth_holder: Probability
    wealth_days: Median
    wealth_balance: Median
    credit_history_years: Annotated[float, Field(ge=0.0, le=MAX_MEDIAN)]
    contacts: Median
    social_quality: Probability
    income: Median
    debt_to_income: Annotated[float, Field(ge=0.0, le=MAX_MEDIAN)]
    class_iii: Probability
    utility_payer: Probability
    offline_share: Probability
    night_share: Probability
    spend_volatility: Median
    risk_shift: float = 0.0
    score_offset: float = 0.0
    tilts: dict[Literal["regions", "device_grades", "os", "data_sharing"],
                dict[str, Annotated[float, Field(gt=0.0, le=MAX_FACTOR)]]] = Field(
        default_factory=dict,
        description="odds of each category for this archetype relative to the others "
                    "(1 = no tilt); the population's shares still hold overall",
    )


    @field_validator("class_iii")
    @classmethod
    def _representable_share(cls, v):
        # the share is a normal quantile of 1 - share: closer to 0 than this, 1 - share is 1
        if 0.0 < v < MIN_SHARE:
            raise ValueError(f"a share of {v:g} is too small to simulate; allowed: 0, or "
                             f"{MIN_SHARE:g} to 1")
        return v


class Region(_Shared):
    open: bool = True
    limit_multiplier: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    score_offset: float = 0.0


class DeviceGrade(_Shared):
    score_offset: float = 0.0


class OperatingSystem(_Shared):
    score_offset: float = 0.0
    unknown_sources: Probability = 0.0
    unknown_sources_points: NonNegFloat = 0.0


class DataSharing(_Shared):
    score_offset: float = 0.0


#: Most bank cards a user is counted with (a mean above it would only be clipped).
MAX_BOUND_CARDS = 20


class AccountClass(_Model):
    """What an account verification class looks like (DOMAIN: class II vs class III)."""

    bound_cards: Annotated[float, Field(ge=0.0, le=MAX_BOUND_CARDS)]  # mean bound cards
    biometric: Probability
    credit_transactions: Probability


class Spread(_Model):
    """A lognormal quantity given by its median and the sd of its logarithm."""

    median: Median
    sigma: LogSd


#: Most real users one simulated user stands for (users x weight is the real population).
MAX_WEIGHT = 1e10
#: Highest mean device switches a month: switches are counted in int8 arrays (at most 127).
MAX_DEVICE_SWITCH_RATE = 30.0


class Variation(_Model):
    """How users of one archetype vary around its means (beyond ``log_spread``)."""

    social_quality_sd: LogSd
    offline_share_sd: LogSd
    credit_history_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)]  # gamma, mean 1
    debt_to_income_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)]
    night_share_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)]
    # an expired ID at the start expired 0..N-1 months ago (at most a century: months are
    # counted in int32 arrays, and a larger bound passed validation then crashed the draw)
    id_expired_max_months: Annotated[int, Field(gt=0, le=MAX_MONTHS)]
    account_age_max_months: Annotated[int, Field(gt=0, le=MAX_MONTHS)]
    # Gaussian-copula correlation of class III verification with payment activity and
    # wealth holding: users who bind three cards from different banks are the active ones.
    class_iii_activity: Annotated[float, Field(ge=0.0, le=0.99)] = 0.0


class PopulationSpec(_Model):
    users: Annotated[int, Field(gt=0, le=MAX_USERS)]
    weight: Annotated[float, Field(gt=0.0, le=MAX_WEIGHT)]
    archetypes: dict[str, Archetype]
    regions: dict[str, Region]
    device_grades: dict[str, DeviceGrade]
    os: dict[str, OperatingSystem]
    data_sharing: dict[str, DataSharing]
    account_classes: dict[Literal["II", "III"], AccountClass]
    account_age_months: Spread
    real_name_card: Probability
    past_default: Probability
    id_expired: Probability
    device_closed: Probability
    risky_social_graph: Probability
    dormant: Probability
    variation: Variation
    log_spread: LogSd = Field(
        0.5, description="sd of log of behaviour amounts around each archetype's median"
    )

    @field_validator("archetypes", "regions", "device_grades", "os", "data_sharing")
    @classmethod
    def _sum_to_one(cls, v, info):
        return _shared(v, info.field_name)

    @field_validator("account_classes")
    @classmethod
    def _both_classes(cls, v):
        missing = {"II", "III"} - set(v)
        if missing:
            raise ValueError(f"describe both account classes II and III; missing "
                             f"{sorted(missing)}")
        return v

    @field_validator("device_grades")
    @classmethod
    def _grades_ordered(cls, v):
        if len(v) > 127:
            raise ValueError("at most 127 device grades")
        return v

    @model_validator(mode="after")
    def _tilts_known(self):
        for name, arch in self.archetypes.items():
            for dim, odds in arch.tilts.items():
                allowed = list(getattr(self, dim))
                unknown = [k for k in odds if k not in allowed]
                if unknown:
                    raise _Located(f"population.archetypes.{name}.tilts.{dim}",
                                   f"unknown {dim} {unknown}; allowed: {allowed}")
        return self


class Behaviour(_Model):
    """Monthly ageing of behaviour between evaluations."""

    drift_sd: NonNegFloat
    dormancy_rate: Probability
    wake_rate: Probability
    awakened_months: Annotated[int, Field(gt=0, le=127)]  # stored as int8
    awakened_payment_boost: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)]
    id_expiry_rate: Probability
    id_renewal_rate: Probability
    # mean switches a month (Poisson); counted in int8 arrays, so bounded well below 127
    device_switch_rate: Annotated[float, Field(ge=0.0, le=MAX_DEVICE_SWITCH_RATE)]
