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
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; ``str()`` is the one-paragraph message users see."""

    def __init__(self, source: str, path: str, problem: str, line: int | None = None):
        self.source, self.path, self.problem, self.line = source, path, problem, line
        where = f"{source}:{line}" if line else source
        key = f" at key '{path}'" if path else ""
        super().__init__(f"{where}{key}: {problem}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


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


class AccountClass(_Model):
    """What an account verification class looks like (DOMAIN: class II vs class III)."""

    bound_cards: NonNegFloat
    biometric: Probability
    credit_transactions: Probability


class Spread(_Model):
    """A lognormal quantity given by its median and the sd of its logarithm."""

    median: PositiveFloat
    sigma: NonNegFloat


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
    log_spread: NonNegFloat = Field(
        0.5, description="sd of log of behaviour amounts around each archetype's median"
    )

    @field_validator("archetypes", "regions", "device_grades", "os", "data_sharing")
    @classmethod
    def _sum_to_one(cls, v, info):
        return _shared(v, info.field_name)

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
    awakened_months: PositiveInt
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


class Scoring(_Model):
    weights: dict[str, Probability]
    slope: PositiveFloat
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
    reporting: Reporting = Reporting()

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
        end = self.end
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
        for i, change in enumerate(self.calendar.policy_changes):
            if not (self.start <= change.date < end):
                raise _Located(f"calendar.policy_changes.{i}.date",
                               f"{change.date} is outside the horizon {self.start} to {end}")
        return self

    def digest(self) -> str:
        """SHA-256 of the resolved scenario, independent of key order in the files."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


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


def load(path: str | Path, overrides: Iterable[str] = ()) -> Scenario:
    """Load, resolve ``extends``, apply ``--set`` overrides and validate a scenario file."""
    path = Path(path)
    raw = _resolve(path, ())
    for item in overrides:
        _apply_override(raw, item, str(path))
    return validate(raw, str(path))


def validate(raw: Any, source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed mapping, converting every failure into a ScenarioError."""
    if not isinstance(raw, dict):
        raise ScenarioError(source, "", f"a scenario is a mapping of keys, got {_kind(raw)}")
    raw = {k: v for k, v in raw.items() if k != "extends"}
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _from_validation(exc, source) from None
    except _Located as exc:
        raise ScenarioError(source, exc.path, exc.problem) from None


def _resolve(path: Path, chain: tuple[Path, ...]) -> dict:
    resolved = path.resolve()
    if resolved in chain:
        loop = " -> ".join(str(p) for p in (*chain, resolved))
        raise ScenarioError(str(path), "extends", f"'extends' loops: {loop}")
    if not path.is_file():
        source = str(chain[-1]) if chain else str(path)
        key = "extends" if chain else ""
        raise ScenarioError(source, key, f"scenario file '{path}' does not exist")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(str(path), "", f"not valid YAML: {problem}", line) from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError(str(path), "", f"a scenario is a mapping of keys, got {_kind(raw)}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ScenarioError(str(path), "extends", "'extends' names one scenario file")
    base = _resolve(path.parent / parent, (*chain, resolved))
    return _merge(base, raw)


def _merge(base: dict, override: dict) -> dict:
    """Deep-merge mappings; lists and scalars in ``override`` replace the base's."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _apply_override(raw: dict, item: str, source: str) -> None:
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
            return
        if part not in node:
            node[part] = {}
        node, model = node[part], _child_model(model, part)


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


def _from_validation(exc: ValidationError, source: str) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "literal["))]
    path = ".".join(loc)
    kind = err["type"]
    located = err.get("ctx", {}).get("error")
    if isinstance(located, _Located):
        return ScenarioError(source, located.path, located.problem)
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
        return ScenarioError(source, path, problem)
    if kind == "missing":
        return ScenarioError(source, path, "this key is required but missing")
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if isinstance(value, dict | list):
        return ScenarioError(source, path, msg)
    return ScenarioError(source, path, f"{msg} (got {json.dumps(value, default=str)[:80]})")

