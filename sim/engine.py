"""The calendar: one SimPy environment whose processes update the population in bulk.

Time is in days from ``scenario.start``. Processes that fall on the same day run in a fixed
order given by their offset within the day (:data:`AT`), never by the order they happened to
be scheduled in, so a run is the same whatever else is added to the calendar.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from . import guards, invites, release, scoring
from .metrics import Recorder, quarterly
from .population import Population, assign_latent_risk, synthesize, weighted_auc
from .scenario import Scenario, add_months

#: Offsets within a day: calendar events, then rollout batches, then month-end work.
AT = {"calendar": 0.0, "rollout": 0.25, "monthly": 0.5, "reevaluation": 0.6, "recorder": 0.9}

#: Named random streams. Each is ``SeedSequence(seed, spawn_key=(i,))``: adding a stream at the
#: end never changes the others, and the population stream is the same for every strategy.
STREAMS = ("population", "risk", "behaviour", "release", "rollout", "reevaluation", "credit",
           "fraud")

Progress = Callable[[int, int], None]


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per process, all spawned from the scenario seed."""
    return {
        name: np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))
        for i, name in enumerate(STREAMS)
    }


@dataclass
class State:
    """What the processes share besides the population arrays."""

    scenario: Scenario
    cutoff: float
    newest_version: int
    holidays: set[str] = field(default_factory=set)
    batches: list[dict] = field(default_factory=list)
    flows: dict[str, float] = field(default_factory=dict)

    @property
    def holiday(self) -> bool:
        return bool(self.holidays)

    def count(self, key: str, amount: float) -> None:
        self.flows[key] = self.flows.get(key, 0) + amount


