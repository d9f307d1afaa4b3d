"""The mechanisms behind region and OS access (DOMAIN 3) and the awakened penalty (DOMAIN 2):
hard rules and deductions with exact, checkable effects, not free score offsets."""

from __future__ import annotations

import numpy as np
import pytest
from credit_helpers import scenario

from sim.model import scoring
from sim.model.population import synthesize
from sim.model.streams import generator
from sim.scenario import ScenarioError

N = 20_000


def _pop(changes: dict):
    sc = scenario({"population.users": N, **changes})
    return sc, synthesize(sc, generator(sc.seed, "population"))


def test_restricted_users_are_never_eligible_and_carry_the_reason():
    sc, pop = _pop({"population.regions.county.restricted": 0.4,
                    "population.regions.new_tier1.restricted": 0.1})
    ev = scoring.evaluate(pop, sc)
    bit = scoring.REASONS["region_restricted"]
    assert not ev.eligible[pop.restricted].any()
    assert np.array_equal((ev.reasons & bit) != 0, pop.restricted)
    regions = list(sc.population.regions)
    for name, share in (("county", 0.4), ("new_tier1", 0.1), ("tier1", 0.0)):
        in_region = pop.region == regions.index(name)
        got = pop.restricted[in_region].mean()
        se = np.sqrt(share * (1 - share) / in_region.sum())
        assert abs(got - share) <= 4 * se + 1e-12, (name, got)


def test_a_restriction_changes_no_other_draw():
    """Restrictions are drawn last: the rest of the population is the same user for user."""
    _, a = _pop({})
    _, b = _pop({"population.regions.county.restricted": 0.7})
    for attr in ("archetype", "region", "os", "unknown_sources", "payments_per_month",
                 "other_indicators", "device_grade"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr


def test_lost_security_points_cost_the_offset_of_a_device_that_much_less_secure():
    """DOMAIN's 15-20 points are device security points: with grades A 95 (+60), B 80 (+10)
    and C 60 (-50), a phone losing 17.5 points scores like a device at 77.5 (A) or 62.5 (B),
    read linearly along the grades, and a C phone has nothing less secure to fall to."""
    grades = {"A": (95, 60.0), "B": (80, 10.0), "C": (60, -50.0)}
    base = {f"population.device_grades.{g}.{k}": v for g, (sec, off) in grades.items()
            for k, v in (("security_score", sec), ("score_offset", off))}
    sc0, pop = _pop({**base, "population.os.android.unknown_sources_points": 0.0})
    sc1 = sc0.replace({"population.os.android.unknown_sources_points": 17.5})
    diff = scoring.evaluate(pop, sc0).score - scoring.evaluate(pop, sc1).score
    assert pop.unknown_sources.any() and not pop.unknown_sources.all()
    ios = pop.os == list(sc0.population.os).index("ios")
    assert not pop.unknown_sources[ios].any()  # iOS phones have no unknown-sources setting
    expected = {"A": 60.0 - (-50.0 + 60.0 * 17.5 / 20.0),  # 77.5: 2.5 points above C on B-C
                "B": 10.0 - (-50.0 + 60.0 * 2.5 / 20.0),   # 62.5
                "C": 0.0}
    for code, grade in enumerate(sc0.population.device_grades):
        flagged = pop.unknown_sources & (pop.device_grade == code)
        np.testing.assert_allclose(diff[flagged], expected[grade], atol=1e-3)
    np.testing.assert_allclose(diff[~pop.unknown_sources], 0.0, atol=1e-3)
    # without security scores the points are score points
    plain = {f"population.device_grades.{g}.security_score": None for g in grades}
    sc2 = sc0.replace(plain)
    diff = (scoring.evaluate(pop, sc2).score
            - scoring.evaluate(pop, sc2.replace({"population.os.android.unknown_sources_points":
                                                 17.5})).score)
    np.testing.assert_allclose(diff[pop.unknown_sources], 17.5, atol=1e-3)


def test_the_awakened_penalty_costs_exactly_its_points_while_the_pattern_lasts():
    sc0, pop = _pop({"scoring.penalties.awakened.points": 0.0})
    sc1 = sc0.replace({"scoring.penalties.awakened.points": 140.0})
    pop.awakened_months[: N // 10] = 3  # a tenth of users woke up three months ago
    diff = scoring.evaluate(pop, sc0).score - scoring.evaluate(pop, sc1).score
    np.testing.assert_allclose(diff[: N // 10], 140.0, atol=1e-3)
    np.testing.assert_allclose(diff[N // 10:], 0.0, atol=1e-3)


@pytest.mark.parametrize("key, value", [
    ("population.regions.county.restricted", 1.5),
    ("population.regions.county.restricted", -0.1),
    ("population.os.android.unknown_sources_points", -3),
    ("population.device_grades.A.security_score", 120),
])
def test_bad_mechanism_values_name_their_key(key, value):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        scenario({key: value})
