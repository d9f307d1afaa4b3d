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

    payments_per_month: Median = Field(description="median payments a month")
    monthly_spend: Median = Field(description="median monthly spend, CNY")
    wealth_holder: Probability = Field(description="share holding wealth products")
    wealth_days: Median = Field(description="median days wealth is held")
    wealth_balance: Median = Field(description="median wealth balance, CNY")
    credit_history_years: Annotated[float, Field(ge=0.0, le=MAX_MEDIAN)] = Field(
        description="median years of credit history")
    contacts: Median = Field(description="median contacts")
    social_quality: Probability = Field(description="mean quality of the social graph (0-1)")
    income: Median = Field(description="median monthly income, CNY")
    debt_to_income: Annotated[float, Field(ge=0.0, le=MAX_MEDIAN)] = Field(
        description="mean debt-to-income ratio")
    class_iii: Probability = Field(description="share of class III accounts")
    utility_payer: Probability = Field(description="share paying utility bills")
    offline_share: Probability = Field(description="mean share of offline payments")
    night_share: Probability = Field(description="mean share of night-time activity")
    spend_volatility: Median = Field(description="median monthly spend volatility")
    risk_shift: float = Field(default=0.0, description="shift of the latent log hazard")
    score_offset: float = Field(default=0.0, description="score points added (fitted)")
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
    """A region tier: whether it is open, its limits and who its local rules exclude."""

    open: bool = Field(True, description="whether the product is open there")
    limit_multiplier: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        1.0, description="first limits multiplied by this")
    restricted: Probability = Field(
        0.0, description=("share of its users in excluded industries or anti-fraud hot-spots "
                          "(DOMAIN: new tier-1 'some industries excluded', county fraud "
                          "hot-spots restricted): never eligible, reason region_restricted"))
    score_offset: float = Field(0.0, description=(
        "score points added for living there (a what-if policy lever; the baseline has none "
        "and calibration does not free it: region effects come from restricted and from who "
        "lives there)"))


class DeviceGrade(_Shared):
    """A device security grade (DOMAIN: > 120 checks give a security score and a grade)."""

    score_offset: float = Field(0.0, description="score points added (fitted)")
    security_score: Annotated[float, Field(ge=0.0, le=100.0)] | None = Field(None, description=(
        "typical device security score of the grade (DOMAIN: A 90+, B 70-89, C < 70); when "
        "every grade gives one, a phone's lost security points (os.*.unknown_sources_points) "
        "cost the score offset of a device that much less secure, read along the grades"))


class OperatingSystem(_Shared):
    """A phone operating system; its access effect comes from the device security check."""

    score_offset: float = Field(0.0, description=(
        "score points added (a what-if lever; the baseline has none: the iOS advantage is "
        "the Android unknown-sources deduction)"))
    unknown_sources: Probability = Field(
        0.0, description="share of its phones allowing apps from unknown sources")
    unknown_sources_points: Annotated[float, Field(ge=0.0, le=100.0)] = Field(
        0.0, description=("device security points lost by a phone allowing unknown sources "
                          "(DOMAIN: 15-20); converted to score points through the device "
                          "grades' security_score and score_offset, or taken as score points "
                          "when a grade has no security_score"))


class DataSharing(_Shared):
    score_offset: float = Field(0.0, description="score points added (fitted)")


#: Most bank cards a user is counted with (a mean above it would only be clipped).
MAX_BOUND_CARDS = 20


class AccountClass(_Model):
    """What an account verification class looks like (DOMAIN: class II vs class III)."""

    bound_cards: Annotated[float, Field(ge=0.0, le=MAX_BOUND_CARDS)] = Field(
        description="mean bound bank cards")  # mean bound cards
    biometric: Probability = Field(description="share with biometrics")
    credit_transactions: Probability = Field(description="share with credit transactions")


class Spread(_Model):
    """A lognormal quantity given by its median and the sd of its logarithm."""

    median: Median = Field(description="median")
    sigma: LogSd = Field(description="sd of the log")