@dataclass
class Result:
    """A finished run: its tables, the final population and how it was made."""

    scenario: Scenario
    seed: int
    monthly: pd.DataFrame
    segments: pd.DataFrame
    batches: pd.DataFrame
    summary: dict
    population: Population
    wall_seconds: float

    @property
    def quarterly(self) -> pd.DataFrame:
        return quarterly(self.monthly)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables a run writes, by file stem (``metrics`` is the monthly table)."""
        return {"metrics": self.monthly, "segments": self.segments, "batches": self.batches}


class Simulation:
    """One run of a scenario: builds the population, registers the processes, runs them."""

    def __init__(self, scenario: Scenario, seed: int | None = None,
                 progress: Progress | None = None, quarters: int | None = None):
        if quarters is not None and not 1 <= quarters <= scenario.quarters:
            raise ValueError(f"quarters must be between 1 and the scenario's {scenario.quarters}")
        self.scenario = scenario
        self.months = 3 * (quarters or scenario.quarters)
        self.seed = scenario.seed if seed is None else int(seed)
        self.progress = progress
        self.rng = streams(self.seed)
        self.env = simpy.Environment()
        self.pop = synthesize(scenario, self.rng["population"])
        first = scoring.evaluate(self.pop, scenario)
        guards.check_finite(first.score, name="score", process="scoring", month=0,
                            key="scoring")
        assign_latent_risk(self.pop, scenario, first.score, self.rng["risk"])
        guards.check_probability(self.pop.hazard, name="monthly default hazard", process="risk",
                                 month=0, key=("risk.monthly_hazard", "risk.dispersion"))
        scoring.apply(self.pop, first)
        self.state = State(
            scenario=scenario,
            cutoff=scenario.scoring.cutoff,
            newest_version=release.latest_released(scenario.release, scenario.start),
        )
        self.visibility = release.visibility_rates(scenario.release)
        self.region_open = np.array([r.open for r in scenario.population.regions.values()])
        self.recorder = Recorder(bands=scenario.reporting.bands)
        self.month_ends = [(add_months(scenario.start, m) - scenario.start).days
                           for m in range(1, self.months + 1)]
        self.horizon = self.month_ends[-1]
        self.initial_reasons = first.reasons.copy()

    # ------------------------------------------------------------------ helpers
    def date(self, day: float) -> dt.date:
        return self.scenario.start + dt.timedelta(days=int(day))

    def at(self, day: int, what: str):
        """A timeout that wakes the caller on ``day`` at the slot reserved for ``what``."""
        return self.env.timeout(max(0.0, day + AT[what] - self.env.now))

    def visible(self) -> np.ndarray:
        """Invited, entry shown on the client version, and region open."""
        pop = self.pop
        return (pop.invited & release.entry_visible(pop, self.visibility)
                & self.region_open[pop.region])

    # ------------------------------------------------------------------ processes
    def calendar(self):
        """Holidays, version releases and policy changes at their dates."""
        sc = self.scenario
        events: list[tuple[int, int, Callable[[], None]]] = []

        def add(day: dt.date, order: int, action):
            offset = (day - sc.start).days
            if 0 <= offset < self.horizon:
                events.append((offset, order, action))

        for h in sc.calendar.holidays:
            add(h.start, 0, lambda h=h: self.state.holidays.add(h.name or str(h.start)))
            add(h.end + dt.timedelta(days=1), 0,
                lambda h=h: self.state.holidays.discard(h.name or str(h.start)))
            if h.start < sc.start <= h.end:
                self.state.holidays.add(h.name or str(h.start))
        for code, v in enumerate(sc.release.versions):
            add(v.released, 1, lambda code=code: setattr(
                self.state, "newest_version", max(self.state.newest_version, code)))
        for change in sc.calendar.policy_changes:
            add(change.date, 2, lambda c=change: setattr(self.state, "cutoff", c.cutoff))
        events.sort(key=lambda e: (e[0], e[1]))
        for day, _, action in events:
            yield self.at(day, "calendar")
            action()

    def rollout(self):
        """Send batches on each phase's cadence, outside freeze windows."""
        sc = self.scenario
        for phase in sc.rollout.phases:
            start = (phase.start - sc.start).days
            end = min((invites.phase_end(sc.rollout, phase, sc.end) - sc.start).days,
                      self.horizon)
            bucket = invites.sticky_bucket(self.pop.n, invites.salt_of(sc.rollout, phase))
            for day in range(start, end, phase.cadence_days):
                yield self.at(day, "rollout")
                date = self.date(day)
                if any(w.contains(date) for w in sc.rollout.freeze):
                    continue
                users = invites.next_batch(self.pop, sc, phase, date, self.state.holiday, bucket)
                if users.size:
                    self._record_batch(users, date, phase.name, "batch")

    def _record_batch(self, users: np.ndarray, date: dt.date, phase: str, kind: str) -> None:
        vintage = len(self.state.batches)
        invites.invite(self.pop, users, vintage)
        self.state.batches.append({
            "vintage": vintage, "date": date, "phase": phase, "kind": kind,
            "users": int(users.size), "accounts": users.size * self.pop.weight,
            "holiday": self.state.holiday,
        })
        self.state.count("new_invites", users.size)
        self.state.count("batches", 1)

    def monthly(self):
        """Month-end ageing of behaviour and client versions."""
        previous = 0
        for month, day in enumerate(self.month_ends, start=1):
            yield self.at(day - 1, "monthly")
            days = day - previous
            previous = day
            with np.errstate(over="ignore"):  # overflow is reported by the guard below
                age_behaviour(self.pop, self.scenario, self.rng["behaviour"])
            guards.check_population(self.pop, process="behaviour", month=month,
                                    key="behaviour.drift_sd")
            release.adopt(self.pop, self.scenario.release, self.state.newest_version, days,
                          self.rng["release"])

    def reevaluation(self):
        """Re-score everyone each evaluation period; revoke and grant access."""
        every = self.scenario.reevaluation.every_months
        for month, day in enumerate(self.month_ends, start=1):
            if month % every:
                continue
            yield self.at(day - 1, "reevaluation")
            self._reevaluate(self.date(day - 1))
            guards.check_finite(self.pop.score, name="score", process="reevaluation",
                                month=month, key="scoring")

    def _reevaluate(self, date: dt.date) -> None:
        pop, sc = self.pop, self.scenario
        ind = sc.scoring.other_indicators
        rng = self.rng["reevaluation"]
        phi = ind.persistence
        pop.other_indicators *= phi
        pop.other_indicators += (np.sqrt(1 - phi * phi) * ind.sd
                                 * rng.standard_normal(pop.n, dtype=np.float32))
        was_eligible = pop.eligible
        scoring.apply(pop, scoring.evaluate(pop, sc, self.state.cutoff))
        lost = pop.invited & ~pop.eligible
        regained = ~pop.invited & (pop.vintage >= 0) & pop.eligible & ~pop.closed
        pop.invited[lost] = False
        pop.invited[regained] = True
        admitted = 0
        phase = invites.active_phase(sc.rollout, date)
        if sc.reevaluation.admit_new and phase is not None:
            reach = invites.in_phase_reach(pop, sc, phase) & pop.eligible
            covered = np.count_nonzero(reach & pop.invited)
            coverage = covered / max(np.count_nonzero(reach), 1)
            bucket = invites.sticky_bucket(pop.n, f"{sc.rollout.name}:reevaluation")
            new = np.flatnonzero(reach & ~was_eligible & (pop.vintage < 0) & ~pop.closed
                                 & invites.in_rollout(bucket, 100.0 * coverage))
            if new.size:
                self._record_batch(new, date, phase.name, "reevaluation")
                self.state.count("new_invites", -new.size)  # counted as gained, not invites
                self.state.count("batches", -1)
            admitted = new.size
        self.state.count("lost_access", int(lost.sum()))
        self.state.count("gained_access", int(regained.sum()) + admitted)

    def recorder_process(self):
        for month, day in enumerate(self.month_ends, start=1):
            yield self.at(day - 1, "recorder")
            self.recorder.snapshot(self.pop, self.visible(), date=self.date(day - 1),
                                   month=month, flows=self.state.flows)
            self.state.flows = {}
            if self.progress is not None:
                self.progress(month, self.months)

    # ------------------------------------------------------------------ run
    def run(self) -> Result:
        started = time.perf_counter()
        for proc in (self.calendar, self.rollout, self.monthly, self.reevaluation,
                     self.recorder_process):
            self.env.process(proc())
        self.env.run(until=self.horizon + 1)
        monthly = self.recorder.monthly_frame()
        batches = pd.DataFrame(
            self.state.batches,
            columns=["vintage", "date", "phase", "kind", "users", "accounts", "holiday"],
        )
        batches["date"] = pd.to_datetime(batches["date"])
        summary = summarize(self, monthly)
        return Result(self.scenario, self.seed, monthly, self.recorder.segment_frame(), batches,
                      summary, self.pop, time.perf_counter() - started)


