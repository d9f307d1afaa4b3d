"""The A/B arm split: shares respected, stable per user, salted, checked by the SRM test."""

from __future__ import annotations

import numpy as np

from sim.analysis import stats
from sim.model import invites


def test_arm_shares_are_respected_within_sampling_error():
    n, shares = 200_000, [0.5, 0.3, 0.2]
    codes = invites.assign_arms(n, "salt-1", shares)
    counts = np.bincount(codes, minlength=3)
    for count, share in zip(counts, shares, strict=True):
        assert abs(count / n - share) < 4 * np.sqrt(share * (1 - share) / n)
    assert stats.srm_test(counts, shares)[1] > 0.001


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
    assert stats.srm_test(fair, shares)[1] > 0.001
    # a logging bug loses 3% of the treatment arm's users
    lost = np.flatnonzero(codes == 1)[::33]
    broken = np.bincount(np.delete(codes, lost), minlength=2)
    assert stats.srm_test(broken, shares)[1] < 0.001
    # and a split that does not follow its configured shares is flagged too
    assert stats.srm_test(fair, [0.52, 0.48])[1] < 0.001
