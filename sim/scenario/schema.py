"""Scenario files: the validated, frozen description of one simulated rollout.

A scenario is a YAML file. It may ``extends: other.yaml`` (resolved relative to the file) and
override any key; the command line may override any existing key with ``--set a.b.c=value``.
The models below are the single source of truth for what a file may hold: unknown keys are
errors, shares must sum to 1, probabilities lie in [0, 1], dates must be in order. Every error
is raised as :class:`ScenarioError`, which names the file, the key path and what is allowed.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sim.errors import GreysimError

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]
PositiveInt = Annotated[int, Field(gt=0)]

SHARE_TOLERANCE = 1e-6
MODULES = (
    "spending_capacity",
    "repayment_trust",
    "social_influence",
    "assets",
    "behavioural_stability",
    "risk_resilience",
)


class ScenarioError(GreysimError, ValueError):
    """A scenario that cannot be loaded; ``str()`` is the one-paragraph message users see.

    ``source`` is the file the user loaded; ``file`` and ``line`` say where the offending key
    was written (another file when it came through ``extends``), ``via`` the command-line
    override that set it, if any.
    """

    def __init__(self, source: str, path: str, problem: str, line: int | None = None, *,
                 file: str | None = None, via: str | None = None):
        self.source, self.path, self.problem, self.line = source, path, problem, line
        self.file, self.via = file or source, via
        where = f"{self.file}:{line}" if line else self.file
        if self.file != source:
            where += f" (extended by {source})"
        key = f" at key '{path}'" if path else ""
        how = f" (set on the command line: {via})" if via else ""
        super().__init__(f"{where}{key}{how}: {problem}")


#: Categorical dimensions of a user, reported in the segment table in this order.
DIMENSIONS = ("archetype", "region", "account_class", "device_grade", "os", "data_sharing",
              "version")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True,
                              allow_inf_nan=False, validate_default=True)

    @field_validator("*", mode="after")
    @classmethod
    def _sorted_keys(cls, v):
        """Mappings in key order: segments are coded in mapping order, so listing regions or
        archetypes in another order must not draw another population from the same seed."""
        return dict(sorted(v.items(), key=lambda kv: str(kv[0]))) if isinstance(v, dict) else v


def _check_shares(shares: Mapping[str, float], what: str) -> None:
    total = sum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        names = ", ".join(f"{k}={v:g}" for k, v in shares.items())
        raise ValueError(f"{what} shares must sum to 1, got {total:.6g} ({names})")


class _Shared(_Model):
    share: Probability


def _shared(mapping: Mapping[str, _Shared], what: str) -> Mapping[str, _Shared]:
    if not mapping:
        raise ValueError(f"{what} needs at least one entry")
    _check_shares({k: v.share for k, v in mapping.items()}, what)
    return mapping


# --------------------------------------------------------------------------- population


class Archetype(_Shared):
    """A user archetype: medians and rates of its observable behaviour and its latent risk."""

    payments_per_month: PositiveFloat
    monthly_spend: PositiveFloat
    wealth_holder: Probability
    wealth_days: PositiveFloat
    wealth_balance: PositiveFloat
    credit_history_years: NonNegFloat
    contacts: PositiveFloat
    social_quality: Probability
    income: PositiveFloat
    debt_to_income: NonNegFloat
    class_iii: Probability
    utility_payer: Probability
    offline_share: Probability
    night_share: Probability
    spend_volatility: PositiveFloat
    risk_shift: float = 0.0
    score_offset: float = 0.0
    tilts: dict[Literal["regions", "device_grades", "os", "data_sharing"],
                dict[str, PositiveFloat]] = Field(
        default_factory=dict,
        description="odds of each category for this archetype relative to the others "
                    "(1 = no tilt); the population's shares still hold overall",
    )


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

    median: PositiveFloat
    sigma: NonNegFloat


class Variation(_Model):
    """How users of one archetype vary around its means (beyond ``log_spread``)."""

    social_quality_sd: NonNegFloat
    offline_share_sd: NonNegFloat
    credit_history_shape: PositiveFloat  # gamma shape of the multiplier (mean 1)
    debt_to_income_shape: PositiveFloat
    night_share_shape: PositiveFloat
    id_expired_max_months: PositiveInt  # an expired ID at the start expired 0..N-1 months ago
    account_age_max_months: PositiveInt
    # Gaussian-copula correlation of class III verification with payment activity and
    # wealth holding: users who bind three cards from different banks are the active ones.
    class_iii_activity: Annotated[float, Field(ge=0.0, le=0.99)] = 0.0


class PopulationSpec(_Model):
    users: PositiveInt
    weight: PositiveFloat
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
    log_spread: NonNegFloat = Field(
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
    awakened_payment_boost: PositiveFloat
    id_expiry_rate: Probability
    id_renewal_rate: Probability
    device_switch_rate: NonNegFloat


# --------------------------------------------------------------------------- scoring


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


class Risk(_Model):
    """Latent risk: the truth the score sees only imperfectly."""

    score_correlation: Annotated[float, Field(ge=-1.0, le=1.0)]
    monthly_hazard: Probability
    dispersion: NonNegFloat
    auc_horizon_months: PositiveInt = 12


# --------------------------------------------------------------------------- release


class ClientVersion(_Model):
    name: str
    released: dt.date
    share: Probability = 0.0
    visible: Probability
    features: Literal["none", "entry_only", "basic", "full"] = "full"


class Release(_Model):
    versions: list[ClientVersion]
    adoption_half_life_weeks: PositiveFloat
    laggards: Probability

    @field_validator("versions")
    @classmethod
    def _ordered(cls, v):
        if not v:
            raise ValueError("at least one client version is needed")
        dates = [x.released for x in v]
        if dates != sorted(dates):
            raise ValueError("versions must be listed oldest first (by 'released')")
        names = [x.name for x in v]
        if len(set(names)) != len(names):
            raise ValueError("version names must be unique")
        return v


class Window(_Model):
    name: str = ""
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _order(self):
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class PolicyChange(_Model):
    date: dt.date
    cutoff: float


class Calendar(_Model):
    holidays: list[Window] = []
    policy_changes: list[PolicyChange] = []


BANDABLE = ("account_age_months", "credit_history_years", "payments_per_month", "monthly_spend",
            "wealth_days", "wealth_balance", "spend_volatility", "offline_share", "night_share",
            "social_quality", "income", "debt_to_income", "contacts")


class Reporting(_Model):
    """How continuous attributes are banded into segments (upper-open bands, edges rising)."""

    bands: dict[str, list[float]] = {
        "account_age_months": [6, 24, 60],
        "credit_history_years": [1, 3, 5],
        "payments_per_month": [9, 15, 28],
        "wealth_days": [1, 90, 180],
        "spend_volatility": [1.0, 2.0],
        "offline_share": [0.35, 0.6],
        "social_quality": [0.3, 0.5],
        "income": [5000, 10000, 20000],
    }

    @field_validator("bands")
    @classmethod
    def _bands(cls, v):
        for name, edges in v.items():
            if name not in BANDABLE:
                raise ValueError(f"cannot band '{name}'; allowed: {list(BANDABLE)}")
            if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                raise ValueError(f"band edges of '{name}' must be a rising, non-empty list")
        return v

    #: Pairs of categorical dimensions cross-tabulated in the segment table (dimension
    #: ``"a x b"``, value ``"<a value> x <b value>"``), drawn as access-rate heat maps.
    crosses: list[tuple[str, str]] = [("archetype", "region"), ("version", "device_grade")]
    #: The planner's coverage target (share of the population invited), marked on the charts.
    target_coverage: float | None = Field(default=None, gt=0, le=1)

    @field_validator("crosses")
    @classmethod
    def _crosses(cls, v):
        for pair in v:
            for name in pair:
                if name not in DIMENSIONS:
                    raise ValueError(f"cannot cross '{name}'; allowed: {list(DIMENSIONS)}")
            if pair[0] == pair[1]:
                raise ValueError(f"cannot cross '{pair[0]}' with itself")
        return v


class Reevaluation(_Model):
    every_months: PositiveInt = 3
    admit_new: bool = True


# --------------------------------------------------------------------------- rollout


class Batch(_Model):
    """A batch: ``count`` real users, or ``share`` of the eligible, not-yet-invited pool."""

    count: Annotated[float, Field(gt=0)] | None = None
    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.count is None) == (self.share is None):
            raise ValueError("a batch gives exactly one of 'count' (real users) or 'share'")
        return self


class RampStep(_Model):
    percent: Annotated[float, Field(gt=0.0, le=100.0)]
    days: PositiveInt


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

    name: str
    metric: Literal["vintage_dpd30", "capital_use"]
    threshold: NonNegFloat
    months_on_book: PositiveInt = 3
    min_accounts: NonNegFloat = 0.0
    on_fail: Literal["halt", "shrink", "pause"] = "halt"
    shrink_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    grow_factor: Annotated[float, Field(ge=1.0)] = 1.0
    max_factor: Annotated[float, Field(ge=1.0)] = 4.0
    dry_run: bool = False


def _unique_gates(gates: list[Gate]) -> list[Gate]:
    names = [g.name for g in gates]
    if len(set(names)) != len(names):
        raise ValueError(f"gate names must be unique, got {names}")
    return gates


class Holdout(_Model):
    """A random ``share`` of the users whose only failing is a score less than ``margin``
    points under the cut-off, invited anyway with each batch and flagged, so that the default
    rate below the cut-off is observed."""

    share: Annotated[float, Field(gt=0.0, le=1.0)]
    margin: PositiveFloat
    salt: str | None = None


class Phase(_Model):
    name: str
    start: dt.date
    cadence_days: PositiveInt = 14
    batch: Batch | None = None
    ramp: list[RampStep] | None = None
    ordering: Literal["tier", "score", "random"] = "tier"
    min_version: str | None = None
    regions: list[str] | None = None
    holiday_multiplier: NonNegFloat = 1.0
    min_score: float | None = None
    salt: str | None = None
    gates: list[Gate] = []

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
    name: str
    phases: list[Phase]
    freeze: list[Window] = []
    value_weights: dict[str, Probability] = {"spending_capacity": 0.6, "assets": 0.4}
    gates: list[Gate] = []
    holdout: Holdout | None = None

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

    rollout: Rollout


class AB(_Model):
    """Arms inside one population: users split by a stable hash of user id and ``salt``."""

    salt: str
    arms: dict[str, Arm]
    min_arm_accounts: NonNegFloat = Field(
        2500, description="an arm with fewer invited accounts is flagged as too small to measure")
    srm_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001

    @field_validator("arms")
    @classmethod
    def _arms(cls, v):
        if len(v) < 2:
            raise ValueError("an A/B test needs at least two arms")
        return _shared(v, "arm")


# --------------------------------------------------------------------------- credit


class MacroShock(Window):
    """A macro shock: default hazard times ``hazard_multiplier`` (cures divided by it)."""

    hazard_multiplier: PositiveFloat


class Macro(_Model):
    shocks: list[MacroShock] = []


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
    amount: PositiveFloat | None = None
    income_share: PositiveFloat | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.amount is None and self.income_share is None:
            raise ValueError("a cap gives 'amount', 'income_share' or both")
        return self


class Limits(_Model):
    first_min: PositiveFloat
    first_max: PositiveFloat
    round_to: PositiveFloat = 100.0
    raise_after_months: Annotated[int, Field(gt=0, le=120)]
    raise_on_time_share: Probability
    raise_factor: Annotated[float, Field(ge=1.0)]
    minimum_streak_cancels_raise: PositiveInt = 3
    freeze_days: Annotated[int, Field(ge=0)]
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
    instalment_months: PositiveInt

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
    cure_elasticity: NonNegFloat = 0.5


class Loss(_Model):
    lgd: Probability
    ccf: Probability
    charge_off_dpd: Annotated[int, Field(ge=90)]
    lifetime_months: PositiveInt
    funding_rate: NonNegFloat


class ScoreEffects(_Model):
    overdue_points: NonNegFloat
    early_repayment_points: NonNegFloat
    floor: float
    ceiling: float


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
    vintage_maturity_months: PositiveInt = 12


class Capital(_Model):
    """Total outstanding may not exceed ``equity x max_leverage`` (no cap when null)."""

    equity: PositiveFloat | None = None
    max_leverage: PositiveFloat | None = None

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
    fraudster_rate_multiplier: Annotated[float, Field(ge=1.0)]
    fraudster_r3: Probability
    r1_hidden_days: PositiveInt
    appeal_rate: Probability
    review_success: Probability
    max_reviews_per_year: Annotated[int, Field(ge=0)]


# --------------------------------------------------------------------------- scenario


class Scenario(_Model):
    """One rollout to simulate: population, score, release, calendar and strategy."""

    name: str
    description: str = ""
    start: dt.date
    quarters: PositiveInt
    seed: Annotated[int, Field(ge=0)]
    population: PopulationSpec
    behaviour: Behaviour
    scoring: Scoring
    risk: Risk
    release: Release
    calendar: Calendar = Calendar()
    reevaluation: Reevaluation = Reevaluation()
    rollout: Rollout
    credit: Credit
    macro: Macro = Macro()
    capital: Capital = Capital()
    fraud: Fraud
    reporting: Reporting = Reporting()
    ab: AB | None = None

    @field_validator("start")
    @classmethod
    def _month_start(cls, v):
        if v.day != 1:
            raise ValueError("start must be the first day of a month (metrics are monthly)")
        return v

    @property
    def months(self) -> int:
        return 3 * self.quarters

    @property
    def end(self) -> dt.date:
        """First day after the horizon."""
        return add_months(self.start, self.months)

    @model_validator(mode="after")
    def _cross_checks(self):
        try:
            end = self.end
        except (ValueError, OverflowError):
            raise _Located("quarters", f"{self.quarters} quarters from {self.start} end after "
                           "the year 9999; allowed: a horizon that ends by 9999") from None
        versions = self.release.versions
        names = [v.name for v in versions]
        live = [v for v in versions if v.released <= self.start]
        if not live:
            raise _Located("release.versions", "no client version is released by the start date")
        late = [v.name for v in versions if v.released > self.start and v.share > 0]
        if late:
            raise _Located(
                "release.versions",
                f"versions released after the start cannot have a starting share: {late}",
            )
        _located(lambda: _check_shares({v.name: v.share for v in live}, "client version"),
                 "release.versions")
        regions = self.population.regions
        for i, phase in enumerate(self.rollout.phases):
            where = f"rollout.phases.{i}"
            if not (self.start <= phase.start < end):
                raise _Located(
                    f"{where}.start",
                    f"phase starts {phase.start}, outside the horizon {self.start} to {end}",
                )
            if phase.min_version is not None and phase.min_version not in names:
                raise _Located(f"{where}.min_version",
                               f"unknown version '{phase.min_version}'; allowed: {names}")
            _check_release_reach(self, i, end)
            for r in phase.regions or []:
                if r not in regions:
                    raise _Located(f"{where}.regions",
                                   f"unknown region '{r}'; allowed: {list(regions)}")
            if phase.batch and phase.batch.count is not None:
                real = self.population.users * self.population.weight
                if phase.batch.count > real:
                    raise _Located(
                        f"{where}.batch.count",
                        f"batch of {phase.batch.count:g} real users is larger than the "
                        f"population ({real:g} = users x weight)",
                    )
        archetypes = list(self.population.archetypes)
        activation = list(self.credit.activation)
        if sorted(activation) != sorted(archetypes):
            raise _Located("credit.activation",
                           f"give one activation probability per archetype {archetypes}, "
                           f"got {activation}")
        if (self.capital.equity is None) != (self.capital.max_leverage is None):
            raise _Located("capital", "give both 'equity' and 'max_leverage', or neither")
        for i, change in enumerate(self.calendar.policy_changes):
            if not (self.start <= change.date < end):
                raise _Located(f"calendar.policy_changes.{i}.date",
                               f"{change.date} is outside the horizon {self.start} to {end}")
        self._check_strategies()
        _check_batch_capacity(self, end)
        return self

    def strategies(self) -> dict[str, Rollout]:
        """The strategy of each arm, by arm name; one arm ``all`` without an ``ab`` section."""
        if self.ab is None:
            return {"all": self.rollout}
        return {name: arm.rollout for name, arm in self.ab.arms.items()}

    def _check_strategies(self) -> None:
        """Cross-checks of the A/B arms' strategies and of every gate."""
        arms = self.ab.arms.items() if self.ab is not None else ()
        for name, arm in arms:
            where = f"ab.arms.{name}.rollout"
            if arm.rollout.value_weights != self.rollout.value_weights:
                raise _Located(f"{where}.value_weights",
                               "the value score is the bank's, shared by every arm; set "
                               "rollout.value_weights instead")
            self._check_phases(arm.rollout, where)
        plans = [("rollout", self.rollout), *((f"ab.arms.{n}.rollout", a.rollout)
                                              for n, a in arms)]
        for where, plan in plans:
            gates = [(f"{where}.gates.{i}", g) for i, g in enumerate(plan.gates)]
            gates += [(f"{where}.phases.{i}.gates.{j}", g) for i, p in enumerate(plan.phases)
                      for j, g in enumerate(p.gates)]
            for path, gate in gates:
                if gate.metric == "capital_use" and self.capital.max_outstanding is None:
                    raise _Located(f"{path}.metric", "a capital_use gate needs a capital "
                                   "limit (capital.equity and capital.max_leverage)")

    def _check_phases(self, plan: Rollout, where: str) -> None:
        """Phase checks of an arm's strategy (the scenario's own are checked above)."""
        end = self.end
        names = [v.name for v in self.release.versions]
        for i, phase in enumerate(plan.phases):
            here = f"{where}.phases.{i}"
            if not (self.start <= phase.start < end):
                raise _Located(f"{here}.start", f"phase starts {phase.start}, outside the "
                               f"horizon {self.start} to {end}")
            if phase.min_version is not None and phase.min_version not in names:
                raise _Located(f"{here}.min_version",
                               f"unknown version '{phase.min_version}'; allowed: {names}")
            for r in phase.regions or []:
                if r not in self.population.regions:
                    raise _Located(f"{here}.regions", f"unknown region '{r}'; allowed: "
                                   f"{list(self.population.regions)}")
            real = self.population.users * self.population.weight
            if phase.batch and phase.batch.count is not None and phase.batch.count > real:
                raise _Located(f"{here}.batch.count", f"batch of {phase.batch.count:g} real "
                               f"users is larger than the population ({real:g})")

    def digest(self) -> str:
        """SHA-256 of the resolved scenario, independent of key order in the files."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


#: Batches are numbered in an int16 array (``Population.vintage``).
MAX_BATCHES = 32767


def _check_release_reach(sc: Scenario, i: int, end: dt.date) -> None:
    """A phase that needs a client version released only after the phase is over reaches no
    one: the release and the phase are out of order."""
    phases = sc.rollout.phases
    phase = phases[i]
    if phase.min_version is None:
        return
    version = next(v for v in sc.release.versions if v.name == phase.min_version)
    later = [p.start for p in phases[i + 1:] if p.start > phase.start]
    over = min(later) if later else end
    if version.released >= over:
        raise _Located(
            f"rollout.phases.{i}.min_version",
            f"phase '{phase.name}' runs {phase.start} to {over} but needs client "
            f"'{version.name}', released only on {version.released}, so it reaches no one; "
            f"allowed: a version released before {over}",
        )


def _check_batch_capacity(sc: Scenario, end: dt.date) -> None:
    days = (end - sc.start).days
    sends = sum(days // p.cadence_days + 1 for p in sc.rollout.phases) + sc.months
    if sends > MAX_BATCHES:
        raise _Located("quarters", f"{sc.quarters} quarters with these cadences give up to "
                       f"{sends:,} batches; allowed: at most {MAX_BATCHES:,} (shorten the horizon "
                       "or lengthen rollout.phases.*.cadence_days)")


class _Located(ValueError):
    """A cross-field error that knows its key path (pydantic only knows the model's)."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


def _located(check, path: str) -> None:
    try:
        check()
    except ValueError as exc:
        raise _Located(path, str(exc)) from None


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day-of-month ``months`` later (``day`` must be a first of month)."""
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, day.day)


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe YAML (no object-building tags) that leaves dates as text for pydantic to parse,
    so a bad date is reported with its key path like any other bad value."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


Key = tuple[str, ...]

#: A scenario has a few hundred values; a file expanding to far more is an alias bomb.
MAX_VALUES = 100_000


@dataclass(frozen=True)
class Origin:
    """Where a key's value was written: a file and line, or a command-line override."""

    file: str
    line: int | None = None
    via: str | None = None


def load(path: str | Path, overrides: Iterable[str] = (), users: int | None = None) -> Scenario:
    """Load, resolve ``extends``, apply ``--set`` overrides and validate a scenario file.

    ``users`` simulates that many users standing for the same real population (the weight
    scales with it), so a smaller or larger sample models the same market: absolute figures
    (batch sizes in accounts, the capital limit) bind alike. This is what ``--users`` does.
    """
    path = Path(path)
    overrides = list(overrides)
    if users is not None and (isinstance(users, bool) or not isinstance(users, Integral)
                              or users < 1):
        raise ScenarioError(str(path), "population.users",
                            f"simulated users must be a whole number of at least 1, got {users!r}")
    raw, origins = _resolve(path, ())
    for item in overrides:
        _apply_override(raw, item, str(path), origins)
    scenario = validate(raw, str(path), origins)
    if users is None:
        return scenario
    pop = scenario.population
    weight = float(pop.users * pop.weight / users)
    return load(path, [*overrides, f"population.users={int(users)}",
                       f"population.weight={weight!r}"])


def validate(raw: Any, source: str = "<scenario>",
             origins: Mapping[Key, Origin] | None = None) -> Scenario:
    """Validate an already-parsed mapping, converting every failure into a ScenarioError.

    ``origins`` maps key paths to where they were written, so an error can name the line.
    """
    if not isinstance(raw, dict):
        raise ScenarioError(source, "", f"a scenario is a mapping of keys, got {_kind(raw)}")
    raw = _merge_arms({k: v for k, v in raw.items() if k != "extends"})
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        path, problem = _from_validation(exc)
    except _Located as exc:
        path, problem = exc.path, exc.problem
    raise _placed(source, path, problem, origins or {}) from None


def _merge_arms(raw: dict) -> dict:
    """Give every A/B arm the scenario's ``rollout`` with the arm's own keys merged over it."""
    arms = raw.get("ab", {}).get("arms") if isinstance(raw.get("ab"), dict) else None
    base = raw.get("rollout")
    if not isinstance(arms, dict) or not isinstance(base, dict):
        return raw
    raw = copy.deepcopy(raw)
    for arm in raw["ab"]["arms"].values():
        if isinstance(arm, dict) and isinstance(arm.get("rollout", {}), dict):
            arm["rollout"] = _merge(base, arm.get("rollout", {}))
    return raw


def _placed(source: str, path: str, problem: str, origins: Mapping[Key, Origin]
            ) -> ScenarioError:
    """The error for ``path``, placed at the line that wrote it (or its nearest parent)."""
    parts = tuple(path.split(".")) if path else ()
    below = [o.via for k, o in origins.items() if o.via and k[: len(parts)] == parts]
    for n in range(len(parts), 0, -1):
        origin = origins.get(parts[:n])
        if origin is not None:
            return ScenarioError(source, path, problem, origin.line, file=origin.file,
                                 via=origin.via or (below[0] if below else None))
    return ScenarioError(source, path, problem, via=below[0] if below else None)


def _read(path: Path) -> tuple[Any, dict[Key, Origin]]:
    """Parse one file safely; compose its node tree once to learn the line of every key."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read the file: {exc.strerror}") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        origins: dict[Key, Origin] = {}
        _walk(node, (), str(path), origins)
        return loader.construct_document(node), origins
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        where = f" at column {mark.column + 1}" if mark is not None else ""
        extra = f" ({context})" if context else ""
        raise ScenarioError(str(path), "", f"not valid YAML{where}: {problem}{extra}; "
                            "allowed: plain YAML mappings, lists and values, no tags",
                            line) from None
    except RecursionError:
        raise ScenarioError(str(path), "", "the YAML nests too deeply",
                            loader.get_mark().line + 1) from None
    finally:
        loader.dispose()


def _walk(node: yaml.Node, key: Key, file: str, out: dict[Key, Origin],
          inside: frozenset[int] = frozenset()) -> None:
    """Record the line of every key path under ``node``; refuse duplicate keys, aliases that
    contain themselves and alias bombs."""
    line = node.start_mark.line + 1
    if id(node) in inside:
        raise ScenarioError(file, ".".join(key), "this YAML alias refers to a node that "
                            "contains it (an endless structure)", line)
    if len(out) > MAX_VALUES:
        raise ScenarioError(file, ".".join(key), f"the file expands to more than "
                            f"{MAX_VALUES:,} values (through YAML aliases); a scenario is far "
                            "smaller", line)
    inside = inside | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*key, str(i))] = Origin(file, item.start_mark.line + 1)
            _walk(item, (*key, str(i)), file, out, inside)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            if k.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges into this mapping
                for merged in v.value if isinstance(v, yaml.SequenceNode) else [v]:
                    _walk(merged, key, file, out, inside)
                continue
            if not isinstance(k, yaml.ScalarNode):
                continue  # the constructor reports unhashable keys with their line
            line = k.start_mark.line + 1
            path = (*key, str(k.value))
            if k.value in seen:
                raise ScenarioError(
                    file, ".".join(path), f"this key appears twice (lines {seen[k.value]} and "
                    f"{line}); YAML would silently keep only the last, so remove one", line)
            seen[k.value] = line
            out[path] = Origin(file, line)
            _walk(v, path, file, out, inside)


def _resolve(path: Path, chain: tuple[Path, ...]) -> tuple[dict, dict[Key, Origin]]:
    """The file's mapping with its ``extends`` chain merged in, and where each key came from."""
    if not chain and not path.is_file():
        raise ScenarioError(str(path), "", f"scenario file '{path}' does not exist")
    resolved = path.resolve()
    raw, origins = _read(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(str(path), "", f"a scenario is a mapping of keys, got {_kind(raw)}",
                            1)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, origins
    line = origins.get(("extends",), Origin(str(path))).line
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(str(path), "extends", "'extends' names one scenario file (got "
                            f"{json.dumps(parent, default=str)[:80]})", line)
    target = path.parent / parent
    if not target.is_file():
        raise ScenarioError(str(path), "extends", f"the extended file '{parent}' does not exist "
                            f"(looked for {target})", line)
    if target.resolve() in (*chain, resolved):
        loop = " -> ".join(str(p) for p in (*chain, resolved, target.resolve()))
        raise ScenarioError(str(path), "extends", f"'extends' loops: {loop}; allowed: a chain "
                            "of files that ends in one without 'extends'", line)
    base, base_origins = _resolve(target, (*chain, resolved))
    return _merge(base, raw), _merge_origins(base_origins, base, origins, raw)


def _merge_origins(base_origins: dict[Key, Origin], base: dict,
                   over_origins: dict[Key, Origin], over: dict) -> dict[Key, Origin]:
    """Origins after ``_merge(base, over)``: the override's keys win, and a list or scalar in
    the override replaces the base's whole subtree (only mappings merge)."""
    out = dict(base_origins)

    def drop_under(prefix: Key) -> None:
        n = len(prefix)
        for key in [k for k in out if len(k) > n and k[:n] == prefix]:
            del out[key]

    def visit(b: Any, o: dict, prefix: Key) -> None:
        for key, value in o.items():
            here = (*prefix, str(key))
            below = b.get(key) if isinstance(b, dict) else None
            if isinstance(value, dict) and isinstance(below, dict):
                visit(below, value, here)
            else:
                drop_under(here)

    visit(base, over, ())
    out.update(over_origins)
    return out


def _merge(base: dict, override: dict) -> dict:
    """Deep-merge mappings; lists and scalars in ``override`` replace the base's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _apply_override(raw: dict, item: str, source: str,
                    origins: dict[Key, Origin] | None = None) -> None:
    """Set one existing key from ``key.path=value``; record it in ``origins``."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(source, key, f"--set takes key.path=value, got '{item}'")
    try:
        value = parse_yaml(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    model: Any = Scenario
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(source, here,
                                    f"--set: no list item {part}; the list has {len(node)} items")
            index = int(part)
            if last:
                node[index] = value
                _overridden(origins, parts, source, item)
                return
            node, model = node[index], _item_model(model)
            continue
        if not isinstance(node, dict):
            raise ScenarioError(source, here, "--set: this key path does not exist")
        fields = _fields(model)
        known = set(node) | set(fields or ())
        if part not in known:
            hint = difflib.get_close_matches(part, sorted(known), n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ScenarioError(source, here, f"--set: this key does not exist{extra}")
        if last:
            node[part] = value
            _overridden(origins, parts, source, item)
            return
        if part not in node:
            node[part] = _default_of(fields, part)
        node, model = node[part], _child_model(model, part)


def _default_of(fields: dict | None, name: str) -> Any:
    """The raw (YAML-like) form of a field's default, so overriding one key keeps the rest."""
    default = fields[name].default if fields and name in fields else None
    if isinstance(default, BaseModel):
        return default.model_dump(mode="json")
    if isinstance(default, dict | list):
        return copy.deepcopy(default)
    return {}


def _overridden(origins: dict[Key, Origin] | None, parts: list[str], source: str,
                item: str) -> None:
    if origins is None:
        return
    key = tuple(parts)
    for k in [k for k in origins if k[: len(key)] == key]:
        del origins[k]
    origins[key] = Origin(source, None, item.strip())


def _fields(model: Any) -> dict | None:
    return getattr(model, "model_fields", None)


def _child_model(model: Any, name: str) -> Any:
    fields = _fields(model)
    if not fields or name not in fields:
        return _item_model(model)
    return _unwrap(fields[name].annotation)


def _item_model(model: Any) -> Any:
    args = getattr(model, "__args__", ())
    return _unwrap(args[-1]) if args else None


def _unwrap(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    origin = getattr(annotation, "__origin__", None)
    if origin is None and len(args) == 1:
        return _unwrap(args[0])
    return annotation


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


#: pydantic's wording for a section given as something else than a mapping.
_MAPPING_TYPES = ("model_type", "model_attributes_type", "dict_type")


def _from_validation(exc: ValidationError) -> tuple[str, str]:
    """The key path and problem of the first validation error, in the user's terms."""
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]
           if not str(p).startswith(("function-", "literal[")) and str(p) != "[key]"]
    path = ".".join(loc)
    kind = err["type"]
    located = err.get("ctx", {}).get("error")
    if isinstance(located, _Located):
        return located.path, located.problem
    if kind == "extra_forbidden":
        model = Scenario
        for part in loc[:-1]:
            model = _child_model(model, part) if not part.isdigit() else _item_model(model)
        allowed = sorted(_fields(model) or ())
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        problem = f"unknown key '{loc[-1]}'"
        if hint:
            problem += f"; did you mean '{hint[0]}'?"
        if allowed:
            problem += f" Allowed here: {', '.join(allowed)}."
        return path, problem
    if kind == "missing":
        return path, "this key is required but missing"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if kind in _MAPPING_TYPES:
        msg = "Input should be a mapping of keys"
    if isinstance(value, dict | list):
        return path, msg
    return path, f"{msg} (got {json.dumps(value, default=str)[:80]})"