def age_behaviour(pop: Population, scenario: Scenario, rng: np.random.Generator) -> None:
    """One month of behaviour: drift, dormancy and waking, device switches, ID expiry."""
    b = scenario.behaviour
    n = pop.n
    pop.account_age_months += 1
    pop.credit_history_years += np.float32(1 / 12)
    for name in ("payments_per_month", "monthly_spend", "wealth_balance", "wealth_days"):
        arr = getattr(pop, name)
        arr *= np.exp(b.drift_sd * rng.standard_normal(n, dtype=np.float32))
    np.minimum(pop.wealth_days, 365, out=pop.wealth_days)  # days held in the past year
    np.maximum(pop.awakened_months - 1, 0, out=pop.awakened_months, casting="unsafe")
    u = rng.random(n, dtype=np.float32)
    waking = pop.dormant & (u < b.wake_rate)
    sleeping = ~pop.dormant & (u < b.dormancy_rate)
    pop.dormant[waking] = False
    pop.dormant[sleeping] = True
    pop.awakened_months[waking] = b.awakened_months
    pop.payments_per_month[waking] *= np.float32(b.awakened_payment_boost)
    pop.device_switches[:] = rng.poisson(b.device_switch_rate, n).clip(0, 127)
    u = rng.random(n, dtype=np.float32)
    expired = pop.id_expired_months >= 0
    renewed = expired & (u < b.id_renewal_rate)
    expiring = ~expired & (u < b.id_expiry_rate)
    pop.id_expired_months[expired] += 1
    pop.id_expired_months[renewed] = -1
    pop.id_expired_months[expiring] = 0


def _maybe(x) -> float | None:
    return None if pd.isna(x) else float(x)


def summarize(sim: Simulation, monthly: pd.DataFrame) -> dict:
    """The headline figures of a run, JSON-ready."""
    pop, sc = sim.pop, sim.scenario
    horizon = sc.risk.auc_horizon_months
    pd_h = 1.0 - (1.0 - pop.hazard.astype(np.float64)) ** horizon
    q = quarterly(monthly)
    reasons = sim.initial_reasons
    why_not = {name: float(np.count_nonzero(reasons & bit) * pop.weight)
               for name, bit in scoring.REASONS.items()}
    last = monthly.iloc[-1]
    return {
        "scenario": sc.name,
        "strategy": sc.rollout.name,
        "seed": sim.seed,
        "users": pop.n,
        "weight": pop.weight,
        "population": float(pop.n * pop.weight),
        "months": sim.months,
        "score_auc": round(weighted_auc(pop.score, pd_h), 6),
        "score_auc_horizon_months": horizon,
        "mean_monthly_hazard": float(pop.hazard.mean()),
        "final": {
            "eligible_share": float(last["eligible_share"]),
            "invited_share": float(last["invited_share"]),
            "visible_share": float(last["visible_share"]),
        },
        "batches": len(sim.state.batches),
        "quarters": [
            {
                "quarter": int(r.quarter),
                "date": str(pd.Timestamp(r.date).date()),
                "eligible_share": float(r.eligible_share),
                "invited_share": float(r.invited_share),
                "visible_share": float(r.visible_share),
                "gained_access": float(r.gained_access),
                "lost_access": float(r.lost_access),
                "gained_rate": _maybe(r.gained_rate),
                "lost_rate": _maybe(r.lost_rate),
                "churn_rate": _maybe(r.churn_rate),
            }
            for r in q.itertuples()
        ],
        "not_eligible_at_start": why_not,
    }


def run(scenario: Scenario, seed: int | None = None, progress: Progress | None = None,
        quarters: int | None = None) -> Result:
    """Simulate ``scenario`` with ``seed`` (default: the scenario's own) and return the result.

    ``quarters`` simulates only the first quarters of the scenario's horizon (its calendar,
    phases and releases stay as written), which is how short test and benchmark runs are made.
    """
    return Simulation(scenario, seed, progress, quarters).run()
