"""Calibration: choose free scenario parameters so a run reproduces observed figures.

A *target* is one observed figure, the statistic of a run it compares to (table, month,
filter, column or ratio of summed columns) and a tolerance. :func:`calibrate` minimises
``sum(weight * ((simulated - observed) / tolerance) ** 2)`` over the free parameters with
``scipy.optimize.least_squares`` (trust-region reflective, box bounds), evaluating every
candidate on the same seed and the same users (common random numbers), so the objective moves
only because the parameters did. The finite-difference step is 5% of each parameter's range:
with a finite population the objective is a fine staircase, and smaller steps read the
stairs, not the slope. Nothing here reads or writes files.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal, get_args

import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from scipy.optimize import least_squares

from sim.engine.recorder import MONTHLY_COLUMNS
from sim.engine.simulation import Simulation
from sim.errors import GreysimError
from sim.experiments.parameters import Parameter
from sim.model import behaviour
from sim.model.population import Population
from sim.model.scoring import unknown_sources_deduction
from sim.scenario import Scenario, ScenarioError, keys

#: The tables a target can read.
Table = Literal["metrics", "segments", "quarterly", "users", "cells"]
TABLES = get_args(Table)
#: Behaviour patterns of the ``cells`` table: in the "sleeping then awakened" pattern (a
#: dormant account that woke with a burst of payments, for ``behaviour.awakened_months``),
#: still dormant, or neither.
PATTERNS = ("active", "dormant", "awakened")
#: Width of the ``cells`` table's credit bands, in score points (``band`` is the band's lower
#: edge relative to the cut-off; the first and last bands are open).
BAND_POINTS = 10.0
BAND_RANGE = (-50, 40)
#: Continuous attributes summed per access group in the ``users`` table.
USER_COLUMNS = ("payments_per_month", "monthly_spend", "wealth_days", "wealth_balance",
                "credit_history_years", "account_age_months", "contacts", "income")
#: Groups of the ``users`` table: by access (invited) and by eligibility.
USER_GROUPS = ("with_access", "without_access", "eligible", "not_eligible")
#: Monthly columns a CSV of observed figures may give: shares compared absolutely, counts
#: relative to their size.
OBSERVED_SHARES = ("eligible_share", "invited_share", "visible_share")
OBSERVED_COUNTS = ("eligible", "invited", "visible", "gained_access", "lost_access",
                   "new_invites")

Progress = Callable[[int, int, float], None]


class TargetError(GreysimError, ValueError):
    """A targets file or parameter that cannot be used; ``str()`` is the user message."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Model):
    """One observed figure and the run statistic it compares to.

    ``statistic`` is a column (its mean over the selected rows) or ``"a / b"``: the sum of
    column ``a`` over the rows selected by ``filter`` divided by the sum of ``b`` over the rows
    selected by ``denominator_filter`` (default: the same rows). ``month`` is one month or a
    list of months (1 = the first month-end); the ``quarterly`` table is keyed by the month
    that ends each quarter.

    Two comparisons read the rate ``a / b`` within strata (``stratify``: a column):

    * ``versus`` (a filter): the rate of the ``filter`` group against the ``versus`` group,
      as a ``contrast`` (``difference`` or ``ratio``) of the two groups' rates standardised to
      the ``filter`` group's mix over the strata (strata where either group is empty are
      left out);
    * ``order`` (``{column: [first, second, ...]}``): the largest reversal of that ordering
      within any stratum, ``max(0, rate(next) - rate(previous))`` over consecutive pairs; 0
      when the ordering holds everywhere.
    """

    name: str
    table: Table
    month: int | list[int]
    filter: dict[str, str | list[str]] = {}
    denominator_filter: dict[str, str | list[str]] | None = None
    versus: dict[str, str | list[str]] | None = None
    contrast: Literal["difference", "ratio"] = "difference"
    order: dict[str, list[str]] | None = None
    stratify: str | None = None
    statistic: str
    value: float
    tolerance: Annotated[float, Field(gt=0.0)]
    weight: Annotated[float, Field(ge=0.0)] = 1.0
    source: str = ""
    unmet: str = Field("", description="why the model cannot reach this target (a known gap)")

    @field_validator("month")
    @classmethod
    def _months(cls, v):
        months = v if isinstance(v, list) else [v]
        if not months or any(m < 1 for m in months):
            raise ValueError("months count from 1 (the first month-end)")
        return v

    @model_validator(mode="after")
    def _comparison(self):
        if self.versus is not None and self.order is not None:
            raise ValueError("give either versus (two groups) or order (a ranking), not both")
        if (self.versus is not None or self.order is not None) and "/" not in self.statistic:
            raise ValueError("versus and order compare rates: the statistic must be 'a / b'")
        if (self.versus is not None or self.order is not None) and self.denominator_filter:
            raise ValueError("versus and order read each group's own rows: no "
                             "denominator_filter")
        if self.order is not None and (len(self.order) != 1
                                       or len(next(iter(self.order.values()))) < 2):
            raise ValueError("order names one column and at least two of its values in "
                             "order, e.g. {region: [tier1, new_tier1, county]}")
        return self

    @property
    def months(self) -> list[int]:
        return self.month if isinstance(self.month, list) else [self.month]

    @property
    def parts(self) -> tuple[str, str | None]:
        num, _, den = self.statistic.partition("/")
        return num.strip(), (den.strip() or None)


