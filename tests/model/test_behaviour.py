"""Behaviour drift drawn when read: k monthly lognormal steps at once (issue 18)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

import sim
from sim.engine.simulation import Simulation
from sim.model import behaviour
from sim.model.population import synthesize
from sim.model.streams import Streams, generator


def _population(baseline_path, n=100_000):
    scenario = sim.load(baseline_path, users=n)
    return scenario, synthesize(scenario, generator(scenario.seed, "population"))


def test_drift_over_k_months_is_one_lognormal_step_of_sd_sqrt_k(baseline_path):
    scenario, pop = _population(baseline_path)
    before = pop.monthly_spend.astype(np.float64).copy()
    behaviour.settle(pop, scenario, Streams(1), month=6, months=6)
    step = np.log(pop.monthly_spend.astype(np.float64) / before)
    sd = scenario.behaviour.drift_sd * math.sqrt(6)
    assert stats.kstest(step / sd, "norm").pvalue > 1e-3
    # nothing drifts when nothing is pending; wealth days stay within the year
    spend = pop.monthly_spend.copy()
    behaviour.settle(pop, scenario, Streams(1), month=6, months=0)
    assert np.array_equal(pop.monthly_spend, spend)
    assert pop.wealth_days.max() <= 365


def test_a_run_reads_drifted_behaviour_at_each_re_evaluation(baseline_path):
    scenario = sim.load(baseline_path, users=5_000)
    run = Simulation(scenario, quarters=2, run_off=0)
    start = run.pop.payments_per_month.copy()
    run.run()
    assert not np.array_equal(run.pop.payments_per_month, start)


def test_the_bank_reads_behaviour_at_each_rescoring_and_in_the_last_month():
    # every 3 months, a 7-month run: reads in months 3 and 6 (3 months each) and 7 (1 month)
    reads = {m: behaviour.pending(m, 3, 7) for m in range(1, 8)}
    assert reads == {1: 0, 2: 0, 3: 3, 4: 0, 5: 0, 6: 3, 7: 1}
    assert sum(reads.values()) == 7  # every month's drift is drawn exactly once
    assert behaviour.pending(6, 6, 6) == 6


def test_age_counts_the_awakened_down_to_zero_and_wakes_with_the_full_pattern(baseline_path):
    scenario, pop = _population(baseline_path, n=20_000)
    rng = np.random.default_rng(5)
    pop.awakened_months[:] = rng.integers(0, 7, pop.n)
    before, dormant = pop.awakened_months.copy(), pop.dormant.copy()
    behaviour.age(pop, scenario, Streams(1), month=4)
    woke = dormant & ~pop.dormant
    assert woke.any()
    np.testing.assert_array_equal(pop.awakened_months[woke],
                                  scenario.behaviour.awakened_months)
    np.testing.assert_array_equal(pop.awakened_months[~woke], np.maximum(before - 1, 0)[~woke])
