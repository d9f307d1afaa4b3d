"""The calendar: one SimPy environment whose processes update the population in bulk.

Time is in days from ``scenario.start``. Three kinds of process share the calendar: the
calendar of dated events, one rollout per A/B arm, and the month end, which runs the month's
steps (:data:`MONTH_STEPS`) in order. Processes that fall on the same day run in a fixed order
given by their offset within the day (:data:`AT`), never by the order they happened to be
scheduled in, so a run is the same whatever else is added to the calendar.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine import arms
from sim.engine.recorder import Flows, Observation, Recorder, segment_months
from sim.engine.result import Result
from sim.engine.summary import summarize
from sim.engine.tables import rows_table
from sim.model import (
    behaviour,
    capital,
    credit,
    fraud,
    gates,
    invites,
    numeric,
    reevaluation,
    release,
    scoring,
)
from sim.model.population import assign_latent_risk, synthesize
from sim.model.streams import Streams, generator
from sim.scenario import Scenario, add_months

#: Offsets within a day: calendar events, then rollout batches, then the month end.
AT = {"calendar": 0.0, "rollout": 0.25, "month_end": 0.5}

#: The month end's steps, in order, on the last day of each month (DESIGN.md's order); each
#: is the model function of the same name (``behaviour.age``, ``release.adopt`` (as
#: ``release.Adoption.step``, which keeps who is behind),
#: ``credit.month``, ``fraud.month``, ``reevaluation.reevaluate`` at the end of each
#: evaluation period) and the recorder last, so it sees the month's state after every
#: change. Credit comes before fraud: a signal found this month hides the entry after the
#: month's draws, as detection follows the transactions it reads.
MONTH_STEPS = ("behaviour", "release", "credit", "fraud", "reevaluation", "recorder")
#: The :class:`Simulation` method that runs each step.
STEP_METHODS = {"behaviour": "age", "release": "adopt", "fraud": "fraud_month",
                "credit": "credit_month", "reevaluation": "reevaluate", "recorder": "collect"}

#: The changing arrays a scoring sums that no step checks where it writes them (the
#: indicators' drift, the repayment points): named when the score is not finite.
SCORED = ("other_indicators", "score_adjust")

Progress = Callable[[int, int], None]

#: Where a run's time goes (:attr:`Result.timings`): building the population, the calendar
#: and rollout processes, each month-end step and making the tables at the end.
TIMED = ("setup", "calendar", "rollout", *MONTH_STEPS, "tables")


@dataclass(frozen=True)
class Month:
    """The month a month end closes: its number (1 first), the day index of its last day,
    its length in days and its date."""

    number: int
    day: int
    days: int
    date: dt.date


@dataclass
class State:
    """What the processes share besides the population arrays."""

    scenario: Scenario
    cutoff: float
    newest_version: int
    holidays: set[str] = field(default_factory=set)
    batches: list[dict] = field(default_factory=list)
    batch_months: list[int] = field(default_factory=list)  # month whose snapshot first has it
    macro_shocks: dict[str, float] = field(default_factory=dict)

    @property
    def holiday(self) -> bool:
        return bool(self.holidays)

    @property
    def macro(self) -> float:
        """The macro factor on default hazard: the product of the shocks in force."""
        return float(np.prod(list(self.macro_shocks.values()))) if self.macro_shocks else 1.0


class Simulation:
    """One run of a scenario: builds the population, registers the processes, runs them.

    ``quarters`` (default the scenario's) is the rollout horizon; ``run_off`` months (default
    ``reporting.run_off_months``) follow it with no new invitations, so that every batch
    matures before it is judged.
    """

    def __init__(self, scenario: Scenario, progress: Progress | None = None,
                 quarters: int | None = None, run_off: int | None = None):
        if quarters is not None and not 1 <= quarters <= scenario.quarters:
            raise ValueError(f"quarters must be between 1 and the scenario's {scenario.quarters}")
        self.scenario = scenario
        self.rollout_months = 3 * (quarters or scenario.quarters)
        self.run_off = scenario.reporting.run_off_months if run_off is None else run_off
        self.months = self.rollout_months + self.run_off
        self.seed = scenario.seed  # the one seed: another run is scenario.replace({"seed": n})
        self.progress = progress
        self.timings = dict.fromkeys(TIMED, 0.0)
        started = time.perf_counter()
        self.streams = Streams(self.seed)
        self.env = simpy.Environment()
        self.pop = synthesize(scenario, generator(self.seed, "population"))
        first = scoring.evaluate(self.pop, scenario, structural=True)
        numeric.check_finite(first.score, name="score", process="scoring", month=0,
                            key="scoring")
        # Latent risk follows what behaviour says (risk.structural_score: the score without
        # the segment offsets fitted to access and its transient "other indicators"), so
        # score noise and access calibration move access, not risk.
        assign_latent_risk(self.pop, scenario, first.structural,
                           generator(self.seed, "risk"))
        numeric.check_probability(self.pop.hazard, name="monthly default hazard", process="risk",
                                 month=0, key=("risk.monthly_hazard", "risk.dispersion"))
        invites.decide(self.pop, first)
        self.state = State(
            scenario=scenario,
            cutoff=scenario.scoring.cutoff,
            newest_version=release.latest_released(scenario.release, scenario.start),
        )
        self.visibility = release.visibility_rates(scenario.release)
        self.adoption = release.Adoption()  # who is behind the newest version
        self._checked = False  # whether the population's fixed arrays have been checked
        self.region_open = np.array([r.open for r in scenario.population.regions.values()])
        self.entry_shown = self._entry_shown()
        self.recorder = Recorder(bands=scenario.reporting.bands,
                                 crosses=scenario.reporting.crosses,
                                 maturity=scenario.credit.vintage_maturity_months,
                                 capital_limit=scenario.capital.max_outstanding)
        self.flows = Flows()  # this month's; the month end starts a new one
        self.month_ends = []
        for m in range(1, self.months + 1):
            try:
                self.month_ends.append((add_months(scenario.start, m) - scenario.start).days)
            except (ValueError, OverflowError):  # a run-off past the year 9999 stops there
                break
        self.months = len(self.month_ends)
        self.run_off = self.months - self.rollout_months
        self.recorder.segment_months = segment_months(scenario.reporting.segment_months,
                                                      self.months)
        self.recorder.ecl_months = segment_months(scenario.reporting.ecl_months, self.months)
        self.horizon = self.month_ends[self.rollout_months - 1]  # invitations stop here
        self.end = self.month_ends[-1]  # the run-off goes on to here
        # who the first scoring excludes and why, counted now (the summary reports it)
        self.initial_reasons = {name: int(np.count_nonzero(first.reasons & bit))
                                for name, bit in scoring.REASONS.items()}
        self.book = credit.new_book(self.pop.n)
        self.fraud = fraud.new_fraud_book(self.pop.n, scenario.fraud, self.streams,
                                          scenario.start.year)
        self.max_outstanding = scenario.capital.max_outstanding
        self.capital_fen = capital.simulated_limit(self.pop.weight, self.max_outstanding)
        # outstanding CNY: the last credit month's closing balance (None before the first)
        self._lent: float | None = None
        self.plans = scenario.strategies()  # A/B arm name -> its strategy
        self.arm_names = tuple(self.plans)
        self.arm = (np.zeros(self.pop.n, dtype=np.int8) if scenario.ab is None else
                    arms.assignment(self.pop.n, scenario.ab, self.seed))
        self.holdout = np.zeros(self.pop.n, dtype=bool)
        self.gate_rows: list[dict] = []
        self.timings["setup"] = time.perf_counter() - started

    # ------------------------------------------------------------------ helpers
    def date(self, day: float) -> dt.date:
        return self.scenario.start + dt.timedelta(days=int(day))

    def at(self, day: int, what: str):
        """A timeout that wakes the caller on ``day`` at the slot reserved for ``what``."""
        return self.env.timeout(max(0.0, day + AT[what] - self.env.now))

    def visible(self) -> np.ndarray:
        """Invited, entry shown on the client version, not hidden by R1/R2, region open."""
        pop = self.pop
        shown = pop.invited & self.entry_shown
        # "and not" of two flags as ">": one pass, no negated temporary
        np.greater(shown, pop.hidden, out=shown)
        return np.greater(shown, pop.closed, out=shown)

    def _entry_shown(self, users: np.ndarray | None = None,
                     version: int | None = None) -> np.ndarray:
        """Entry shown on the client version and region open, for ``users`` (default
        everyone; ``version`` when they all run it): it changes only for clients that
        upgrade (:meth:`adopt`), so it is kept and updated for them."""
        shown = release.entry_visible(self.pop, self.visibility, users, version)
        region = self.pop.region if users is None else self.pop.region[users]
        # and not in a closed region: one comparison per closed region (few), not a lookup
        # indexed by the one-byte codes (which widens them to 8 bytes: 90x slower)
        for code in np.flatnonzero(~self.region_open):
            np.greater(shown, region == int(code), out=shown)  # a Python int keeps int8
        return shown

    def _outstanding(self) -> float:
        """The book's outstanding in CNY (:func:`capital.outstanding`): the last credit
        month's closing balance (only the credit month moves balances, and the rollout asks
        before every batch), summed only before the first."""
        if self._lent is None:
            self._lent = capital.outstanding(self.book, self.pop.weight)
        return self._lent

    def _capital_binds(self) -> bool:
        """Whether the capital limit holds invitations back now (:func:`capital.binds`)."""
        return self.max_outstanding is not None and capital.binds(
            self.book, self.pop.weight, self.max_outstanding, self._outstanding())

    def _within(self, arm: int) -> np.ndarray | None:
        """The users of A/B arm ``arm`` (None: everyone, when there are no arms)."""
        return None if self.scenario.ab is None else self.arm == arm

    # ------------------------------------------------------------------ calendar
    def calendar(self):
        """Holidays, version releases and policy changes at their dates."""
        sc = self.scenario
        events: list[tuple[int, int, Callable[[], None]]] = []

        def add(day: dt.date, order: int, action):
            offset = (day - sc.start).days
            if 0 <= offset < self.end:
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
        for i, shock in enumerate(sc.macro.shocks):
            key = shock.name or f"shock{i}"
            add(shock.start, 3, lambda k=key, s=shock: self.state.macro_shocks.__setitem__(
                k, s.hazard_multiplier))
            add(shock.end + dt.timedelta(days=1), 3,
                lambda k=key: self.state.macro_shocks.pop(k, None))
            if shock.start < sc.start <= shock.end:
                self.state.macro_shocks[key] = shock.hazard_multiplier
        events.sort(key=lambda e: (e[0], e[1]))
        for day, _, action in events:
            yield self.at(day, "calendar")
            action()

    # ------------------------------------------------------------------ rollout
    def rollout(self, arm: int = 0):
        """Send one arm's batches on each phase's cadence, outside freeze windows, as its gates
        allow (without an ``ab`` section the one arm is the whole population)."""
        sc = self.scenario
        plan = self.plans[self.arm_names[arm]]
        within = self._within(arm)
        state = gates.GateState()
        for phase in plan.phases:
            start = (phase.start - sc.start).days
            end = min((invites.phase_end(plan, phase, sc.end) - sc.start).days, self.horizon)
            bucket = (invites.sticky_bucket(self.pop.n, invites.salt_of(plan, phase))
                      if invites.uses_buckets(phase) else None)
            gated = bool(plan.gates or phase.gates)  # no gates: every batch goes
            # Between month ends only invitations take users out of a phase's pool (access,
            # versions and scores change in month-end steps), so the month's later batches
            # start from the candidates its first batch found, less those invited since,
            # with their order keys (scores change at month ends too)
            kept, keys, kept_at = None, None, -1
            for day in range(start, end, phase.cadence_days):
                done = bisect.bisect_right(self.month_ends, day)  # month ends before the batch
                if done != kept_at:
                    kept = None  # not held through a month end
                yield self.at(day, "rollout")
                date = self.date(day)
                if any(w.contains(date) for w in plan.freeze):
                    continue
                if self._capital_binds():
                    self.flows.capital_bound = True  # the limit held this batch back
                    continue
                verdict = self._gate(arm, plan, phase, date, day, state) if gated else "go"
                if verdict == "halt":
                    return
                if verdict == "halt_phase":
                    break
                if verdict == "pause":
                    continue
                if kept is None:
                    kept = invites.batch_pool(self.pop, sc, phase, within)
                    keys = (None if phase.ramp is not None else
                            invites.order_key(self.pop, phase.ordering, bucket, kept))
                else:
                    kept, keys = invites.uninvited(self.pop, kept, keys)
                kept_at = done
                users = invites.next_batch(self.pop, sc, phase, date, self.state.holiday, bucket,
                                           within, state.factor, pool=kept, keys=keys)
                if users.size:
                    self._record_batch(users, date, phase.name, "batch", arm)
                if plan.holdout is not None:
                    self.send_holdout(arm, plan, phase, date)

    def _gate(self, arm: int, plan, phase, date: dt.date, day: int,
              state: gates.GateState) -> str:
        """Judge the gates before a batch (:func:`gates.check`); record each decision."""
        name = self.arm_names[arm]
        done = bisect.bisect_right(self.month_ends, day)  # month-end snapshots so far
        ids, ages, _ = gates.sent_vintages(self.state.batches, self.state.batch_months, name,
                                           done)
        verdict, rows = gates.check(
            plan, phase, state, vintage=self.pop.vintage, dpd30=credit.dpd30(self.book),
            opened=self.book.opened, ids=ids, ages=ages, weight=self.pop.weight,
            capital_use=lambda: gates.capital_reading(
                self._outstanding(), self.max_outstanding))
        self.gate_rows += [gates.row(date, name, phase.name, g, scope, reading, decision, act,
                                     state.factor)
                           for g, scope, reading, decision, act in rows]
        return verdict

    def send_holdout(self, arm: int, plan, phase, date: dt.date) -> None:
        """Invite the strategy's holdout below the cut-off in the phase's reach, flagged."""
        users = invites.holdout_batch(self.pop, self.scenario, plan, phase, self.state.cutoff,
                                      self._within(arm))
        if users.size:
            self.holdout[users] = True
            self._record_batch(users, date, phase.name, "holdout", arm)

    def _record_batch(self, users: np.ndarray, date: dt.date, phase: str, kind: str,
                      arm: int = 0) -> None:
        """Invite ``users`` as a new vintage and enter it in the batches ledger; counted as
        new invites unless it is a re-evaluation admission (counted as access gained)."""
        vintage = len(self.state.batches)
        invites.invite(self.pop, users, vintage)
        self.state.batches.append({
            "vintage": vintage, "date": date, "phase": phase, "kind": kind,
            "users": int(users.size), "accounts": users.size * self.pop.weight,
            "holiday": self.state.holiday, "arm": self.arm_names[arm],
        })
        self.state.batch_months.append(
            bisect.bisect_right(self.month_ends, (date - self.scenario.start).days) + 1)
        if kind != "reevaluation":
            self.flows.count("new_invites", users.size)
            self.flows.count("batches", 1)

    # ------------------------------------------------------------------ month end
    def month_end(self):
        """At each month's last day, the month's steps (:data:`MONTH_STEPS`) in order, each
        timed; then a new month's flows."""
        steps = self.steps()
        timings, previous = self.timings, 0
        for number, day in enumerate(self.month_ends, start=1):
            yield self.at(day - 1, "month_end")
            month = Month(number, day - 1, day - previous, self.date(day - 1))
            previous = day
            for name, step in steps:
                started = time.perf_counter()
                step(month)
                timings[name] += time.perf_counter() - started
            self.flows = Flows()
            if self.progress is not None:
                self.progress(number, self.months)

    def steps(self) -> tuple[tuple[str, Callable[[Month], None]], ...]:
        """The month end's steps in order, by name (:data:`MONTH_STEPS`)."""
        return tuple((name, getattr(self, STEP_METHODS[name])) for name in MONTH_STEPS)

    def age(self, month: Month) -> None:
        """Behaviour ages a month (:func:`behaviour.age`); in the months the score reads it
        (each re-evaluation and the last month) the drift since the last read is drawn
        (:func:`behaviour.settle`)."""
        with np.errstate(over="ignore"):  # overflow is reported by the guard below
            behaviour.age(self.pop, self.scenario, self.streams, month.number)
            months = behaviour.pending(month.number, self.scenario.reevaluation.every_months,
                                       self.months)
            if months:
                behaviour.settle(self.pop, self.scenario, self.streams, month.number, months)
                # everything at the first read; then what behaviour wrote (the score, which
                # sums the other changing arrays, is checked after each scoring)
                numeric.check_population(
                    self.pop, process="behaviour", month=month.number,
                    key="behaviour.drift_sd", fixed=not self._checked,
                    names=behaviour.WRITTEN if self._checked else None)
                self._checked = True  # the fixed arrays hold from now on

    def adopt(self, month: Month) -> None:
        """Clients move along the adoption curve to the newest version (:func:`release.adopt`,
        the users behind kept from month to month)."""
        newest = self.state.newest_version
        moved = self.adoption.step(self.pop, self.scenario.release, newest, month.days,
                                   self.streams, month.number)
        self.entry_shown[moved] = self._entry_shown(moved, version=newest)

    def fraud_month(self, month: Month) -> None:
        """Risk signals, R1 expiry and R2 reviews (:func:`fraud.month`)."""
        self.flows.fraud = fraud.month(self.fraud, self.pop, self.scenario.fraud,
                                       day=month.day, year=month.date.year,
                                       streams=self.streams, month=month.number)

    def credit_month(self, month: Month) -> None:
        """Every credit line's month (:func:`credit.month`)."""
        self._lent = None  # balances move
        try:
            self.flows.credit = credit.month(
                self.book, self.pop, self.scenario, month=month.number, day=month.day,
                days=month.days, date=month.date, visible=self.visible(),
                macro=self.state.macro, streams=self.streams, capital=self.capital_fen,
                fraudster=self.fraud.fraudster)
            # the month's closing balance is the book's outstanding (to the fen): no sum
            self._lent = capital.real_cny(self.flows.credit["closing_balance"], self.pop.weight)
            if self.flows.credit.get("capital_capped"):
                self.flows.capital_bound = True  # the limit held raises or draws back
        except credit.HazardTooHigh as exc:
            raise numeric.numeric_error(
                "credit", month.number, "the chance of missing a payment (default hazard x "
                f"macro factor {self.state.macro:g} / roll-through to 90+)", str(exc),
                ("risk.monthly_hazard", "risk.dispersion", "macro.shocks",
                 "credit.delinquency.cure")) from None

    def reevaluate(self, month: Month) -> None:
        """At the end of each evaluation period, re-score everyone, revoke and give back
        access (:func:`reevaluation.reevaluate`), and admit the newly eligible in each arm's
        active phase unless the capital limit holds or the rollout is over (run-off)."""
        sc = self.scenario
        if month.number % sc.reevaluation.every_months:
            return
        pop = self.pop
        change = reevaluation.reevaluate(pop, sc, self.state.cutoff, self.holdout,
                                         self.streams, month.number)
        admitted = 0
        phases = [invites.active_phase(plan, month.date) for plan in self.plans.values()]
        admit = (sc.reevaluation.admit_new and any(p is not None for p in phases)
                 and month.number <= self.rollout_months)
        if admit and self._capital_binds():
            self.flows.capital_bound = True  # the limit holds admissions back
            admit = False
        for arm, phase in enumerate(phases if admit else []):
            if phase is not None:
                users = reevaluation.admissions(pop, sc, self.plans[self.arm_names[arm]],
                                                phase, change.was_eligible, self._within(arm))
                if users.size:
                    self._record_batch(users, month.date, phase.name, "reevaluation", arm)
                admitted += users.size
        self.flows.count("lost_access", int(change.lost.sum()))
        self.flows.count("gained_access", int(change.regained.sum()) + int(admitted))
        try:
            numeric.check_finite(pop.score, name="score", process="reevaluation",
                                 month=month.number, key="scoring")
        except numeric.NumericError:  # name the changing array the score summed, if one is
            numeric.check_population(pop, process="reevaluation", month=month.number,
                                     key="scoring", fixed=False, names=SCORED)
            raise

    def collect(self, month: Month) -> None:
        """The recorder collects the month (:meth:`Recorder.collect`)."""
        self.recorder.collect(self.observe(month))

    def observe(self, month: Month) -> Observation:
        """What the recorder sees at this month end."""
        return Observation(
            date=month.date, month=month.number, scenario=self.scenario, pop=self.pop,
            visible=self.visible(), book=self.book, fraud=self.fraud, flows=self.flows,
            macro=self.state.macro, batches=self.state.batches,
            batch_months=self.state.batch_months, arm=self.arm, arm_names=self.arm_names)

    # ------------------------------------------------------------------ run
    def _timed(self, name: str, process):
        """Run the generator ``process`` for SimPy, adding the time of each of its steps to
        ``timings[name]`` (two clock reads per step: a few hundred per run)."""
        timings, value = self.timings, None
        while True:
            started = time.perf_counter()
            try:
                event = process.send(value)
            except StopIteration:
                timings[name] += time.perf_counter() - started
                return
            timings[name] += time.perf_counter() - started
            value = yield event

    def run(self) -> Result:
        started = time.perf_counter()
        self.env.process(self._timed("calendar", self.calendar()))
        for arm in range(len(self.arm_names)):
            self.env.process(self._timed("rollout", self.rollout(arm)))
        self.env.process(self.month_end())  # timed step by step
        self.env.run(until=self.end + 1)
        tables_started = time.perf_counter()
        # the tables as recorded: DataFrames are made only when read (Result)
        rec = self.recorder
        monthly = rec.monthly_table(self.rollout_months)
        batches = rows_table(
            self.state.batches,
            ["vintage", "date", "phase", "kind", "users", "accounts", "holiday", "arm"],
            dates=("date",))
        vintages = rec.vintage_table([b["arm"] for b in self.state.batches])
        gate_table = rows_table(self.gate_rows, gates.GATE_COLUMNS, dates=("date",))
        summary = summarize(self, monthly.columns)
        segments = rec.segment_table()
        ab = self.scenario.ab
        shares = [1.0] if ab is None else [a.share for a in ab.arms.values()]
        arm_table = arms.arm_table(self.arm, self.arm_names, shares, self.pop, self.book,
                                   self.holdout, rec.rows["arms"])
        summary["warnings"] = []
        self.timings["tables"] = time.perf_counter() - tables_started
        return Result(self.scenario, self.seed, monthly, segments, batches,
                      vintages, summary, self.pop,
                      self.timings["setup"] + time.perf_counter() - started, self.book,
                      self.fraud, self.arm,
                      self.arm_names, self.holdout, arm_table, gate_table,
                      timings=dict(self.timings))
