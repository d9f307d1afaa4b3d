"""A/B arms as the recorder sees them: the per-arm segment rows of each month and the arm
table at the horizon (counts, default rates and holdouts per arm), made from those rows
without pandas."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sim.engine.summary import column_mean
from sim.engine.tables import Table, rows_table
from sim.model.credit import FEN, Book, line_losses
from sim.model.invites import assign_arms
from sim.model.population import Population
from sim.scenario import AB

ARM_COLUMNS = ("arm", "share", "users", "accounts", "invited", "visible", "borrowers",
               "ever_invited", "defaults", "default_rate", "default_rate_12m", "loss",
               "holdout", "holdout_defaults", "holdout_default_rate")


def assignment(n: int, ab: AB, seed: int) -> np.ndarray:
    """Every simulated user's A/B arm: a stable hash of user id, the test's ``salt`` and the
    replication's ``seed``. A simulated user id names a different synthetic person in every
    replication, so the split must be redrawn with the seed too: hashing the salt alone gave
    the same arm sizes (and the same sample-ratio p-value) in every replication."""
    return assign_arms(n, f"{ab.salt}/seed={seed}", [a.share for a in ab.arms.values()])


def arm_segment_rows(arm: np.ndarray, names: tuple[str, ...], pop: Population,
                     visible: np.ndarray, lines: np.ndarray, per_line: dict[str, np.ndarray],
                     *, date: dt.date, month: int,
                     coverage: dict[str, int] | None = None) -> list[dict]:
    """Rows of the segment table for the dimension ``arm`` at one month end (the recorder's
    columns and units: weighted counts, loss in CNY). ``per_line`` holds the ``borrowers``
    and ``defaults`` masks and the ``cum_loss`` (fen) of the users with a line, ``lines``,
    or the lines with a loss instead (:func:`sim.model.credit.line_losses`): no one else
    borrows, defaults or loses. ``coverage`` holds the users ``eligible``,
    ``invited`` and ``visible`` when the caller has counted them (the one arm's figures
    without A/B arms, not counted again)."""
    k, w = len(names), pop.weight
    codes = arm.astype(np.intp) if k > 1 else None

    # Without arms every user is in the one arm "all": plain counts and sums, no pass per code
    # (the sums are of integers, so they are the same either way).
    def count(mask):
        if codes is None:
            return np.array([np.count_nonzero(mask)])
        return np.bincount(codes[mask], minlength=k)[:k]

    def total(values, users=lines):  # integers (counts, fen): exact float sums in any order
        if codes is None:  # so the integer sum, made a float (a tenth of the cost for masks)
            whole = np.count_nonzero(values) if values.dtype == np.bool_ else values.sum()
            return np.array([whole], dtype=np.float64)
        return np.bincount(codes[users], weights=values.astype(np.float64), minlength=k)[:k]

    population = np.array([arm.size]) if codes is None else np.bincount(codes, minlength=k)[:k]
    if codes is None and coverage is not None:
        eligible, invited, shown = (np.array([coverage[key]])
                                    for key in ("eligible", "invited", "visible"))
    else:
        eligible, invited, shown = count(pop.eligible), count(pop.invited), count(visible)
    borrowers, defaults = total(per_line["borrowers"]), total(per_line["defaults"])
    lossy, lost = line_losses(per_line)  # zeros left out: the same sums
    loss = total(lost, lines[lossy])
    rows = []
    for i, name in enumerate(names):
        n = population[i]
        rows.append({
            "date": date, "month": month, "dimension": "arm", "value": name,
            "population": n * w, "eligible": eligible[i] * w, "invited": invited[i] * w,
            "visible": shown[i] * w, "access_rate": invited[i] / n if n else np.nan,
            "visible_rate": shown[i] / n if n else np.nan, "borrowers": borrowers[i] * w,
            "defaults": defaults[i] * w, "loss": loss[i] * w / FEN,
        })
    return rows


def trailing_default_rate(history: list[dict]) -> float:
    """The monthly table's ``default_rate_12m`` from one segment's monthly rows: defaults of
    the last 12 months (fewer, annualised, early on) over the mean borrowers in them."""
    history = sorted(history, key=lambda r: r["month"])
    window = history[-12:]
    months = len(window)
    if months == 0:
        return float("nan")
    before = history[-months - 1]["defaults"] if len(history) > months else 0.0
    new = history[-1]["defaults"] - before
    mean = column_mean([r["borrowers"] for r in window])
    return float(new * 12.0 / months / mean) if mean > 0 else float("nan")


def arm_table(arm: np.ndarray, names: tuple[str, ...], shares: list[float], pop: Population,
              book: Book, holdout: np.ndarray, history: list[dict]) -> Table:
    """One row per arm at the horizon, weighted: its users (simulated) and accounts (real),
    invited and visible now, borrowers, accounts ever invited and how many of them defaulted
    (``default_rate`` per ever-invited account), the trailing ``default_rate_12m`` (as in
    the monthly table), net charge-off loss in CNY, and its holdout below the cut-off.

    ``history`` holds the arm segment rows of every month (:func:`arm_segment_rows`).
    """
    k, w = len(names), pop.weight
    ever = pop.vintage >= 0
    defaulted = book.default_month >= 0

    def count(mask):
        if k == 1:  # one arm: a count, without an index array the size of the population
            return np.array([np.count_nonzero(mask)])
        return np.bincount(arm[mask], minlength=k)[:k]

    users = count(np.ones(arm.shape, dtype=bool))
    n_ever, n_def = count(ever), count(ever & defaulted)
    n_hold, n_hold_def = count(holdout), count(holdout & defaulted)
    final = max((r["month"] for r in history), default=None)
    last = {r["value"]: r for r in history if r["month"] == final}  # each arm's row
    rows = []
    for i, name in enumerate(names):
        now = last.get(name)
        rows.append({
            "arm": name, "share": shares[i], "users": int(users[i]),
            "accounts": users[i] * w,
            "invited": now["invited"] if now is not None else np.nan,
            "visible": now["visible"] if now is not None else np.nan,
            "borrowers": now["borrowers"] if now is not None else np.nan,
            "ever_invited": n_ever[i] * w, "defaults": n_def[i] * w,
            "default_rate": n_def[i] / n_ever[i] if n_ever[i] else np.nan,
            "default_rate_12m": trailing_default_rate(
                [r for r in history if r["value"] == name]),
            "loss": now["loss"] if now is not None else np.nan,
            "holdout": n_hold[i] * w, "holdout_defaults": n_hold_def[i] * w,
            "holdout_default_rate": n_hold_def[i] / n_hold[i] if n_hold[i] else np.nan,
        })
    return rows_table(rows, ARM_COLUMNS)
