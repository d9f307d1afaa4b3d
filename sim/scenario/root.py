"""The scenario as a whole: its sections, the checks that span them, and validation.

:class:`Scenario` is frozen; :meth:`Scenario.replace` gives a changed copy, validated again.
Its ``seed`` is the one seed of a run: every random stream is spawned from it.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator

from sim.scenario import keys
from sim.scenario.base import MAX_MONTHS, _check_shares, _Model
from sim.scenario.calendar import Calendar, Macro, Release, Reporting, add_months
from sim.scenario.credit import Capital, Credit, Fraud
from sim.scenario.files import merge
from sim.scenario.messages import (
    Key,
    Origin,
    ScenarioError,
    _kind,
    _Located,
    _located,
    from_validation,
    placed,
)
from sim.scenario.population import Behaviour, PopulationSpec
from sim.scenario.rollout import AB, Rollout
from sim.scenario.scoring import Reevaluation, Risk, Scoring

#: The largest seed (NumPy takes any; a manifest stores it as a JSON number, exact to 2**63).
MAX_SEED = 2**63 - 1


class Scenario(_Model):
    """One rollout to simulate: population, score, release, calendar and strategy."""

    name: str = Field(description="names the run's output folder and the report")
    description: str = Field(default="", description="free text shown with the scenario")
    start: dt.date = Field(description="first day of the simulation; must be the 1st of a month")
    quarters: Annotated[int, Field(gt=0, le=MAX_MONTHS // 3)] = Field(
        description="length of the horizon in quarters (--quarters runs only the first ones)")
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = Field(
        description="the one seed every random stream is spawned from (same seed, same tables)")
    population: PopulationSpec = Field(
        description="who the users are: size, weight, archetypes, regions, devices, accounts")
    behaviour: Behaviour = Field(description="how behaviour drifts month to month")
    scoring: Scoring = Field(
        description="the access score: modules, references, cut-offs, penalties, preconditions")
    risk: Risk = Field(description="the latent default risk and how well the score sees it")
    release: Release = Field(description="client versions and entry visibility (version grey)")
    calendar: Calendar = Field(
        default=Calendar(),
        description="holidays (time grey) and dated cut-off changes")
    reevaluation: Reevaluation = Field(
        default=Reevaluation(),
        description="the quarterly re-scoring of everyone")
    rollout: Rollout = Field(
        description="the strategy: phases, batches or ramps, gates, holdout, freezes")
    credit: Credit = Field(
        description=("the credit line: activation, draws, pricing, limits, repayment, delinquency,"
                     " loss"))
    macro: Macro = Field(default=Macro(), description="shocks to the default hazard")
    capital: Capital = Field(
        default=Capital(),
        description="the capital limit on total outstanding")
    fraud: Fraud = Field(description="risk signals and R1/R2/R3 blocks")
    reporting: Reporting = Field(
        default=Reporting(),
        description="bands, crosses and the coverage target of the outputs")
    ab: AB | None = Field(
        default=None,
        description="A/B arms inside one population (none: one strategy)")

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
        self._check_release()
        for where, plan in self._plans():
            self._check_phases(plan, where, end)
            self._check_gates(plan, where)
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
        for name, arm in self.ab.arms.items() if self.ab is not None else ():
            if arm.rollout.value_weights != self.rollout.value_weights:
                raise _Located(f"ab.arms.{name}.rollout.value_weights",
                               "the value score is the bank's, shared by every arm; set "
                               "rollout.value_weights instead")
        _check_batch_capacity(self, end)
        return self

    def strategies(self) -> dict[str, Rollout]:
        """The strategy of each arm, by arm name; one arm ``all`` without an ``ab`` section."""
        if self.ab is None:
            return {"all": self.rollout}
        return {name: arm.rollout for name, arm in self.ab.arms.items()}

    def replace(self, changes: Mapping[str, Any]) -> Scenario:
        """A new validated scenario with ``changes`` (``{"dotted.key": value}``) applied.

        Keys are those of the scenario file (list items by index); setting the ``share`` of a
        category (an archetype, a region, an arm ...) rescales the shares of its siblings not
        set, so they still sum to 1. An unknown key or a bad value raises
        :class:`ScenarioError` naming the key (with the nearest key) and what is allowed.
        """
        raw = _own_arm_keys(self.model_dump(mode="json"))
        origins: dict[Key, Origin] = {}
        keys.set_values(raw, changes, Scenario, source="<replace>", origins=origins,
                        note="replaced")
        return validate(raw, "<replace>", origins)

    def _plans(self) -> list[tuple[str, Rollout]]:
        """Every strategy with its key path: the rollout and each A/B arm's."""
        arms = self.ab.arms.items() if self.ab is not None else ()
        return [("rollout", self.rollout), *((f"ab.arms.{n}.rollout", a.rollout)
                                             for n, a in arms)]

    def _check_release(self) -> None:
        versions = self.release.versions
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

    def _check_phases(self, plan: Rollout, where: str, end: dt.date) -> None:
        """Every phase of a strategy starts within the horizon and names known versions and
        regions, can reach someone, and sends batches no larger than the population."""
        names = [v.name for v in self.release.versions]
        regions = list(self.population.regions)
        real = self.population.users * self.population.weight
        for i, phase in enumerate(plan.phases):
            here = f"{where}.phases.{i}"
            if not (self.start <= phase.start < end):
                raise _Located(f"{here}.start", f"phase starts {phase.start}, outside the "
                               f"horizon {self.start} to {end}")
            if phase.min_version is not None and phase.min_version not in names:
                raise _Located(f"{here}.min_version",
                               f"unknown version '{phase.min_version}'; allowed: {names}")
            self._check_release_reach(plan, i, here, end)
            for r in phase.regions or []:
                if r not in regions:
                    raise _Located(f"{here}.regions",
                                   f"unknown region '{r}'; allowed: {regions}")
            if phase.batch and phase.batch.count is not None and phase.batch.count > real:
                raise _Located(f"{here}.batch.count", f"batch of {phase.batch.count:g} real "
                               f"users is larger than the population ({real:g} = users x "
                               "weight)")

    def _check_release_reach(self, plan: Rollout, i: int, here: str, end: dt.date) -> None:
        """A phase that needs a client version released only after the phase is over reaches
        no one: the release and the phase are out of order."""
        phase = plan.phases[i]
        if phase.min_version is None:
            return
        version = next(v for v in self.release.versions if v.name == phase.min_version)
        later = [p.start for p in plan.phases[i + 1:] if p.start > phase.start]
        over = min(later) if later else end
        if version.released >= over:
            raise _Located(
                f"{here}.min_version",
                f"phase '{phase.name}' runs {phase.start} to {over} but needs client "
                f"'{version.name}', released only on {version.released}, so it reaches no one; "
                f"allowed: a version released before {over}",
            )

    def _check_gates(self, plan: Rollout, where: str) -> None:
        """A capital_use gate needs a capital limit to read."""
        gates = [(f"{where}.gates.{i}", g) for i, g in enumerate(plan.gates)]
        gates += [(f"{where}.phases.{i}.gates.{j}", g) for i, p in enumerate(plan.phases)
                  for j, g in enumerate(p.gates)]
        for path, gate in gates:
            if gate.metric == "capital_use" and self.capital.max_outstanding is None:
                raise _Located(f"{path}.metric", "a capital_use gate needs a capital "
                               "limit (capital.equity and capital.max_leverage)")

    def digest(self) -> str:
        """SHA-256 of the resolved scenario, independent of key order in the files."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


#: Batches are numbered in an int16 array (``Population.vintage``).
MAX_BATCHES = 32767


def _check_batch_capacity(sc: Scenario, end: dt.date) -> None:
    days = (end - sc.start).days
    sends = sum(days // p.cadence_days + 1 for p in sc.rollout.phases) + sc.months
    if sends > MAX_BATCHES:
        raise _Located("quarters", f"{sc.quarters} quarters with these cadences give up to "
                       f"{sends:,} batches; allowed: at most {MAX_BATCHES:,} (shorten the horizon "
                       "or lengthen rollout.phases.*.cadence_days)")


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
        path, problem = from_validation(exc, Scenario)
    except _Located as exc:
        path, problem = exc.path, exc.problem
    raise placed(source, path, problem, origins or {}) from None


def _merge_arms(raw: dict) -> dict:
    """Give every A/B arm the scenario's ``rollout`` with the arm's own keys merged over it."""
    arms = raw.get("ab", {}).get("arms") if isinstance(raw.get("ab"), dict) else None
    base = raw.get("rollout")
    if not isinstance(arms, dict) or not isinstance(base, dict):
        return raw
    raw = copy.deepcopy(raw)
    for arm in raw["ab"]["arms"].values():
        if isinstance(arm, dict) and isinstance(arm.get("rollout", {}), dict):
            arm["rollout"] = merge(base, arm.get("rollout", {}))
    return raw


def _own_arm_keys(raw: dict) -> dict:
    """A dumped scenario with each A/B arm's rollout cut back to the keys where it differs
    from the scenario's, so a replaced rollout key reaches the arms that inherit it."""
    arms = (raw.get("ab") or {}).get("arms") or {}
    for arm in arms.values():
        arm["rollout"] = _differences(arm["rollout"], raw["rollout"])
    return raw


def _differences(value: dict, base: dict) -> dict:
    """The keys of ``value`` that ``merge(base, ...)`` needs to give ``value`` back."""
    out = {}
    for key, v in value.items():
        b = base.get(key)
        if isinstance(v, dict) and isinstance(b, dict):
            if v != b:
                out[key] = _differences(v, b)
        elif v != b or key not in base:
            out[key] = v
    return out
