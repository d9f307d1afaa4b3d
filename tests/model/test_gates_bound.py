"""Gates judge per opened line by an exact upper confidence bound: one simulated default
cannot fail them, a risky batch does, and the shipped adaptive strategy makes decisions."""

from __future__ import annotations

import numpy as np
import pytest
from credit_helpers import ROOT
from scipy import stats

import sim
from sim.analysis import stats as analysis_stats
from sim.model import gates
from sim.scenario import Gate, Phase, Rollout


@pytest.mark.parametrize(("x", "n"), [(0, 100), (3, 500), (40, 1000), (999, 1000)])
def test_upper_bound_is_clopper_pearson(x, n):
    assert gates.upper_bound(x, n, 0.95) == pytest.approx(stats.beta.ppf(0.95, x + 1, n - x))
    # the bound holds: if the rate were the bound, seeing x or fewer has probability 5%
    assert stats.binom.cdf(x, n, gates.upper_bound(x, n, 0.95)) == pytest.approx(0.05)
    assert analysis_stats.upper_bound is gates.upper_bound  # one copy, re-exported


@pytest.mark.parametrize("threshold", [0.003, 0.01, 0.015, 0.05])
def test_one_simulated_default_cannot_fail_a_gate(threshold):
    gate = Gate(name="g", metric="vintage_dpd30", threshold=threshold)  # min_lines 0
    need = gates.min_lines(gate)
    assert gates.upper_bound(1, need) <= threshold < gates.upper_bound(1, need - 1)
    one = gates.Reading(value=1 / need, upper=gates.upper_bound(1, need), vintage=0,
                        months_on_book=3, lines=need, late=1, lines_sent=need)
    assert gates.judge(gate, one) == "pass"
    # and with fewer lines than that the gate does not judge at all
    few = gates.Reading(value=1.0, upper=1.0, vintage=0, months_on_book=3, lines=1, late=1,
                        lines_sent=need)
    assert gates.judge(gate, few) == "inconclusive"


def _book(rng, rates, lines):
    """Users of consecutive vintages, all opened, 30+ with each vintage's rate."""
    vintage = np.repeat(np.arange(len(rates)), lines)
    late = rng.random(vintage.size) < np.repeat(rates, lines)
    return vintage, late, np.ones(vintage.size, dtype=bool)


@pytest.mark.parametrize(("on_fail", "expect"), [("shrink", "go"), ("halt", "halt_phase")])
def test_a_risky_batch_trips_its_phase_gate(on_fail, expect):
    # normal batches run at 0.4% of lines 30+ at 3 months on book; the newest seasoned one
    # has three times the hazard (1.2%); a 0.8% threshold passes the first, fails the second
    rng = np.random.default_rng(3)
    gate = {"name": "v", "metric": "vintage_dpd30", "threshold": 0.008, "min_lines": 3000,
            "on_fail": on_fail, "shrink_factor": 0.5}
    phase = Phase(name="p", start="2025-01-01", batch={"share": 0.1}, gates=[gate])
    plan = Rollout(name="r", phases=[phase])
    ids, ages = np.arange(3), np.array([5, 4, 3])
    for rates, decision in (([0.004, 0.004, 0.004], "pass"), ([0.004, 0.004, 0.012], "fail")):
        vintage, late, opened = _book(rng, rates, 4000)
        state = gates.GateState()
        verdict, rows = gates.check(plan, phase, state, vintage=vintage, dpd30=late,
                                    opened=opened, ids=ids, ages=ages, weight=1.0,
                                    capital_use=lambda: gates.Reading())
        assert rows[0][3] == decision
    assert verdict == expect
    assert state.factor == (0.5 if on_fail == "shrink" else 1.0)


def test_shipped_adaptive_gates_pass_and_fail_over_a_run():
    result = sim.run(sim.load(ROOT / "scenarios" / "adaptive.yaml", {"population.users": 20000}))
    g = result.gates[result.gates.metric == "vintage_dpd30"]
    counts = g["decision"].value_counts()
    assert counts.get("pass", 0) >= 5 and counts.get("fail", 0) >= 1
    judged = g[g.decision.isin(["pass", "fail"])]
    assert (judged["lines"] >= 1000).all()  # never judged on fewer simulated lines
    assert ((judged["upper"] > judged["threshold"]) == (judged["decision"] == "fail")).all()
