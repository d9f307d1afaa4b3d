"""Population synthesis: the in-place helpers draw what the plain formulas draw, and the
fixed attributes stay as drawn."""

from __future__ import annotations

import numpy as np
import pytest
from ast_writes import SIM, writes_outside

import sim
from sim.model import population
from sim.model.streams import generator

N = 20_000


@pytest.mark.parametrize("shares", [[0.03, 0.07, 0.28, 0.62, 0.0, 0.0], [0.5, 0.5], [1.0],
                                    [0.0, 0.2, 0.0, 0.8], [3, 1, 1]])
def test_pick_draws_the_codes_of_rng_choice(shares):
    fast_rng, plain_rng = np.random.default_rng(5), np.random.default_rng(5)
    fast = population._pick(fast_rng, shares, np.empty(N))
    p = np.asarray(shares, dtype=float)
    plain = plain_rng.choice(len(p), size=N, p=p / p.sum()).astype(np.int8)
    assert np.array_equal(fast, plain)
    assert fast_rng.random() == plain_rng.random()  # the same draws consumed


def test_pick_refuses_shares_that_are_no_distribution():
    with pytest.raises(ValueError, match="non-negative"):
        population._pick(np.random.default_rng(1), [0.5, -0.1], np.empty(10))


def test_pick_by_draws_each_row_of_the_table():
    rng = np.random.default_rng(3)
    table = rng.random((5, 4))
    table /= table.sum(axis=1, keepdims=True)
    group = rng.integers(0, 5, N)
    fast = population._pick_by(np.random.default_rng(8), group.astype(np.intp), table,
                               np.empty(N), np.empty(N))
    cdf = np.cumsum(table, axis=1)
    cdf[:, -1] = 1.0
    u = np.random.default_rng(8).random(N)
    assert np.array_equal(fast, (u[:, None] >= cdf[group]).sum(axis=1))


@pytest.mark.parametrize("median", [60, np.linspace(1.0, 5e4, N)])
def test_lognormal_is_the_float32_of_the_float64_product(median):
    fast = population._lognormal(np.random.default_rng(2), median, 0.7, np.empty(N))
    plain = (median * np.exp(0.7 * np.random.default_rng(2).standard_normal(N))).astype(
        np.float32)
    assert fast.dtype == np.float32 and np.array_equal(fast, plain)


def test_latent_hazard_is_the_plain_formula(baseline_path):
    sc = sim.load(baseline_path, {"population.users": N})
    pop = population.synthesize(sc, generator(sc.seed, "population"))
    score = np.random.default_rng(4).normal(40, 15, N).astype(np.float32)
    population.assign_latent_risk(pop, sc, score, np.random.default_rng(6))
    spec, rho = sc.risk, sc.risk.score_correlation
    z = (score - score.mean()) / max(float(score.std()), 1e-9)
    shift = np.array([a.risk_shift for a in sc.population.archetypes.values()])
    risk = (-rho * z + np.sqrt(1 - rho * rho) * np.random.default_rng(6).standard_normal(N)
            + shift[pop.archetype])
    rel = np.exp(spec.dispersion * (risk - risk.mean()))
    assert np.array_equal(pop.hazard, (spec.monthly_hazard * rel / rel.mean()).astype(np.float32))


def test_no_process_writes_a_fixed_attribute():
    """Only synthesis (population.py) writes :data:`population.FIXED`: what scoring and the
    segment counts keep from those attributes holds for a whole run."""
    found = writes_outside(population.FIXED, {SIM / "model" / "population.py"})
    assert not found, "\n".join(found)


def test_rows_are_views_that_write_through(baseline_path):
    """A block of users (``Population.rows``) holds views of every array: what a blockwise
    step writes into it lands in the population; everything else is the population's."""
    sc = sim.load(baseline_path, {"population.users": N})
    pop = population.synthesize(sc, generator(sc.seed, "population"))
    pop.score_adjust[:] = 0
    block = pop.rows(10, 20)
    assert block.n == 10 and block.labels is pop.labels and block.weight == pop.weight
    for name, values in vars(pop).items():
        if isinstance(values, np.ndarray):
            assert np.shares_memory(getattr(block, name), values), name
            assert np.array_equal(getattr(block, name), values[10:20]), name
    block.score_adjust += 1
    assert pop.score_adjust.sum() == 10 and pop.score_adjust[10:20].all()


def test_no_run_changes_a_fixed_attribute_in_any_shipped_scenario():
    """At run time too (writes through another name escape the static check above): every
    shipped scenario's fixed attributes are those synthesis drew, two quarters on."""
    from sim.engine.simulation import Simulation

    for path in sorted((SIM.parent / "scenarios").glob("*.yaml")):
        s = Simulation(sim.load(path, users=300), quarters=2)
        before = {name: getattr(s.pop, name).copy() for name in population.FIXED}
        s.run()
        for name in population.FIXED:
            assert np.array_equal(getattr(s.pop, name), before[name]), (path.name, name)
