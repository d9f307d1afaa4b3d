"""Gates: canary checks that decide, before each batch, whether the rollout goes on.

A gate reads one figure from the live arrays and judges it like a canary analysis:

* **pass**: at or under the threshold; the rollout goes on, its batch size times the gate's
  ``grow_factor`` (the adaptive strategy: each batch decides the next round);
* **fail**: over the threshold; the gate's ``on_fail`` acts: ``halt`` (no more batches in
  the gate's scope), ``shrink`` (batch size times ``shrink_factor``) or ``pause`` (skip this
  batch);
* **inconclusive**: the evidence is not there yet (no vintage has seasoned, or the seasoned
  ones hold fewer than ``min_accounts``); the rollout pauses;
* **canary**: the strategy's batches so far hold fewer than ``min_accounts`` (none at all for
  a gate without a minimum), so even once seasoned they could not be judged; the batch (part
  of the canary) goes out.

The vintage figure is the 30+ rate of the newest batch vintage with at least
``months_on_book`` months on book, pooled with the next older seasoned vintages until together
they hold ``min_accounts``.

A ``dry_run`` gate records its decision without acting. Nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.scenario import Gate, Phase, Rollout

GATE_COLUMNS = ("date", "arm", "phase", "gate", "scope", "metric", "value", "threshold",
                "vintage", "months_on_book", "accounts", "decision", "action", "acted",
                "dry_run", "factor")


@dataclass(frozen=True)
class Reading:
    """What a gate sees: the figure, and for vintage gates the vintage it comes from."""

    value: float = math.nan
    vintage: int = -1  # the newest vintage judged
    months_on_book: int = -1  # its months on book at the last month end
    accounts: float = 0.0  # real accounts judged (the pooled vintages)


@dataclass
class GateState:
    """A strategy's running state: its batch-size factor and whether it has halted."""

    factor: float = 1.0
    halted: bool = False


def vintage_reading(vintage: np.ndarray, dpd30: np.ndarray, candidates: np.ndarray,
                    ages: np.ndarray, months_on_book: int, min_accounts: float,
                    weight: float) -> Reading:
    """The share of accounts 30+ days past due in the newest of ``candidates`` (vintage ids,
    ``ages`` their months on book at the last month end) at least ``months_on_book`` old,
    pooled with the next older seasoned ones until they hold ``min_accounts`` real accounts.

    ``vintage`` is every user's vintage id (-1 never invited) and ``dpd30`` every user's
    30+ flag; one ``bincount`` over the vintage ids counts accounts and 30+ accounts of all.
    """
    order = np.argsort(-candidates, kind="stable")  # newest first
    seasoned = candidates[order][ages[order] >= months_on_book]
    if seasoned.size == 0:
        return Reading(months_on_book=int(ages.max()) if ages.size else -1)
    has = vintage >= 0
    ids = vintage[has].astype(np.intp)
    k = int(seasoned.max()) + 1
    accounts = np.bincount(ids, minlength=k)[seasoned] * weight
    late = np.bincount(ids, weights=dpd30[has].astype(np.float64), minlength=k)[seasoned]
    total = np.cumsum(accounts)
    take = min(int(np.searchsorted(total, min_accounts)) + 1, seasoned.size)
    n = total[take - 1]
    value = late[:take].sum() * weight / n if n else math.nan
    age = int(ages[candidates == seasoned[0]][0])
    return Reading(float(value), int(seasoned[0]), age, float(n))


def capital_reading(outstanding: float, limit: float) -> Reading:
    """Capital use: outstanding over the capital limit."""
    return Reading(value=outstanding / limit)


def judge(gate: Gate, reading: Reading, sent: float) -> str:
    """pass / fail / inconclusive / canary for one reading; ``sent`` is the real accounts the
    strategy's batches have invited so far."""
    if gate.metric == "vintage_dpd30":
        if sent <= 0 or sent < gate.min_accounts:
            return "canary"
        if reading.vintage < 0 or reading.accounts < gate.min_accounts:
            return "inconclusive"
    if not math.isfinite(reading.value):
        return "inconclusive"
    return "fail" if reading.value > gate.threshold else "pass"


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
          dpd30: np.ndarray, ids: np.ndarray, ages: np.ndarray, sent: float, weight: float,
          capital_use: Callable[[], Reading]) -> tuple[str, list[tuple]]:
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
            reading = vintage_reading(vintage, dpd30, ids, ages, gate.months_on_book,
                                      gate.min_accounts, weight)
        decision = judge(gate, reading, sent)
        act = action(gate, decision)
        verdicts.append((gate, scope, act))
        rows.append((gate, scope, reading, decision, act))
    return combine(state, verdicts), rows


def row(date: dt.date, arm: str, phase: str, gate: Gate, scope: str, reading: Reading,
        decision: str, act: str, factor: float) -> dict:
    """One line of the gates table."""
    return {
        "date": date, "arm": arm, "phase": phase, "gate": gate.name, "scope": scope,
        "metric": gate.metric, "value": reading.value, "threshold": gate.threshold,
        "vintage": reading.vintage, "months_on_book": reading.months_on_book,
        "accounts": reading.accounts, "decision": decision, "action": act,
        "acted": (not gate.dry_run) and act != "go", "dry_run": gate.dry_run,
        "factor": factor,
    }
