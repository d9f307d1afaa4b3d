"""The calendar: one SimPy environment whose processes update the population in bulk.

Time is in days from ``scenario.start``. Processes that fall on the same day run in a fixed
order given by their offset within the day (:data:`AT`), never by the order they happened to
be scheduled in, so a run is the same whatever else is added to the calendar.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from sim.engine import arms
from sim.engine.recorder import Recorder, quarterly, vintage_rows
from sim.engine.result import Result
from sim.model import behaviour, credit, fraud, gates, invites, numeric, release, scoring
from sim.model.population import assign_latent_risk, synthesize, weighted_auc
from sim.scenario import Scenario, add_months

#: Offsets within a day: calendar events, then rollout batches, then month-end work
#: (behaviour, fraud signals, credit lines, re-evaluation, snapshot).
AT = {"calendar": 0.0, "rollout": 0.25, "monthly": 0.5, "fraud": 0.52, "credit": 0.55,
      "reevaluation": 0.6, "recorder": 0.9}

#: Named random streams. Each is ``SeedSequence(seed, spawn_key=(i,))``: adding a stream at the
#: end never changes the others, and the population stream is the same for every strategy.
STREAMS = ("population", "risk", "behaviour", "release", "rollout", "reevaluation", "credit",
           "fraud")

Progress = Callable[[int, int], None]

#: Where a run's time goes (:attr:`Result.timings`): building the population, each calendar
#: process (by the name of its slot in :data:`AT`; ``monthly`` is the behaviour ageing) and
#: making the tables at the end.
TIMED = ("setup", "calendar", "rollout", "monthly", "fraud", "credit", "reevaluation",
         "recorder", "tables")


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
    batch_months: list[int] = field(default_factory=list)  # month whose snapshot first has it
    flows: dict[str, float] = field(default_factory=dict)
    macro_shocks: dict[str, float] = field(default_factory=dict)
    capital_bound: bool = False  # the capital cap held back invitations this month
    credit_flows: dict[str, int] = field(default_factory=dict)
    fraud_flows: dict[str, int] = field(default_factory=dict)

    @property
    def holiday(self) -> bool:
        return bool(self.holidays)

    @property
    def macro(self) -> float:
        """The macro factor on default hazard: the product of the shocks in force."""
        return float(np.prod(list(self.macro_shocks.values()))) if self.macro_shocks else 1.0

    def count(self, key: str, amount: float) -> None:
        self.flows[key] = self.flows.get(key, 0) + amount


class Simulation:
    """One run of a scenario: builds the population, registers the processes, runs them."""

    def __init__(self, scenario: Scenario, progress: Progress | None = None,
                 quarters: int | None = None):
        if quarters is not None and not 1 <= quarters <= scenario.quarters:
            raise ValueError(f"quarters must be between 1 and the scenario's {scenario.quarters}")
        self.scenario = scenario
        self.months = 3 * (quarters or scenario.quarters)
        self.seed = scenario.seed  # the one seed: another run is scenario.replace({"seed": n})
        self.progress = progress
        self.timings = dict.fromkeys(TIMED, 0.0)
        started = time.perf_counter()
        self.rng = streams(self.seed)
        self.env = simpy.Environment()
        self.pop = synthesize(scenario, self.rng["population"])
        first = scoring.evaluate(self.pop, scenario)
        numeric.check_finite(first.score, name="score", process="scoring", month=0,
                            key="scoring")
        # Latent risk follows what behaviour says (the score without its transient "other
        # indicators" part), so quarter-to-quarter score noise moves access, not risk.
        assign_latent_risk(self.pop, scenario, first.score - self.pop.other_indicators,
                           self.rng["risk"])
        numeric.check_probability(self.pop.hazard, name="monthly default hazard", process="risk",
                                 month=0, key=("risk.monthly_hazard", "risk.dispersion"))
        scoring.apply(self.pop, first)
        self.state = State(
            scenario=scenario,
            cutoff=scenario.scoring.cutoff,
            newest_version=release.latest_released(scenario.release, scenario.start),
        )
        self.visibility = release.visibility_rates(scenario.release)
        self.region_open = np.array([r.open for r in scenario.population.regions.values()])
        self.recorder = Recorder(bands=scenario.reporting.bands,
                                 crosses=scenario.reporting.crosses)
        self.month_ends = [(add_months(scenario.start, m) - scenario.start).days
                           for m in range(1, self.months + 1)]
        self.horizon = self.month_ends[-1]
        self.initial_reasons = first.reasons.copy()
        self.book = credit.new_book(self.pop.n)
        self.fraud = fraud.new_fraud_book(self.pop.n, scenario.fraud, self.rng["fraud"],
                                          scenario.start.year)
        self.max_outstanding = scenario.capital.max_outstanding
        self.plans = scenario.strategies()  # A/B arm name -> its strategy
        self.arm_names = tuple(self.plans)
        self.arm = (np.zeros(self.pop.n, dtype=np.int8) if scenario.ab is None else
                    invites.assign_arms(self.pop.n, scenario.ab.salt,
                                        [a.share for a in scenario.ab.arms.values()]))
        self.holdout = np.zeros(self.pop.n, dtype=bool)
        self.gate_rows: list[dict] = []
        self.arm_rows: list[dict] = []  # the "arm" segment rows of every month
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
        return (pop.invited & release.entry_visible(pop, self.visibility)
                & self.region_open[pop.region] & ~pop.hidden & ~pop.closed)

    def outstanding(self) -> float:
        """Total drawn balance in CNY (weighted)."""
        return float(self.book.balance.sum()) * self.pop.weight / credit.FEN

    def capital_binds(self) -> bool:
        """Whether the capital cap on outstanding stops new invitations now (and flag it)."""
        if self.max_outstanding is None or self.outstanding() < self.max_outstanding:
            return False
        self.state.capital_bound = True
        return True

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

    def _within(self, arm: int) -> np.ndarray | None:
        """The users of A/B arm ``arm`` (None: everyone, when there are no arms)."""
        return None if self.scenario.ab is None else self.arm == arm

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
            bucket = invites.sticky_bucket(self.pop.n, invites.salt_of(plan, phase))
            for day in range(start, end, phase.cadence_days):
                yield self.at(day, "rollout")
                date = self.date(day)
                if any(w.contains(date) for w in plan.freeze):
                    continue
                if self.capital_binds():
                    continue
                verdict = self._gate(arm, plan, phase, date, day, state)
                if verdict == "halt":
                    return
                if verdict == "halt_phase":
                    break
                if verdict == "pause":
                    continue
                users = invites.next_batch(self.pop, sc, phase, date, self.state.holiday, bucket,
                                           within, state.factor)
                if users.size:
                    self._record_batch(users, date, phase.name, "batch", arm)
                if plan.holdout is not None:
                    self._send_holdout(arm, plan, phase, date, within)

    def _gate(self, arm: int, plan, phase, date: dt.date, day: int,
              state: gates.GateState) -> str:
        """Judge the strategy's and the phase's gates before a batch; record each decision."""
        specs = [(g, "rollout") for g in plan.gates] + [(g, "phase") for g in phase.gates]
        if not specs:
            return "go"
        name = self.arm_names[arm]
        mine = [b["vintage"] for b in self.state.batches
                if b["arm"] == name and b["kind"] == "batch"]
        sent = sum(self.state.batches[v]["accounts"] for v in mine)
        done = bisect.bisect_right(self.month_ends, day)  # month-end snapshots so far
        ids = np.array(mine, dtype=np.int64)
        ages = done - np.array(self.state.batch_months, dtype=np.int64)[ids] if mine else ids
        dpd30 = (self.book.state >= credit.D31_60) & (self.book.state <= credit.DEFAULT)
        verdicts, rows = [], []
        for gate, scope in specs:
            if gate.metric == "capital_use":
                reading = gates.capital_reading(self.outstanding(), self.max_outstanding)
            else:
                reading = gates.vintage_reading(self.pop.vintage, dpd30, ids, ages,
                                                gate.months_on_book, gate.min_accounts,
                                                self.pop.weight)
            decision = gates.judge(gate, reading, sent)
            act = gates.action(gate, decision)
            verdicts.append((gate, scope, act))
            rows.append((gate, scope, reading, decision, act))
        verdict = gates.combine(state, verdicts)
        self.gate_rows += [gates.row(date, name, phase.name, g, scope, reading, decision, act,
                                     state.factor)
                           for g, scope, reading, decision, act in rows]
        return verdict

    def _send_holdout(self, arm: int, plan, phase, date: dt.date,
                      within: np.ndarray | None) -> None:
        """Invite the strategy's holdout below the cut-off in the phase's reach, flagged."""
        h = plan.holdout
        bucket = invites.sticky_bucket(self.pop.n, h.salt or f"{plan.name}:holdout")
        pool = invites.holdout_pool(self.pop, self.scenario, phase, self.state.cutoff, h.margin,
                                    bucket, h.share)
        if within is not None:
            pool &= within
        users = np.flatnonzero(pool)
        if users.size:
            self.holdout[users] = True
            self._record_batch(users, date, phase.name, "holdout", arm)

    def _record_batch(self, users: np.ndarray, date: dt.date, phase: str, kind: str,
                      arm: int = 0) -> None:
        vintage = len(self.state.batches)
        invites.invite(self.pop, users, vintage)
        self.state.batches.append({
            "vintage": vintage, "date": date, "phase": phase, "kind": kind,
            "users": int(users.size), "accounts": users.size * self.pop.weight,
            "holiday": self.state.holiday, "arm": self.arm_names[arm],
        })
        self.state.batch_months.append(
            bisect.bisect_right(self.month_ends, (date - self.scenario.start).days) + 1)
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
                behaviour.age(self.pop, self.scenario, self.rng["behaviour"])
            numeric.check_population(self.pop, process="behaviour", month=month,
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
            numeric.check_finite(self.pop.score, name="score", process="reevaluation",
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
        lost = pop.invited & ~pop.eligible & ~self.holdout  # a holdout keeps its invitation
        regained = ~pop.invited & (pop.vintage >= 0) & pop.eligible & ~pop.closed
        pop.invited[lost] = False
        pop.invited[regained] = True
        admitted = 0
        phases = [invites.active_phase(plan, date) for plan in self.plans.values()]
        if (sc.reevaluation.admit_new and any(p is not None for p in phases)
                and not self.capital_binds()):
            for arm, phase in enumerate(phases):
                if phase is not None:
                    admitted += self._admit(arm, phase, date, was_eligible)
        self.state.count("lost_access", int(lost.sum()))
        self.state.count("gained_access", int(regained.sum()) + admitted)

    def _admit(self, arm: int, phase, date: dt.date, was_eligible: np.ndarray) -> int:
        """Admit newly eligible users of an arm in the phase's reach at the coverage the arm's
        rollout has reached there; returns how many."""
        pop, sc = self.pop, self.scenario
        plan = self.plans[self.arm_names[arm]]
        reach = invites.in_phase_reach(pop, sc, phase) & pop.eligible
        within = self._within(arm)
        if within is not None:
            reach &= within
        covered = np.count_nonzero(reach & pop.invited)
        coverage = covered / max(np.count_nonzero(reach), 1)
        bucket = invites.sticky_bucket(pop.n, f"{plan.name}:reevaluation")
        new = np.flatnonzero(reach & ~was_eligible & (pop.vintage < 0) & ~pop.closed
                             & invites.in_rollout(bucket, 100.0 * coverage))
        if new.size:
            self._record_batch(new, date, phase.name, "reevaluation", arm)
            self.state.count("new_invites", -new.size)  # counted as gained, not invites
            self.state.count("batches", -1)
        return int(new.size)

    def fraud_process(self):
        """Month-end risk signals, R1 expiry and R2 reviews."""
        for day in self.month_ends:
            yield self.at(day - 1, "fraud")
            self.state.fraud_flows = fraud.month_end(
                self.fraud, self.pop, self.scenario.fraud, day=day - 1,
                year=self.date(day - 1).year, rng=self.rng["fraud"])

    def credit_process(self):
        """Month-end credit lines: interest, delinquency, repayments, activation, draws."""
        previous = 0
        for month, day in enumerate(self.month_ends, start=1):
            yield self.at(day - 1, "credit")
            days, previous = day - previous, day
            try:
                flows = credit.month_end(
                    self.book, self.pop, self.scenario, month=month, day=day - 1, days=days,
                    date=self.date(day - 1), visible=self.visible(), macro=self.state.macro,
                    rng=self.rng["credit"])
            except credit.HazardTooHigh as exc:
                raise numeric.numeric_error(
                    "credit", month, "the chance of missing a payment (default hazard x macro "
                    f"factor {self.state.macro:g} / roll-through to 90+)", str(exc),
                    ("risk.monthly_hazard", "risk.dispersion", "macro.shocks",
                     "credit.delinquency.cure")) from None
            rate = self.scenario.credit.loss.funding_rate
            flows["funding_cost"] = round(flows["opening_balance"] * rate * days / 365.0)
            self.state.credit_flows = flows

    def _credit_snapshot(self) -> dict:
        book, pop = self.book, self.pop
        row = {**self.state.credit_flows, **self.state.fraud_flows}
        row.update(credit.stock(book, pop))
        row.update(fraud.stock(self.fraud))
        row.update(credit.expected_loss(book, pop, self.scenario, self.state.macro))
        row["macro_factor"] = self.state.macro
        if self.max_outstanding is not None and self.outstanding() >= self.max_outstanding:
            self.state.capital_bound = True
        row["capital_bound"] = self.state.capital_bound
        row["capital_limit"] = (np.nan if self.max_outstanding is None
                                else float(self.max_outstanding))
        return row

    def recorder_process(self):
        book = self.book
        maturity = self.scenario.credit.vintage_maturity_months
        for month, day in enumerate(self.month_ends, start=1):
            yield self.at(day - 1, "recorder")
            date = self.date(day - 1)
            ever_default = book.default_month >= 0
            visible = self.visible()
            per_user = {"borrowers": credit.borrowers(book), "defaults": ever_default,
                        "loss": book.cum_loss}
            self.recorder.snapshot(
                self.pop, visible, date=date, month=month, flows=self.state.flows,
                credit=self._credit_snapshot(), per_user=per_user)
            rows = arms.arm_segment_rows(self.arm, self.arm_names, self.pop, visible,
                                           per_user, date=date, month=month)
            self.arm_rows += rows
            if self.scenario.ab is not None:  # "arm" as one more segment dimension
                self.recorder.segments.extend(rows)
            dpd30 = (book.state >= credit.D31_60) & (book.state <= credit.DEFAULT)
            self.recorder.record_vintages(vintage_rows(
                self.pop.vintage, self.state.batches, self.state.batch_months, date=date,
                month=month, weight=self.pop.weight, maturity=maturity,
                arrays={"opened": book.opened, "dpd30": dpd30, "ever_default": ever_default,
                        "balance": book.balance, "cum_draw": book.cum_draw,
                        "cum_loss": book.cum_loss}))
            self.state.flows = {}
            self.state.capital_bound = False
            if self.progress is not None:
                self.progress(month, self.months)

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
        rollouts = [("rollout", lambda a=a: self.rollout(a)) for a in range(len(self.arm_names))]
        for name, proc in (("calendar", self.calendar), *rollouts, ("monthly", self.monthly),
                           ("fraud", self.fraud_process), ("credit", self.credit_process),
                           ("reevaluation", self.reevaluation),
                           ("recorder", self.recorder_process)):
            self.env.process(self._timed(name, proc()))
        self.env.run(until=self.horizon + 1)
        tables_started = time.perf_counter()
        monthly = self.recorder.monthly_frame()
        batches = pd.DataFrame(
            self.state.batches,
            columns=["vintage", "date", "phase", "kind", "users", "accounts", "holiday", "arm"],
        )
        batches["date"] = pd.to_datetime(batches["date"])
        vintages = self.recorder.vintage_frame()
        vintages.insert(1, "arm", batches["arm"].to_numpy()[vintages["vintage"].to_numpy()]
                        if len(vintages) else pd.Series(dtype=object))
        gate_table = pd.DataFrame(self.gate_rows, columns=list(gates.GATE_COLUMNS))
        gate_table["date"] = pd.to_datetime(gate_table["date"])
        summary = summarize(self, monthly)
        segments = self.recorder.segment_frame()
        ab = self.scenario.ab
        shares = [1.0] if ab is None else [a.share for a in ab.arms.values()]
        arm_table = arms.arm_table(self.arm, self.arm_names, shares, self.pop, self.book,
                                   self.holdout, pd.DataFrame(self.arm_rows))
        summary["warnings"] = []
        self.timings["tables"] = time.perf_counter() - tables_started
        return Result(self.scenario, self.seed, monthly, segments, batches,
                      vintages, summary, self.pop,
                      time.perf_counter() - started, self.book, self.fraud, self.arm,
                      self.arm_names, self.holdout, arm_table, gate_table,
                      timings=dict(self.timings))


def summarize(sim: Simulation, monthly: pd.DataFrame) -> dict:
    """The headline figures of a run, JSON-ready."""
    pop, sc = sim.pop, sim.scenario
    horizon = sc.risk.auc_horizon_months
    pd_h = pop.hazard.astype(np.float64)  # 1 - (1 - h)^horizon, in place: one array a user
    np.subtract(1.0, pd_h, out=pd_h)
    pd_h **= horizon
    np.subtract(1.0, pd_h, out=pd_h)
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
                "gained_rate": _num(r.gained_rate),
                "lost_rate": _num(r.lost_rate),
                "churn_rate": _num(r.churn_rate),
                "default_rate_12m": _num(r.default_rate_12m),
                "lagged_default_rate": _num(r.lagged_default_rate),
                "loss_rate": _num(r.loss_rate),
                "net_income": _num(r.net_income),
                "outstanding": _num(r.outstanding),
                "ecl_allowance": _num(r.ecl_allowance),
                "capital_bound_months": int(r.capital_bound_months),
            }
            for r in q.itertuples()
        ],
        "not_eligible_at_start": why_not,
        "credit": credit_summary(sim, monthly),
    }


def _num(x) -> float | None:
    return None if pd.isna(x) else float(x)


def credit_summary(sim: Simulation, monthly: pd.DataFrame) -> dict:
    """Headline credit and fraud figures of the whole run."""
    pop, book = sim.pop, sim.book
    years = len(monthly) / 12.0
    borrower_years = monthly["borrowers"].sum() / 12.0
    avg_outstanding = monthly["outstanding"].mean()
    cap_bound = {}
    for i, rule in enumerate(sim.scenario.credit.limits.caps):
        for k, kind in enumerate(credit.CAP_KINDS):
            if (rule.income_share is None) == (kind == "income"):
                continue
            bit = np.uint32(1 << (3 * i + k))
            users = np.count_nonzero(book.cap_bound & bit)
            cap_bound[f"{rule.name}:{kind}"] = float(users * pop.weight)
    since = sim.horizon - 365
    return {
        "annualised_default_rate": _num(monthly["new_defaults"].sum() / borrower_years
                                        if borrower_years > 0 else np.nan),
        "annualised_loss_rate": _num(monthly["charge_off_loss"].sum() / years / avg_outstanding
                                     if avg_outstanding > 0 else np.nan),
        "default_rate_12m": _num(monthly["default_rate_12m"].iloc[-1]),
        "lagged_default_rate": _num(monthly["lagged_default_rate"].iloc[-1]),
        "interest_revenue": float(monthly["interest_revenue"].sum()),
        "charge_off_loss": float(monthly["charge_off_loss"].sum()),
        "funding_cost": float(monthly["funding_cost"].sum()),
        "net_income": float(monthly["net_income"].sum()),
        "outstanding": float(monthly["outstanding"].iloc[-1]),
        "accounts_opened": float(np.count_nonzero(book.opened) * pop.weight),
        "defaults": float(np.count_nonzero(book.default_month >= 0) * pop.weight),
        "wrongly_blocked_share": _num(fraud.wrongly_blocked_share(sim.fraud, pop, since)),
        "wrongly_blocked_window_days": 365,
        "reviews": float(monthly["reviews"].sum()),
        "cap_bound": cap_bound,
        "capital_bound_months": int(monthly["capital_bound"].sum()),
    }