@dataclass(frozen=True, repr=False)
class Fit:
    """What :func:`calibrate` found: the fitted values, the calibrated scenario, and one row
    per target of how close its run comes (``report``)."""

    params: dict[str, float]
    changed: dict[str, float]  # every scenario key the fit changed (fitted keys and shares)
    scenario: Scenario
    report: pd.DataFrame  # one row per target: observed, fitted, error, tolerance, within
    cost: float
    evaluations: int
    seconds: float
    message: str
    at_bound: dict[str, str] = field(default_factory=dict)  # key -> "lower" / "upper"

    def __repr__(self) -> str:
        within = int(self.report["within"].sum()) if "within" in self.report else 0
        lines = [f"Fit of {len(self.params)} parameters to {len(self.report)} targets: "
                 f"{within} within tolerance, cost {self.cost:.4g} after {self.evaluations} "
                 f"runs ({self.seconds:.0f}s; {self.message})"]
        for key, value in list(self.params.items())[:8]:
            side = self.at_bound.get(key)
            lines.append(f"  {key} = {value:.6g}" + (f" (at its {side} bound)" if side else ""))
        if len(self.params) > 8:
            lines.append(f"  ... and {len(self.params) - 8} more")
        return "\n".join(lines)


# --------------------------------------------------------------------------- targets


