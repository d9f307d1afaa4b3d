"""Gates: canary checks that decide, before each batch, whether the rollout goes on.

A gate reads one figure from the live arrays and judges it like a canary analysis:

* **pass**: the one-sided upper confidence bound (``level``, Clopper-Pearson) of the figure
  is at or under the threshold; the rollout goes on, its batch size times the gate's
  ``grow_factor`` (the adaptive strategy: each batch decides the next round);
* **fail**: the bound is over the threshold; the gate's ``on_fail`` acts: ``halt`` (no more
  batches in the gate's scope), ``shrink`` (batch size times ``shrink_factor``) or ``pause``
  (skip this batch);
* **inconclusive**: the evidence is not there yet (no vintage has seasoned, or the seasoned
  ones hold fewer than :func:`min_lines` simulated opened lines); the rollout pauses;
* **canary**: the strategy's batches so far hold fewer than ``min_lines`` opened lines, so
  even once seasoned they could not be judged; the batch (part of the canary) goes out.

The vintage figure is the 30+ rate per opened line of the newest batch vintage with at least
``months_on_book`` months on book, pooled with the next older seasoned vintages until together
they hold ``min_lines`` simulated lines. The minimum counts simulated lines, the sample the
figure comes from, so a gate decides the same way at any ``--users`` up to sampling error.
A gate never judges fewer lines than it takes for one 30+ line to leave the bound under the
threshold, so one simulated default cannot fail it.

A ``dry_run`` gate records its decision without acting. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sim.scenario import Gate, Phase, Rollout

GATE_COLUMNS = ("date", "arm", "phase", "gate", "scope", "metric", "value", "upper",
                "threshold", "level", "vintage", "months_on_book", "lines", "late", "accounts",
                "decision", "action", "acted", "dry_run", "factor")


def upper_bound(successes: float, trials: float, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a proportion at ``level``: the p
    with ``P(X <= successes | trials, p) = 1 - level`` (1 when every trial succeeded, nan
    without trials). Exact, so it holds for the few events a young vintage shows."""
    if trials <= 0:
        return math.nan
    if successes >= trials:
        return 1.0
    from scipy.special import betaincinv  # SciPy loads with the first gate, not every run

    return float(betaincinv(successes + 1.0, trials - successes, level))


