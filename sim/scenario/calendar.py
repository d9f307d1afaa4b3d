"""Time: client releases and their adoption, holidays, policy changes, macro shocks, and how
the monthly tables are banded for reporting."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sim.scenario.base import (
    DIMENSIONS,
    MAX_CATEGORIES,
    MAX_FACTOR,
    MAX_MONTHS,
    Probability,
    _Model,
)

#: Most band edges of one attribute: band codes are int8 (edges + 1 bands, at most 127).
MAX_BAND_EDGES = MAX_CATEGORIES - 1


class ClientVersion(_Model):
    name: str = Field(description="version label, e.g. 8.0.40")
    released: dt.date = Field(description="release date")
    share: Probability = Field(
        0.0, description="share of users on this version at the start (0 for later releases)")
    visible: Probability = Field(
        description="chance the credit entry shows to an invited user on this version")
    features: Literal["none", "entry_only", "basic", "full"] = Field(
        "full", description="what of the product this version supports")


class Release(_Model):
    versions: list[ClientVersion] = Field(description="client versions, oldest first")
    adoption_half_life_weeks: Annotated[float, Field(gt=0.0, le=MAX_MONTHS * 5)] = Field(
        description="half of those not on the newest release upgrade within this")  # a century
    laggards: Probability = Field(description="share of users who never upgrade")

    @field_validator("versions")
    @classmethod
    def _ordered(cls, v):
        if not v:
            raise ValueError("at least one client version is needed")
        if len(v) > MAX_CATEGORIES:
            raise ValueError(f"{len(v)} client versions; allowed: at most {MAX_CATEGORIES} "
                             "(versions are coded in int8 arrays)")
        dates = [x.released for x in v]
        if dates != sorted(dates):
            raise ValueError("versions must be listed oldest first (by 'released')")
        names = [x.name for x in v]
        if len(set(names)) != len(names):
            raise ValueError("version names must be unique")
        return v


class Window(_Model):
    name: str = Field("", description="the window's name")
    start: dt.date = Field(description="first day")
    end: dt.date = Field(description="last day (inclusive)")

    @model_validator(mode="after")
    def _order(self):
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")
        return self

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class PolicyChange(_Model):
    date: dt.date = Field(description="date the new cut-off applies")
    cutoff: float = Field(description="the new score cut-off")


class Calendar(_Model):
    holidays: list[Window] = Field(
        [], description="holiday windows, inside which batches widen by holiday_multiplier")
    policy_changes: list[PolicyChange] = Field([], description="dated changes of the score cut-off")


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
            if len(edges) > MAX_BAND_EDGES:
                raise ValueError(f"{len(edges)} band edges of '{name}'; allowed: at most "
                                 f"{MAX_BAND_EDGES} (bands are coded in int8 arrays)")
        return v

    #: Pairs of categorical dimensions cross-tabulated in the segment table (dimension
    #: ``"a x b"``, value ``"<a value> x <b value>"``), drawn as access-rate heat maps.
    crosses: list[tuple[str, str]] = Field(
        [("archetype", "region"), ("version", "device_grade")], description=("pairs of dimensions "
                                                                             "reported cell by "
                                                                             "cell in "
                                                                             "segments.parquet "
                                                                             "(heat maps)"))
    #: The planner's coverage target (share of the population invited), marked on the charts.
    target_coverage: float | None = Field(
        default=None, gt=0, le=1,
        description="the planner's coverage target (share invited), marked on the charts")
    #: Months simulated after the rollout horizon with no new invitations (no batches, no
    #: re-evaluation admissions; behaviour, credit and fraud go on), so the last batches
    #: mature before strategies are judged. Coverage is read at the horizon.
    run_off_months: Annotated[int, Field(ge=0, le=120)] = Field(
        default=12, description=("months simulated after the horizon with no new invitations, "
                                 "so the last batches mature before they are judged"))
    #: Month ends whose segment counts are recorded (segments.parquet): ``quarter_ends``
    #: (every third month and the last month: what the report and charts read), ``all``, or
    #: a list of months. Segment counts are the recorder's costliest step.
    segment_months: Literal["quarter_ends", "all"] | list[Annotated[int, Field(ge=1, le=1200)]] = (
        Field(default="quarter_ends",
              description=("month ends with segment counts: quarter_ends (every third month "
                           "and the last), all, or a list of months")))
    #: Month ends whose expected credit loss (the PD chain over every live line: ``ecl_*``
    #: columns) is computed, in the same form as ``segment_months``; the other months' ECL
    #: columns are empty (NaN). Stage balances and the NPL ratio are every month.
    ecl_months: Literal["quarter_ends", "all"] | list[Annotated[int, Field(ge=1, le=1200)]] = (
        Field(default="quarter_ends",
              description=("month ends with expected credit loss (ECL): quarter_ends (every "
                           "third month and the last), all, or a list of months")))
    #: The risk budget of ``greysim compare``'s verdict: the highest acceptable cumulative
    #: default per opened line at 12 months on book (pooled over the batches that reached it,
    #: at every month end along the path; see docs/decisions.md). None: no budget.
    max_default_rate: float | None = Field(
        default=None, gt=0, lt=1,
        description=("risk budget of the verdict: default by 12 months on book per opened "
                     "line (none: no budget)"))

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


class MacroShock(Window):
    """A macro shock: default hazard times ``hazard_multiplier`` (cures divided by it)."""

    hazard_multiplier: Annotated[float, Field(gt=0.0, le=MAX_FACTOR)] = Field(
        description="multiplier of every borrower's default hazard inside the window")


class Macro(_Model):
    shocks: list[MacroShock] = Field(
        [], description="windows that raise (or lower) the default hazard")


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day-of-month ``months`` later (``day`` must be a first of month)."""
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, day.day)
