"""The statistics module against textbook numbers computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis import stats


def test_t_interval_matches_a_hand_computed_value():
    # mean 2.5, sd sqrt(5/3) = 1.290994, t(0.975, 3) = 3.182446 -> half width 2.054261
    mean, lo, hi = stats.interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert (lo, hi) == pytest.approx((2.5 - 2.054261, 2.5 + 2.054261), abs=1e-6)


def test_t_interval_at_another_level_and_from_one_value():
    # 90%: t(0.95, 3) = 2.353363 -> half width 2.353363 * 1.290994 / 2 = 1.519090
    _, lo, hi = stats.interval([1.0, 2.0, 3.0, 4.0], level=0.90)
    assert (lo, hi) == pytest.approx((2.5 - 1.519090, 2.5 + 1.519090), abs=1e-6)
    mean, lo, hi = stats.interval([7.0])
    assert mean == 7.0 and np.isnan(lo) and np.isnan(hi)


def test_t_half_width_is_element_wise():
    half = stats.t_half_width([np.sqrt(5 / 3), 2.0], [4, 1])
    assert half[0] == pytest.approx(2.054261, abs=1e-6) and np.isnan(half[1])


def test_two_proportion_interval_matches_the_wald_formula():
    # p1 = 56/70 = 0.8, p2 = 48/80 = 0.6; se = sqrt(.8*.2/70 + .6*.4/80) = 0.0727029
    diff, lo, hi = stats.two_proportion_interval(56, 70, 48, 80)
    assert diff == pytest.approx(-0.2)
    assert lo == pytest.approx(-0.342495, abs=1e-6)
    assert hi == pytest.approx(-0.057505, abs=1e-6)


def test_mean_difference_interval_uses_welch_standard_error():
    # means 2.5 and 5, variances 5/3 and 20/3, n = 4: se = sqrt(25/12) = 1.443376
    diff, lo, hi = stats.mean_difference_interval([1, 2, 3, 4], [2, 4, 6, 8])
    assert diff == pytest.approx(2.5)
    assert (lo, hi) == pytest.approx((2.5 - 2.828966, 2.5 + 2.828966), abs=1e-5)


def test_srm_chi_square_textbook_value():
    # 821 vs 779 for a 50/50 split: chi2 = 2 * 21^2 / 800 = 1.1025, p = 2 (1 - Phi(1.05))
    chi2, p = stats.srm_test([821, 779], [0.5, 0.5])
    assert chi2 == pytest.approx(1.1025)
    assert p == pytest.approx(0.293718, abs=1e-5)


def test_minimum_detectable_difference_has_the_power_it_claims():
    # the equal-variance shortcut (1.959964 + 0.841621) * sqrt(0.05 * 0.95 * 2 / 10000) =
    # 0.0086348 is optimistic for an increase and pessimistic for a decrease
    up = stats.minimum_detectable_difference(0.05, 10_000, 10_000)
    down = stats.minimum_detectable_difference(0.05, 10_000, 10_000, direction="decrease")
    assert down < 0.0086348 < up
    # simulated: the two-sided pooled z-test at 5% rejects p2 = p + mde 80% of the time
    rng = np.random.default_rng(1)
    for d, sign in ((up, 1), (down, -1)):
        x1 = rng.binomial(10_000, 0.05, 40_000)
        x2 = rng.binomial(10_000, 0.05 + sign * d, 40_000)
        pooled = (x1 + x2) / 20_000
        z = (x2 - x1) / 10_000 / np.sqrt(pooled * (1 - pooled) * 2 / 10_000)
        assert (np.abs(z) > 1.959964).mean() == pytest.approx(0.80, abs=0.01)