def parse_targets(raw, source: str = "<targets>") -> tuple[list[Target], list[Parameter]]:
    """Targets and default free parameters from a parsed targets file.

    The file is a mapping with ``targets`` (a list of :class:`Target` fields) and optional
    ``params`` (``key: [lo, hi]``), the free parameters used when none are given.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("targets"), list):
        raise TargetError(f"{source}: a targets file is a mapping with a 'targets' list")
    unknown = set(raw) - {"targets", "params", "description"}
    if unknown:
        raise TargetError(f"{source}: unknown key(s) {sorted(unknown)}; allowed: "
                          "description, targets, params")
    targets = []
    for i, item in enumerate(raw["targets"]):
        try:
            targets.append(Target.model_validate(item))
        except ValidationError as exc:
            e = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in e["loc"])
            name = item.get("name", i) if isinstance(item, dict) else i
            raise TargetError(f"{source} at key 'targets.{i}.{where}' (target '{name}'): "
                              f"{e['msg'].removeprefix('Value error, ')}") from None
    params = []
    for key, bounds in (raw.get("params") or {}).items():
        if not (isinstance(bounds, list) and len(bounds) == 2):
            raise TargetError(f"{source} at key 'params.{key}': give the bounds as [lo, hi]")
        try:
            params.append(Parameter.between(str(key), float(bounds[0]), float(bounds[1]),
                                            source))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ScenarioError):
                raise
            raise TargetError(f"{source} at key 'params.{key}': give the bounds as numbers "
                              "[lo, hi]") from None
    return targets, params


def targets_from_observed(observed: pd.DataFrame, *, share_tolerance: float = 0.02,
                          count_tolerance: float = 0.05, source: str = "<observed>"
                          ) -> list[Target]:
    """Targets from a table of observed monthly figures with ``metrics.parquet``'s columns.

    Every share column present (``invited_share`` ...) is compared within ``share_tolerance``
    (absolute); every count column (``invited``, ``gained_access`` ...) within
    ``count_tolerance`` of its own size. Missing figures (blank cells) are skipped.
    """
    if "month" not in observed.columns:
        raise TargetError(f"{source}: the observed figures need a 'month' column "
                          f"(1 = the first month-end), like metrics.parquet")
    known = [c for c in (*OBSERVED_SHARES, *OBSERVED_COUNTS) if c in observed.columns]
    extra = [c for c in observed.columns if c not in MONTHLY_COLUMNS]
    if not known or extra:
        raise TargetError(f"{source}: columns must be those of metrics.parquet; "
                          f"usable figures are {list(OBSERVED_SHARES + OBSERVED_COUNTS)}"
                          + (f"; unknown: {extra}" if extra else ""))
    targets = []
    for row in observed.itertuples(index=False):
        month = int(row.month)
        for col in known:
            value = getattr(row, col)
            if pd.isna(value):
                continue
            tol = (share_tolerance if col in OBSERVED_SHARES
                   else max(count_tolerance * abs(float(value)), 1.0))
            targets.append(Target(name=f"{col}@{month}", table="metrics", month=month,
                                  statistic=col, value=float(value), tolerance=tol,
                                  source=f"{source}, month {month}"))
    return targets


def echo_of(target: Target) -> str | None:
    """The scenario input a target's statistic merely restates, or None.

    Such a target measures the input, not the model: fitting to it fits nothing, and meeting
    it proves nothing. Known echoes: the entry's visibility on a client version (visible /
    invited or visible / population filtered by version) is that version's
    ``release.versions[].visible`` less the share hidden by a risk level.
    """
    num, _ = target.parts
    if (target.table == "segments" and num == "visible"
            and target.filter.get("dimension") == "version"):
        return "release.versions[].visible"
    return None


# --------------------------------------------------------------------------- run statistics


def user_table(pop: Population, month: int) -> list[dict]:
    """Counts and sums (and sums of squares) of continuous attributes by access group."""
    w = pop.weight
    masks = {"with_access": pop.invited, "without_access": ~pop.invited,
             "eligible": pop.eligible, "not_eligible": ~pop.eligible}
    rows = []
    for group, mask in masks.items():
        row = {"month": month, "group": group, "users": float(np.count_nonzero(mask)) * w}
        for col in USER_COLUMNS:
            x = getattr(pop, col)[mask].astype(np.float64)
            row[col] = float(x.sum()) * w
            row[f"{col}_sq"] = float((x * x).sum()) * w
        rows.append(row)
    return rows


def cell_table(pop: Population, scenario: Scenario, month: int,
               cutoff: float | None = None) -> list[dict]:
    """Users, eligible and invited by archetype x region x OS x credit band x behaviour
    pattern (:data:`PATTERNS`).

    The credit band is the bank's score before the OS terms (the score plus the
    unknown-sources deduction, minus any OS offset): users in one band have equal credit apart
    from their phone. Bands are :data:`BAND_POINTS` wide, labelled by their lower edge
    relative to the cut-off in force (``cutoff``; default the scenario's: a policy change
    in the calendar may move it) (e.g. -10: from 10 points below the cut-off to it).
    """
    offset = np.array([o.score_offset for o in scenario.population.os.values()],
                      dtype=np.float32)
    credit = pop.score + unknown_sources_deduction(pop, scenario) - offset[pop.os]
    lo, hi = BAND_RANGE
    cutoff = scenario.scoring.cutoff if cutoff is None else cutoff
    edge = np.clip(np.floor((credit - cutoff) / BAND_POINTS) * BAND_POINTS,
                   lo, hi).astype(np.int64)
    bands = np.arange(lo, hi + BAND_POINTS, BAND_POINTS, dtype=np.int64)
    pattern = np.where(pop.awakened_months > 0, 2, np.where(pop.dormant, 1, 0))
    dims = [("archetype", pop.archetype.astype(np.int64), pop.labels["archetype"]),
            ("region", pop.region.astype(np.int64), pop.labels["region"]),
            ("os", pop.os.astype(np.int64), pop.labels["os"]),
            ("band", (edge - lo) // int(BAND_POINTS), tuple(int(b) for b in bands)),
            ("pattern", pattern.astype(np.int64), PATTERNS)]
    code = np.zeros(pop.n, dtype=np.int64)
    size = 1
    for _, codes, labels in dims:
        code = code * len(labels) + codes
        size *= len(labels)
    w = pop.weight
    counts = {name: np.bincount(code, weights=mask, minlength=size) * w
              for name, mask in (("users", None), ("eligible", pop.eligible),
                                 ("invited", pop.invited))}
    rows = []
    for cell in np.flatnonzero(counts["users"]):
        row, rest = {"month": month}, int(cell)
        for name, _, labels in reversed(dims):
            rest, k = divmod(rest, len(labels))
            row[name] = labels[k]
        row.update({name: float(c[cell]) for name, c in counts.items()})
        rows.append(row)
    return rows


def last_read(scenario: Scenario, targets: Iterable[Target]) -> int:
    """The last month a run for ``targets`` simulates: the end of the quarter of the latest
    month they read, within the scenario's horizon."""
    return 3 * min(scenario.quarters, -(-max(m for t in targets for m in t.months) // 3))


def check_reads(scenario: Scenario, targets: Iterable[Target], source: str = "<targets>",
                last: int | None = None) -> None:
    """Refuse a ``users`` target (means of behaviour) in a month where the population's
    behaviour is not drawn: it is drawn when the bank reads it, at each re-scoring and in
    ``last``, the last month of the run (default: :func:`last_read` of ``targets``; give the
    run's when ``targets`` are one file of several), so another month would read the last
    re-scoring's values (:func:`sim.model.behaviour.settle`)."""
    targets = list(targets)
    if not targets:
        return
    every = scenario.reevaluation.every_months
    last = last_read(scenario, targets) if last is None else last
    for i, t in enumerate(targets):
        stale = [m for m in t.months
                 if t.table == "users" and not behaviour.pending(m, every, last)]
        if stale:
            raise TargetError(
                f"{source} at key 'targets.{i}.month' (target '{t.name}'): the 'users' table "
                f"is read in month {stale[0]}, where behaviour is not drawn; it is drawn at "
                f"each re-scoring (every {every} months, reevaluation.every_months) and in "
                f"month {last}, the last the targets read; allowed: a multiple of {every} or "
                f"{last}")


def run_tables(scenario: Scenario, targets: Iterable[Target], seed: int | None = None
               ) -> dict[str, pd.DataFrame]:
    """Simulate as many quarters as the targets need and return the tables they read
    (``seed`` is a shorthand for ``scenario.replace({"seed": seed})``)."""
    targets = list(targets)
    if seed is not None:
        scenario = scenario.replace({"seed": int(seed)})
    last = max(m for t in targets for m in t.months)
    quarters = min(scenario.quarters, -(-last // 3))
    if last > 3 * quarters:
        raise TargetError(f"a target reads month {last}, beyond the scenario's horizon of "
                          f"{scenario.months} months")
    want = {m for t in targets if t.table == "users" for m in t.months}
    want_cells = {m for t in targets if t.table == "cells" for m in t.months}
    check_reads(scenario, targets)
    sim = Simulation(scenario, quarters=quarters, run_off=0)  # targets read the horizon only
    sim.recorder.declare("users", lambda obs: user_table(obs.pop, obs.month)
                         if obs.month in want else [])
    sim.recorder.declare("cells", lambda obs: cell_table(obs.pop, scenario, obs.month,
                                                         sim.state.cutoff)
                         if obs.month in want_cells else [])
    if sim.recorder.segment_months is not None:  # the months the segment targets read too
        sim.recorder.segment_months |= {m for t in targets if t.table == "segments"
                                        for m in t.months}
    if sim.recorder.ecl_months is not None:  # and the months the monthly targets read
        sim.recorder.ecl_months |= {m for t in targets if t.table == "metrics"
                                    for m in t.months}
    users, cells = sim.recorder.rows["users"], sim.recorder.rows["cells"]
    result = sim.run()
    seg = result.segments.copy()
    seg["without_access"] = seg["population"] - seg["invited"]
    q = result.quarterly.copy()
    q["month"] = 3 * q["quarter"]
    q["changed"] = q["gained_access"] + q["lost_access"]
    q["before"] = q["invited"] - q["gained_access"] + q["lost_access"]
    return {
        "metrics": result.monthly,
        "segments": seg,
        "quarterly": q,
        "users": pd.DataFrame(users) if users else pd.DataFrame(
            columns=["month", "group", "users"]),
        "cells": pd.DataFrame(cells) if cells else pd.DataFrame(
            columns=["month", "archetype", "region", "os", "band", "pattern", "users",
                     "eligible", "invited"]),
        "_weight": pd.DataFrame({"weight": [result.population.weight]}),
    }


def _select(df: pd.DataFrame, months: list[int], flt: Mapping[str, str | list[str]]
            ) -> pd.Series:
    mask = df["month"].isin(months)
    for col, want in flt.items():
        if col not in df.columns:
            raise TargetError(f"cannot filter on '{col}': not a column of this table "
                              f"(columns: {', '.join(map(str, df.columns))})")
        values = want if isinstance(want, list) else [want]
        mask &= df[col].astype(str).isin([str(v) for v in values])
    return mask


def statistic(tables: Mapping[str, pd.DataFrame], target: Target) -> tuple[float, float]:
    """The target's statistic in a run's tables, and its sampling standard error.

    The standard error is binomial for a ratio of counts (a share) and ``sd / sqrt(n)`` for a
    mean from the ``users`` table; NaN where neither applies.
    """
    df = tables[target.table]
    weight = float(tables["_weight"]["weight"].iloc[0]) if "_weight" in tables else 1.0
    num, den = target.parts
    for col in (num, den):
        if col is not None and col not in df.columns:
            raise TargetError(f"target '{target.name}': '{col}' is not a column of the "
                              f"{target.table} table")
    if target.versus is not None or target.order is not None:
        return _compared(df, target, weight)
    rows = _select(df, target.months, target.filter)
    if not rows.any():
        raise TargetError(f"target '{target.name}': no rows of the {target.table} table match "
                          f"month {target.month} and filter {target.filter}")
    if den is None:
        return float(df.loc[rows, num].mean()), math.nan
    den_rows = rows if target.denominator_filter is None else _select(
        df, target.months, target.denominator_filter)
    a, b = float(df.loc[rows, num].sum()), float(df.loc[den_rows, den].sum())
    if b == 0:
        return math.nan, math.nan
    value = a / b
    n = b / weight
    if target.table == "users" and den == "users" and f"{num}_sq" in df.columns:
        var = float(df.loc[rows, f"{num}_sq"].sum()) / b - value * value
        return value, math.sqrt(max(var, 0.0) / n)
    if 0.0 <= value <= 1.0:
        return value, math.sqrt(value * (1 - value) / n)
    return value, math.nan


def _rates(df: pd.DataFrame, target: Target, flt: Mapping) -> pd.DataFrame:
    """Numerator and denominator sums of the target's rate by stratum, over ``flt``'s rows."""
    num, den = target.parts
    rows = df[_select(df, target.months, flt)]
    if target.stratify is not None and target.stratify not in df.columns:
        raise TargetError(f"target '{target.name}': cannot stratify by '{target.stratify}': "
                          f"not a column of the {target.table} table")
    key = rows[target.stratify].astype(str) if target.stratify else pd.Series(
        "all", index=rows.index)
    return rows.groupby(key)[[num, den]].sum().set_axis(["a", "b"], axis=1)


def _compared(df: pd.DataFrame, target: Target, weight: float) -> tuple[float, float]:
    """A ``versus`` contrast or an ``order`` reversal (see :class:`Target`), and its standard
    error (NaN for an order)."""
    if target.order is not None:
        (col, ranking), = target.order.items()
        rates = [_rates(df, target, {**target.filter, col: value}) for value in ranking]
        worst = 0.0
        for hi_, lo_ in zip(rates, rates[1:], strict=False):
            both = hi_.merge(lo_, left_index=True, right_index=True, suffixes=("_hi", "_lo"))
            both = both[(both.b_hi > 0) & (both.b_lo > 0)]
            if both.empty:
                raise TargetError(f"target '{target.name}': no stratum holds both "
                                  f"{col} groups of the ordering {ranking}")
            gap = both.a_lo / both.b_lo - both.a_hi / both.b_hi
            worst = max(worst, float(gap.max()))
        return worst, math.nan
    focal = _rates(df, target, target.filter)
    other = _rates(df, target, {**target.filter, **target.versus})
    both = focal.merge(other, left_index=True, right_index=True, suffixes=("_1", "_0"))
    both = both[(both.b_1 > 0) & (both.b_0 > 0)]
    if both.empty:
        raise TargetError(f"target '{target.name}': no stratum holds both groups "
                          f"({target.filter} and {target.versus})")
    w = both.b_1 / both.b_1.sum()  # standardised to the focal group's mix
    r1, r0 = both.a_1 / both.b_1, both.a_0 / both.b_0
    var1 = r1 * (1 - r1) / (both.b_1 / weight)
    var0 = r0 * (1 - r0) / (both.b_0 / weight)
    m1, m0 = float((w * r1).sum()), float((w * r0).sum())
    v1, v0 = float((w * w * var1).sum()), float((w * w * var0).sum())
    if target.contrast == "difference":
        return m1 - m0, math.sqrt(max(v1 + v0, 0.0))
    if m0 == 0:
        return math.nan, math.nan
    ratio = m1 / m0
    return ratio, ratio * math.sqrt(max(v1 / max(m1 * m1, 1e-300) + v0 / (m0 * m0), 0.0))


def evaluate(scenario: Scenario, targets: Iterable[Target], seed: int | None = None
             ) -> pd.DataFrame:
    """One row per target: observed value, simulated value, error, tolerance, within it."""
    targets = list(targets)
    tables = run_tables(scenario, targets, seed)
    return report(targets, tables)


def report(targets: list[Target], tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for t in targets:
        value, se = statistic(tables, t)
        rows.append({"target": t.name, "observed": t.value, "simulated": value,
                     "error": value - t.value, "tolerance": t.tolerance,
                     "within": bool(abs(value - t.value) <= t.tolerance),
                     "standard_error": se, "source": t.source, "unmet": t.unmet})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- parameters


def current_values(scenario: Scenario, params: Iterable[Parameter]) -> dict[str, float]:
    """The scenario's own values of the free parameters (an odds tilt not written starts at
    1, no tilt)."""
    raw = scenario.model_dump(mode="json")
    out = {}
    for p in params:
        try:
            value = keys.get(raw, p.key)
        except KeyError:
            keys.set_values(copy.deepcopy(raw), {p.key: 1.0}, Scenario, source="<parameters>")
            out[p.key] = 1.0  # the key may be added: only tilts' odds are optional numbers
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TargetError(f"parameter '{p.key}' is not a number (it holds {value!r})")
        out[p.key] = float(value)
    return out


def with_values(scenario: Scenario, values: Mapping[str, float]) -> tuple[Scenario, dict]:
    """The scenario with ``values`` set, and every key that changed.

    Setting a category's ``share`` rescales the categories whose share is not set, so the
    shares still sum to 1 (see :mod:`sim.scenario.keys`).
    """
    try:
        changed = keys.set_values(scenario.model_dump(mode="json"), values, Scenario,
                                  source="<calibration>")
        return scenario.replace(changed), changed
    except ScenarioError as exc:
        raise TargetError(f"the parameters make an invalid scenario: {exc}") from None


def nested(values: Mapping[str, float], scenario: Scenario | None = None) -> dict:
    """Dotted keys as nested mappings, to write a scenario that ``extends`` the fitted one's
    parent (a key inside a list writes that whole list from ``scenario``).

    Values are rounded to 6 decimals; within each mapping of category shares the largest
    absorbs the rounding, so the shares still sum to what they did (the scenario checks 1 to
    1e-6).
    """
    rounded = {key: round(float(value), 6) for key, value in values.items()}
    groups: dict[str, list[str]] = {}
    for key in rounded:
        group = keys.share_group(Scenario, key)
        if group is not None:
            groups.setdefault(group, []).append(key)
    for members in groups.values():
        big = max(members, key=rounded.__getitem__)
        rest = sum(rounded[k] for k in members if k != big)
        rounded[big] = round(sum(float(values[k]) for k in members) - rest, 6)
    full = None
    if scenario is not None:
        full = scenario.replace(rounded).model_dump(mode="json")
    return keys.nest(rounded, full)


# --------------------------------------------------------------------------- the fit


class _Budget(Exception):
    pass


def calibrate(scenario: Scenario, targets: list[Target], params: list[Parameter], *,
              seed: int | None = None, budget_evals: int | None = 200,
              budget_seconds: float | None = None, progress: Progress | None = None,
              diff_step: float = 0.05) -> Fit:
    """Fit ``params`` so the scenario's run matches ``targets``; see the module docstring.

    Every evaluation runs the same seed on the same population (common random numbers).
    Parameters are searched on [0, 1] between their bounds; the start is the scenario's own
    values (clipped into the bounds). The search stops at convergence, after
    ``budget_evals`` runs or ``budget_seconds``, whichever comes first, and returns the best
    point seen.
    """
    if not targets:
        raise TargetError("no targets to fit")
    if not params:
        raise TargetError("no free parameters: give --params key=lo:hi or a 'params' section")
    start = current_values(scenario, params)
    low = np.array([p.low for p in params])
    span = np.array([p.high - p.low for p in params])
    x0 = np.clip((np.array([start[p.key] for p in params]) - low) / span, 0.0, 1.0)
    sqrt_w = np.sqrt([t.weight for t in targets])
    tol = np.array([t.tolerance for t in targets])
    obs = np.array([t.value for t in targets])
    began = time.perf_counter()
    best: dict = {"cost": math.inf, "x": x0, "n": 0}
    limit = budget_evals or 10**9

    def values_at(x) -> dict[str, float]:
        return {p.key: p.value(v) for p, v in zip(params, low + span * np.asarray(x),
                                                    strict=True)}

    def residuals(x: np.ndarray) -> np.ndarray:
        if best["n"] >= limit or (budget_seconds is not None
                                  and time.perf_counter() - began > budget_seconds):
            raise _Budget
        sc, _ = with_values(scenario, values_at(x))
        tables = run_tables(sc, targets, seed)
        sim = np.array([statistic(tables, t)[0] for t in targets])
        r = sqrt_w * (sim - obs) / tol
        r = np.where(np.isfinite(r), r, 10.0 * sqrt_w)
        cost = float(r @ r)
        best["n"] += 1
        if cost < best["cost"]:
            best.update(cost=cost, x=np.array(x, copy=True))
        if progress is not None:
            progress(best["n"], limit, best["cost"])
        return r

    message = "converged"
    try:
        out = least_squares(residuals, x0, bounds=(0.0, 1.0), method="trf",
                            diff_step=diff_step, x_scale=1.0, xtol=1e-4, ftol=1e-4)
        message = out.message
    except _Budget:
        message = "stopped at the budget"
    fitted = values_at(best["x"])
    sc, changed = with_values(scenario, fitted)
    table = evaluate(sc, targets, seed)
    # a parameter pinned at a bound may want a wider range: say so
    at_bound = {p.key: side for p, x in zip(params, best["x"], strict=True)
                for side, hit in (("lower", x <= 1e-3), ("upper", x >= 1 - 1e-3)) if hit}
    return Fit(params=fitted, changed=changed, scenario=sc, report=table,
               cost=best["cost"], evaluations=best["n"],
               seconds=time.perf_counter() - began, message=message, at_bound=at_bound)


# --------------------------------------------------------------------------- validation


def validate(scenario: Scenario, targets: list[Target], params: list[Parameter], k: int = 1,
             *, seed: int | None = None, budget_evals: int | None = 200,
             budget_seconds: float | None = None, progress: Progress | None = None
             ) -> pd.DataFrame:
    """Out-of-sample check of a calibration: fit on all targets but ``k`` at a time
    (consecutive folds of ``k`` in the file's order) and report each left-out target's error
    at the values fitted without it. A model that only echoes its inputs fits every target
    in sample and misses the ones it did not see.

    One row per target: fold, observed, predicted (out of sample), error, tolerance, within,
    and the in-sample cost of its fold's fit.
    """
    if not 1 <= k < len(targets):
        raise TargetError(f"--validate K leaves K targets out of {len(targets)}: K must be "
                          f"between 1 and {len(targets) - 1}")
    rows = []
    for fold, start in enumerate(range(0, len(targets), k)):
        out_idx = set(range(start, min(start + k, len(targets))))
        kept = [t for i, t in enumerate(targets) if i not in out_idx]
        held = [targets[i] for i in sorted(out_idx)]
        fit = calibrate(scenario, kept, params, seed=seed, budget_evals=budget_evals,
                        budget_seconds=budget_seconds, progress=progress)
        for r in evaluate(fit.scenario, held, seed).itertuples():
            rows.append({"target": r.target, "fold": fold, "observed": r.observed,
                         "predicted": r.simulated, "error": r.error,
                         "tolerance": r.tolerance, "within": r.within,
                         "in_sample_cost": fit.cost})
    return pd.DataFrame(rows)