def lower_bound(successes: float, trials: float, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a proportion at ``level``."""
    if trials <= 0:
        return math.nan
    if successes <= 0:
        return 0.0
    from scipy.special import betaincinv

    return float(betaincinv(successes, trials - successes + 1.0, 1.0 - level))


@lru_cache(maxsize=256)
def lines_to_pass_one(threshold: float, level: float) -> int:
    """The fewest lines in which one 30+ line still leaves the upper bound at or under
    ``threshold``: a gate judging fewer could be failed by a single simulated default."""
    n = max(2, int(math.ceil(1.0 / threshold)))
    while upper_bound(1, n, level) > threshold:
        n = int(n * 1.05) + 1
    lo, hi = n // 2, n  # the bound falls with n: bisect down to the smallest
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if upper_bound(1, mid, level) <= threshold else (mid, hi)
    return hi


def min_lines(gate: Gate) -> int:
    """The simulated lines a vintage gate judges at least: its ``min_lines``, and never fewer
    than it takes for one 30+ line to leave the upper bound under the threshold (so a single
    simulated default cannot fail the gate, let alone halt a rollout)."""
    return max(gate.min_lines, lines_to_pass_one(gate.threshold, gate.level))


@dataclass(frozen=True)
class Reading:
    """What a gate sees: the figure and its upper confidence bound, and for vintage gates the
    vintage it comes from and the simulated lines judged."""

    value: float = math.nan
    upper: float = math.nan  # one-sided upper confidence bound (the value itself for capital)
    vintage: int = -1  # the newest vintage judged
    months_on_book: int = -1  # its months on book at the last month end
    lines: int = 0  # simulated lines opened in the pooled seasoned vintages
    late: int = 0  # of which 30+ days past due
    lines_sent: int = 0  # simulated lines opened in all the strategy's batches so far
    weight: float = 1.0  # real accounts per simulated user

    @property
    def accounts(self) -> float:
        """Real lines judged."""
        return self.lines * self.weight


@dataclass
class GateState:
    """A strategy's running state: its batch-size factor and whether it has halted."""

    factor: float = 1.0
    halted: bool = False


def vintage_reading(vintage: np.ndarray, dpd30: np.ndarray, opened: np.ndarray,
                    candidates: np.ndarray, ages: np.ndarray, months_on_book: int,
                    min_lines: int, weight: float, level: float = 0.95) -> Reading:
    """The share of opened lines 30+ days past due in the newest of ``candidates`` (vintage
    ids, ``ages`` their months on book at the last month end) at least ``months_on_book``
    old, pooled with the next older seasoned ones until they hold ``min_lines`` simulated
    lines, with its one-sided upper bound at ``level``.

    Per opened line: an invited user who never opened a line cannot be past due, and counting
    them (most of a young vintage) dilutes the rate until no gate can fail.
    ``vintage``, ``dpd30`` and ``opened`` are per user (-1: never invited).
    """
    has = vintage >= 0
    ids = vintage[has].astype(np.intp)
    k = int(candidates.max()) + 1 if candidates.size else 0
    lines_all = np.bincount(ids, weights=opened[has].astype(np.float64), minlength=k)
    sent = int(lines_all[candidates].sum()) if candidates.size else 0
    order = np.argsort(-candidates, kind="stable")  # newest first
    seasoned = candidates[order][ages[order] >= months_on_book]
    if seasoned.size == 0:
        return Reading(months_on_book=int(ages.max()) if ages.size else -1, lines_sent=sent,
                       weight=weight)
    late_all = np.bincount(ids, weights=(dpd30[has] & opened[has]).astype(np.float64),
                           minlength=k)
    lines, late = lines_all[seasoned], late_all[seasoned]
    total = np.cumsum(lines)
    take = min(int(np.searchsorted(total, min_lines)) + 1, seasoned.size)
    n, x = int(total[take - 1]), int(late[:take].sum())
    age = int(ages[candidates == seasoned[0]][0])
    value = x / n if n else math.nan
    return Reading(float(value), upper_bound(x, n, level), int(seasoned[0]), age, n, x, sent,
                   weight)


def capital_reading(outstanding: float, limit: float) -> Reading:
    """Capital use: outstanding over the capital limit (known exactly: its bound is itself)."""
    use = outstanding / limit
    return Reading(value=use, upper=use)


def judge(gate: Gate, reading: Reading) -> str:
    """pass / fail / inconclusive / canary for one reading.

    A vintage gate is a canary while the strategy's batches hold fewer than ``min_lines``
    simulated opened lines (even seasoned they could not be judged), inconclusive while the
    seasoned ones hold fewer; then it passes when the one-sided upper confidence bound of the
    30+ rate is at or under the threshold and fails otherwise.
    """
    if gate.metric == "vintage_dpd30":
        need = min_lines(gate)
        if reading.lines_sent < need:
            return "canary"
        if reading.vintage < 0 or reading.lines < need:
            return "inconclusive"
    if not math.isfinite(reading.upper):
        return "inconclusive"
    return "fail" if reading.upper > gate.threshold else "pass"


def action(gate: Gate, decision: str) -> str:
    """What a decision asks for: go, grow, halt, shrink or pause."""
    if decision == "pass":
        return "grow" if gate.grow_factor > 1.0 else "go"
    if decision == "fail":
        return gate.on_fail
    if decision == "inconclusive":
        return "pause"
    return "go"


def combine(state: GateState, verdicts: list[tuple[Gate, str, str]]) -> str:
    """Apply the acting (not dry-run) gates' actions to ``state``; return what to do now.

    ``verdicts`` holds (gate, scope, action) with scope ``rollout`` or ``phase``. A halt wins
    (``halt`` for the whole strategy, ``halt_phase`` for a phase gate), then a pause; otherwise
    the shrink and growth factors multiply into ``state.factor`` (growth capped at the growing
    gates' ``max_factor``) and the batch goes out (``go``).
    """
    acting = [(g, scope, a) for g, scope, a in verdicts if not g.dry_run]
    halts = [scope for _, scope, a in acting if a == "halt"]
    if "rollout" in halts:
        state.halted = True
        return "halt"
    if halts:
        return "halt_phase"
    if any(a == "pause" for _, _, a in acting):
        return "pause"
    factor = state.factor
    for gate, _, a in acting:
        if a == "shrink":
            factor *= gate.shrink_factor
        elif a == "grow":
            factor *= gate.grow_factor
    growing = [g.max_factor for g, _, a in acting if a == "grow"]
    if growing:
        factor = min(factor, max(min(growing), state.factor))
    state.factor = factor
    return "go"


def sent_vintages(batches: list[dict], batch_months: list[int], arm: str, done: int
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """An arm's batch vintages (ids), their months on book after ``done`` month ends and the
    real accounts they invited (re-evaluation admissions and holdouts are not batches)."""
    mine = [b["vintage"] for b in batches if b["arm"] == arm and b["kind"] == "batch"]
    sent = sum(batches[v]["accounts"] for v in mine)
    ids = np.array(mine, dtype=np.int64)
    ages = done - np.array(batch_months, dtype=np.int64)[ids] if mine else ids
    return ids, ages, sent


def check(rollout: Rollout, phase: Phase, state: GateState, *, vintage: np.ndarray,
          dpd30: np.ndarray, opened: np.ndarray, ids: np.ndarray, ages: np.ndarray,
          weight: float, capital_use: Callable[[], Reading]) -> tuple[str, list[tuple]]:
    """Judge the strategy's and the phase's gates before a batch.

    Reads every gate (vintage gates from the arm's vintages ``ids`` aged ``ages``, capital
    gates from ``capital_use``), judges and combines them into ``state``. Returns what to do
    (go, pause, halt, halt_phase) and each gate's (gate, scope, reading, decision, action).
    """
    specs = [(g, "rollout") for g in rollout.gates] + [(g, "phase") for g in phase.gates]
    if not specs:
        return "go", []
    verdicts, rows = [], []
    for gate, scope in specs:
        if gate.metric == "capital_use":
            reading = capital_use()
        else:
            reading = vintage_reading(vintage, dpd30, opened, ids, ages, gate.months_on_book,
                                      min_lines(gate), weight, gate.level)
        decision = judge(gate, reading)
        act = action(gate, decision)
        verdicts.append((gate, scope, act))
        rows.append((gate, scope, reading, decision, act))
    return combine(state, verdicts), rows


def row(date: dt.date, arm: str, phase: str, gate: Gate, scope: str, reading: Reading,
        decision: str, act: str, factor: float) -> dict:
    """One line of the gates table."""
    return {
        "date": date, "arm": arm, "phase": phase, "gate": gate.name, "scope": scope,
        "metric": gate.metric, "value": reading.value, "upper": reading.upper,
        "threshold": gate.threshold, "level": gate.level, "vintage": reading.vintage,
        "months_on_book": reading.months_on_book, "lines": reading.lines,
        "late": reading.late, "accounts": reading.accounts, "decision": decision, "action": act,
        "acted": (not gate.dry_run) and act != "go", "dry_run": gate.dry_run,
        "factor": factor,
    }
