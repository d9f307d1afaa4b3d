"""The recorder's per-line figures: the losses read from the lines that ever defaulted are
every line's, and every table made from them equals the one made from each line's loss."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from credit_helpers import risky_vintage

from sim.engine import arms
from sim.engine import recorder as rec
from sim.engine.simulation import Month
from sim.model import credit


@pytest.fixture(scope="module")
def observed():
    """The observation at the end of a year of a risky vintage."""
    s = risky_vintage(users=3_000, quarters=4)
    return s.observe(Month(number=12, day=s.horizon, days=31, date=dt.date(2025, 12, 31)))


def _dense(obs):
    """The per-line figures with each line's loss gathered (``cum_loss``), no sparse form."""
    per_line = {k: v for k, v in obs.per_line.items() if k not in ("lossy", "loss")}
    return {**per_line, "cum_loss": obs.book.cum_loss[obs.lines]}


def _same(a: list[dict], b: list[dict]) -> bool:
    """The same rows (NaN where NaN: a row's NaN is a new float each call)."""
    return len(a) == len(b) > 0 and pd.DataFrame(a).equals(pd.DataFrame(b))


def test_the_losses_of_the_defaulted_lines_are_every_lines_losses(observed):
    """A loss is a charge-off's, and a line is charged off in default: the lines with a
    loss, read among the defaulted ones, are every line with a loss, in index order."""
    cum_loss = observed.book.cum_loss[observed.lines]
    assert np.count_nonzero(cum_loss) > 10  # charge-offs took place
    lossy = np.flatnonzero(cum_loss)
    assert np.array_equal(observed.per_line["lossy"], lossy)
    assert np.array_equal(observed.per_line["loss"], cum_loss[lossy])
    assert np.array_equal(rec.line_losses(_dense(observed))[0], lossy)


def test_tables_from_the_losses_equal_those_from_every_lines_loss(observed):
    """Segment, arm (one arm and three) and vintage rows from the sparse losses equal those
    from the loss of every line (zeros left out of a float sum change nothing)."""
    obs, dense = observed, _dense(observed)
    r = rec.Recorder(bands=obs.scenario.reporting.bands,
                     crosses=obs.scenario.reporting.crosses)
    kw = {"date": obs.date, "month": obs.month}
    assert "cum_loss" not in obs.per_line
    assert _same(rec.segment_rows(obs.pop, obs.visible, obs.lines, obs.per_line, r.bands,
                                  r.crosses, **kw),
                 rec.segment_rows(obs.pop, obs.visible, obs.lines, dense, r.bands, r.crosses,
                                  **kw))
    three = (np.arange(obs.pop.n) % 3).astype(np.int8)
    for arm, names in ((obs.arm, obs.arm_names), (three, ("a", "b", "c"))):
        assert _same(arms.arm_segment_rows(arm, names, obs.pop, obs.visible, obs.lines,
                                           obs.per_line, **kw),
                     arms.arm_segment_rows(arm, names, obs.pop, obs.visible, obs.lines, dense,
                                           **kw))
    sparse_rows = r.vintage_rows(obs)
    dense_rows = rec.vintage_rows(
        obs.pop.vintage, obs.batches, obs.batch_months, weight=obs.pop.weight, maturity=0,
        lines=obs.lines, accounts=np.array([b["users"] for b in obs.batches], dtype=float),
        arrays={"dpd30": dense["dpd30"], "ever_default": dense["defaults"],
                "balance": dense["balance"], "cum_draw": dense["cum_draw"],
                "cum_loss": dense["cum_loss"]}, **kw)
    assert sum(row["loss"] for row in dense_rows) > 0
    assert _same(sparse_rows, dense_rows)


def test_vintage_losses_leave_out_lines_outside_every_vintage():
    """A line whose user is in no vintage (kept safe all the same) counts nowhere, in the
    sparse form of the losses as in the dense one."""
    vintage = np.array([0, -1, 1, 0, -1, 1], dtype=np.int16)
    lines = np.arange(6)
    loss = np.array([5, 7, 0, 11, 0, 13], dtype=np.int64)
    base = {"dpd30": loss > 6, "ever_default": loss > 0, "balance": loss * 3,
            "cum_draw": loss * 10}
    batches = [{"vintage": i, "date": None} for i in range(2)]
    lossy = np.flatnonzero(loss)

    def rows(arrays):
        return rec.vintage_rows(vintage, batches, [1, 2], date=None, month=4, weight=1.0,
                                maturity=0, lines=lines, arrays={**base, **arrays})
    sparse = rows({"lossy": lossy, "loss": loss[lossy]})
    assert _same(sparse, rows({"cum_loss": loss}))
    assert [r["loss"] for r in sparse] == [16 / credit.FEN, 13 / credit.FEN]


def test_each_arms_loss_is_its_users_charge_off_loss(observed):
    """With three arms, an arm's loss is the net charge-off loss of its own users (CNY,
    weighted), summed user by user from the book: a loss read from the wrong line would
    move it to another arm."""
    obs = observed
    arm = (np.arange(obs.pop.n) % 3).astype(np.int8)
    rows = arms.arm_segment_rows(arm, ("a", "b", "c"), obs.pop, obs.visible, obs.lines,
                                 obs.per_line, date=obs.date, month=obs.month)
    lines = obs.lines
    lost = np.bincount(arm[lines], weights=obs.book.cum_loss[lines].astype(np.float64),
                       minlength=3)
    assert np.count_nonzero(lost) >= 2  # losses fell in more than one arm
    assert [row["loss"] for row in rows] == (lost * (obs.pop.weight / credit.FEN)).tolist()