#: Most real users one simulated user stands for (users x weight is the real population).
MAX_WEIGHT = 1e10
#: Highest mean device switches a month: switches are counted in int8 arrays (at most 127).
MAX_DEVICE_SWITCH_RATE = 30.0


class Variation(_Model):
    """How users of one archetype vary around its means (beyond ``log_spread``)."""

    social_quality_sd: LogSd = Field(
        description="sd of social-graph quality around the archetype's mean")
    offline_share_sd: LogSd = Field(
        description="sd of the offline payment share around the archetype's mean")
    credit_history_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)] = Field(
        description="gamma shape of the credit-history multiplier (mean 1)")  # gamma, mean 1
    debt_to_income_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)] = Field(
        description="gamma shape of the debt-to-income multiplier (mean 1)")
    night_share_shape: Annotated[float, Field(gt=0.0, le=MAX_SHAPE)] = Field(
        description="beta shape of night-time activity")
    # an expired ID at the start expired 0..N-1 months ago (at most a century: months are
    # counted in int32 arrays, and a larger bound passed validation then crashed the draw)
    id_expired_max_months: Annotated[int, Field(gt=0, le=MAX_MONTHS)] = Field(
        description="longest time an ID has been expired at the start")
    account_age_max_months: Annotated[int, Field(gt=0, le=MAX_MONTHS)] = Field(
        description="oldest account")
    # Gaussian-copula correlation of class III verification with payment activity and
    # wealth holding: users who bind three cards from different banks are the active ones.
    class_iii_activity: Annotated[float, Field(ge=0.0, le=0.99)] = Field(
        0.0, description=("Gaussian-copula correlation of class III verification with payments and"
                          " wealth holding"))


class PopulationSpec(_Model):
    users: Annotated[int, Field(gt=0, le=MAX_USERS)] = Field(
        description="simulated users (--users N keeps the real population: the weight scales)")
    weight: Annotated[float, Field(gt=0.0, le=MAX_WEIGHT)] = Field(
        description="real users each simulated user stands for")
    archetypes: dict[str, Archetype] = Field(description="user archetypes by name")
    regions: dict[str, Region] = Field(description="region tiers by name")
    device_grades: dict[str, DeviceGrade] = Field(description="device grades by name")
    os: dict[str, OperatingSystem] = Field(description="operating systems by name")
    data_sharing: dict[str, DataSharing] = Field(description="data-sharing levels by name")
    account_classes: dict[Literal["II", "III"], AccountClass] = Field(
        description="account classes II and III")
    account_age_months: Spread = Field(description="account age distribution")
    real_name_card: Probability = Field(description="share with real name and a bound card")
    past_default: Probability = Field(description="share with a past default")
    id_expired: Probability = Field(description="share with an expired ID")
    device_closed: Probability = Field(description="share on a closed device")
    risky_social_graph: Probability = Field(description="share with a risky social graph")
    dormant: Probability = Field(description="share of dormant accounts at the start")
    variation: Variation = Field(description="how users spread around their archetype's means")
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

    drift_sd: NonNegFloat = Field(
        description="monthly sd of the log-change of payments, spend and wealth held")
    dormancy_rate: Probability = Field(description="monthly chance an active account falls dormant")
    wake_rate: Probability = Field(
        description="monthly chance a dormant account wakes with a burst of payments")
    awakened_months: Annotated[int, Field(gt=0, le=127)] = Field(
        description="months the 'sleeping then awakened' pattern stays visible")  # stored as int8
    awakened_payment_boost: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] = Field(
        description="payments multiply by this on waking")
    id_expiry_rate: Probability = Field(description="monthly chance an ID card expires")
    id_renewal_rate: Probability = Field(description="monthly chance an expired ID card is renewed")
    # mean switches a month (Poisson); counted in int8 arrays, so bounded well below 127
    device_switch_rate: Annotated[float, Field(ge=0.0, le=MAX_DEVICE_SWITCH_RATE)] = Field(
        description="mean device switches a month")
