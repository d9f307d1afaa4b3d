"""The month end: one process runs the month's steps in the documented order, the recorder
reads the month without changing it, and each month's flows land in that month."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine import recorder as rec
from sim.engine.simulation import Simulation
from sim.model import behaviour, credit, fraud, reevaluation, release

#: The order the month end promises (DESIGN: behaviour, versions, credit lines, fraud
#: signals, re-scoring at quarter ends, then the snapshot of the month).
ORDER = ["behaviour.age", "release.Adoption.step", "credit.month", "fraud.month",
         "reevaluation.reevaluate", "recorder.collect"]


@pytest.fixture(scope="module")
def small(baseline_path):
    return sim.load(baseline_path, ["population.users=5000", "reporting.run_off_months=0"])


def test_the_month_end_runs_its_steps_in_the_documented_order(small, monkeypatch):
    calls: list[str] = []

    def spy(owner, name, label):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls.append(label)
            return real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapper)

    for label in ORDER:
        module, name = label.split(".", 1)
        owner = {"behaviour": behaviour, "release": release, "fraud": fraud, "credit": credit,
                 "reevaluation": reevaluation, "recorder": rec.Recorder}[module]
        if "." in name:  # a method: Class.method
            cls, name = name.split(".")
            owner = getattr(owner, cls)
        spy(owner, name, label)
    Simulation(small, quarters=2).run()
    other = [step for step in ORDER if step != "reevaluation.reevaluate"]  # not a quarter end
    assert calls == [*other, *other, *ORDER, *other, *other, *ORDER]


def test_timings_name_every_step(small):
    result = sim.run(small, quarters=1)
    for step in ("behaviour", "release", "fraud", "credit", "reevaluation", "recorder"):
        assert step in result.timings


def _state(obs: rec.Observation) -> dict:
    """Copies of every array of the population, the credit book and the fraud book."""
    arrays = {}
    for owner, name in ((obs.pop, "pop"), (obs.book, "book"), (obs.fraud, "fraud")):
        for f in dataclasses.fields(owner):
            value = getattr(owner, f.name)
            if isinstance(value, np.ndarray):
                arrays[f"{name}.{f.name}"] = value.copy()
    return arrays


def test_the_recorder_reads_the_month_and_changes_nothing(small, monkeypatch):
    real, checked = rec.Recorder.collect, []

    def collect(self, obs):
        before = _state(obs)
        flows = copy.deepcopy(obs.flows)
        real(self, obs)
        after = _state(obs)
        assert all(np.array_equal(v, after[k]) for k, v in before.items())
        assert obs.flows == flows  # the month's flows are the month end's to reset
        checked.append(obs.month)

    monkeypatch.setattr(rec.Recorder, "collect", collect)
    Simulation(small, quarters=1).run()
    assert checked == [1, 2, 3]


def test_each_months_flows_land_in_that_month(small):
    result = sim.run(small, quarters=2)
    m, b = result.monthly, result.batches
    invited = b[b.kind != "reevaluation"]
    per_month = invited.groupby(invited.date.dt.to_period("M")).accounts.sum()
    months = m.set_index(m.date.dt.to_period("M")).new_invites
    assert np.allclose(months.reindex(per_month.index), per_month)
    assert months.drop(per_month.index).eq(0).all()
    admitted = b[b.kind == "reevaluation"].accounts.sum()
    assert m.gained_access.sum() >= admitted > 0


def test_a_declared_reporter_is_called_once_a_month_after_every_step(small):
    s = Simulation(small, quarters=1)
    s.recorder.declare("seen", lambda obs: [{"month": obs.month,
                                             "invited": int(obs.pop.invited.sum())}])
    result = s.run()
    rows = s.recorder.rows["seen"]
    assert [r["month"] for r in rows] == [1, 2, 3]
    w = result.population.weight
    assert [r["invited"] * w for r in rows] == result.monthly.invited.tolist()
    with pytest.raises(ValueError, match="already"):
        s.recorder.declare("monthly", lambda obs: [])


def test_expected_credit_loss_is_computed_in_the_ecl_months_only(baseline_path):
    scenario = sim.load(baseline_path, {"reporting.run_off_months": 0}, users=4_000)
    every = sim.run(scenario.replace({"reporting.ecl_months": "all"}), quarters=3).monthly
    quarters = sim.run(scenario, quarters=3).monthly
    ends = quarters["month"] % 3 == 0
    assert quarters.loc[~ends, "ecl_allowance"].isna().all()
    cols = ["ecl_12m", "ecl_lifetime", "ecl_allowance", "stage3", "outstanding"]
    pd.testing.assert_frame_equal(quarters.loc[ends, cols], every.loc[ends, cols])
    assert every["ecl_allowance"].notna().all()


def test_the_capital_limit_is_judged_on_the_outstanding_of_the_month_so_far(small,
                                                                           monkeypatch):
    """The simulation sums outstanding once between credit months (only the credit month
    moves balances): every batch and admission is judged on the book as it stands."""
    from sim.model import capital

    judged: list[tuple[float, float]] = []
    real = capital.binds

    def spy(book, weight, limit, lent=None):
        judged.append((lent, capital.outstanding(book, weight)))
        return real(book, weight, limit, lent)

    monkeypatch.setattr(capital, "binds", spy)
    Simulation(small.replace({"capital.equity": 1.0e12, "capital.max_leverage": 1.0}),
               quarters=4).run()
    asked = [(lent, now) for lent, now in judged if lent is not None]
    assert len(asked) > 20 and any(now > 0 for _, now in asked)
    assert all(lent == now for lent, now in asked)


@pytest.mark.parametrize("name", ["score_adjust", "other_indicators", "monthly_spend"])
def test_a_changing_array_gone_bad_stops_the_run_at_the_next_read(small, monkeypatch, name):
    """After the first full check, the behaviour read checks what behaviour writes and the
    re-scoring checks the score, which sums every other changing array: a NaN written into
    any of them (by credit's score effects, the indicators' drift, behaviour) stops the run
    in that quarter, naming the process that reads it."""
    from sim.model import numeric

    real, months = fraud.month, []

    def poisoned(fb, pop, *args, **kwargs):
        months.append(len(months) + 1)
        if months[-1] == 4:  # after the first quarter's reads, before the second's
            getattr(pop, name)[11] = np.nan
        return real(fb, pop, *args, **kwargs)
    monkeypatch.setattr(fraud, "month", poisoned)
    with pytest.raises(numeric.NumericError) as caught:
        Simulation(small, quarters=3).run()
    read = "behaviour" if name == "monthly_spend" else "reevaluation"
    assert f"in month 6, process '{read}': {name} is not finite" in str(caught.value)


def test_every_changing_float_array_has_a_check_that_reads_it(small):
    """What behaviour writes is checked at its read; the score and the arrays it sums
    (indicators, repayment points) after each scoring: a new changing array must join one."""
    from sim.model.population import FIXED

    pop = Simulation(small, quarters=1).pop
    changing = {name for name, values in vars(pop).items()
                if isinstance(values, np.ndarray) and values.dtype.kind == "f"
                and name not in FIXED}
    from sim.engine.simulation import SCORED

    assert changing <= set(behaviour.WRITTEN) | {"score", "value", *SCORED}
