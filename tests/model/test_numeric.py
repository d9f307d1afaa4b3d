"""Numeric guards: a value that leaves its range stops the run, naming what to look at."""

from __future__ import annotations

import numpy as np
import pytest

import sim
from sim.model import numeric
from sim.model.population import FIXED, synthesize
from sim.model.streams import generator


@pytest.fixture
def pop(baseline_path):
    sc = sim.load(baseline_path, {"population.users": 500})
    return synthesize(sc, generator(sc.seed, "population"))


def test_the_population_check_stops_on_a_changing_array_and_names_it(pop):
    pop.monthly_spend[7] = np.inf
    for fixed in (True, False):
        with pytest.raises(numeric.NumericError, match="monthly_spend .*month 3|month 3.*"
                           "monthly_spend"):
            numeric.check_population(pop, process="behaviour", month=3,
                                     key="behaviour.drift_sd", fixed=fixed)


def test_the_fixed_arrays_are_checked_unless_left_out(pop):
    """A fixed array (written by synthesis alone) is checked on the first read; a caller that
    has checked it leaves it out of the later ones."""
    assert "income" in FIXED and "night_share" in FIXED
    pop.income[3] = np.nan
    with pytest.raises(numeric.NumericError, match="income"):
        numeric.check_population(pop, process="behaviour", month=3, key="k")
    numeric.check_population(pop, process="behaviour", month=6, key="k", fixed=False)
    pop.income[3] = 1.0
    pop.night_share[2] = 1.5  # a share beyond 1
    with pytest.raises(numeric.NumericError, match=r"night_share left \[0, 1\]"):
        numeric.check_population(pop, process="behaviour", month=3, key="k")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_value_that_is_not_finite_stops_and_a_large_finite_sum_does_not(bad):
    """Finite values whose sum overflows pass; any infinity or NaN is found and counted."""
    values = np.full(10, 3e38, dtype=np.float32)  # their float32 sum overflows
    assert numeric.check_finite(values, name="x", process="p", month=1, key="k") is values
    values[[2, 5]] = bad
    with pytest.raises(numeric.NumericError, match="not finite .* for 2 of 10"):
        numeric.check_finite(values, name="x", process="p", month=1, key="k")


def test_a_check_limited_to_some_arrays_reads_only_those(pop):
    pop.monthly_spend[4] = np.nan
    numeric.check_population(pop, process="behaviour", month=3, key="k",
                             names=("wealth_days", "payments_per_month"))
    with pytest.raises(numeric.NumericError, match="monthly_spend"):
        numeric.check_population(pop, process="behaviour", month=3, key="k",
                                 names=("wealth_days", "monthly_spend"))
