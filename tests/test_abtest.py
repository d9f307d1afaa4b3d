"""A/B statistics against textbook numbers, and the arm split."""

from __future__ import annotations

import numpy as np
import pytest

from sim.analysis import abtest
from sim.model import invites


def test_two_proportion_interval_matches_the_wald_formula():
    # p1 = 56/70 = 0.8, p2 = 48/80 = 0.6; se = sqrt(.8*.2/70 + .6*.4/80) = 0.0727029
    diff, lo, hi = abtest.two_proportion_interval(56, 70, 48, 80)
    assert diff == pytest.approx(-0.2)
    assert lo == pytest.approx(-0.342495, abs=1e-6)
    assert hi == pytest.approx(-0.057505, abs=1e-6)


def test_mean_difference_interval_uses_welch_standard_error():
    # means 2.5 and 5, variances 5/3 and 20/3, n = 4: se = sqrt(25/12) = 1.443376
    diff, lo, hi = abtest.mean_difference_interval([1, 2, 3, 4], [2, 4, 6, 8])
    assert diff == pytest.approx(2.5)
    assert (lo, hi) == pytest.approx((2.5 - 2.828966, 2.5 + 2.828966), abs=1e-5)


def test_srm_chi_square_textbook_value():
    # 821 vs 779 for a 50/50 split: chi2 = 2 * 21^2 / 800 = 1.1025, p = 2 (1 - Phi(1.05))
    chi2, p = abtest.srm_test([821, 779], [0.5, 0.5])
    assert chi2 == pytest.approx(1.1025)
    assert p == pytest.approx(0.293718, abs=1e-5)


def test_minimum_detectable_difference_textbook_value_and_lehr():
    # (1.959964 + 0.841621) * sqrt(0.05 * 0.95 * 2 / 10000) = 0.0086348
    mde = abtest.minimum_detectable_difference(0.05, 10_000, 10_000)
    assert mde == pytest.approx(0.0086348, abs=1e-6)
    # Lehr's rule of thumb: n per arm ~ 16 p (1 - p) / d^2 at 80% power, 5% two-sided
    assert 16 * 0.05 * 0.95 / mde**2 == pytest.approx(10_000, rel=0.03)
    # a quarter of the sample doubles the detectable difference
    assert abtest.minimum_detectable_difference(0.05, 2_500, 2_500) == pytest.approx(2 * mde)


def test_arm_shares_are_respected_within_sampling_error():
    n, shares = 200_000, [0.5, 0.3, 0.2]
    codes = invites.assign_arms(n, "salt-1", shares)
    counts = np.bincount(codes, minlength=3)
    for count, share in zip(counts, shares, strict=True):
        assert abs(count / n - share) < 4 * np.sqrt(share * (1 - share) / n)
    assert abtest.srm_test(counts, shares)[1] > 0.001


def test_arm_of_a_user_is_stable_and_salted():
    small = invites.assign_arms(1_000, "s", [0.5, 0.5])
    large = invites.assign_arms(5_000, "s", [0.5, 0.5])
    assert np.array_equal(small, large[:1000])
    other = invites.assign_arms(100_000, "t", [0.5, 0.5])
    same = invites.assign_arms(100_000, "s", [0.5, 0.5])
    assert abs((other == same).mean() - 0.5) < 0.01  # a new salt re-splits independently


def test_srm_flags_a_broken_split_and_passes_a_fair_one():
    shares = [0.5, 0.5]
    codes = invites.assign_arms(100_000, "ab", shares)
    fair = np.bincount(codes, minlength=2)
    assert abtest.srm_test(fair, shares)[1] > 0.001
    # a logging bug loses 3% of the treatment arm's users
    lost = np.flatnonzero(codes == 1)[::33]
    broken = np.bincount(np.delete(codes, lost), minlength=2)
    assert abtest.srm_test(broken, shares)[1] < 0.001
    # and a split that does not follow its configured shares is flagged too
    assert abtest.srm_test(fair, [0.52, 0.48])[1] < 0.001
