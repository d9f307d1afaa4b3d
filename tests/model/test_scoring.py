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


def test_the_unknown_sources_deduction_is_exactly_its_points_on_those_phones_only():
    sc0, pop = _pop({"population.os.android.unknown_sources_points": 0.0})
    sc1 = sc0.replace({"population.os.android.unknown_sources_points": 17.5})
    diff = scoring.evaluate(pop, sc0).score - scoring.evaluate(pop, sc1).score
    assert pop.unknown_sources.any() and not pop.unknown_sources.all()
    ios = pop.os == list(sc0.population.os).index("ios")
    assert not pop.unknown_sources[ios].any()  # iOS phones have no unknown-sources setting
    np.testing.assert_allclose(diff[pop.unknown_sources], 17.5, atol=1e-3)
    np.testing.assert_allclose(diff[~pop.unknown_sources], 0.0, atol=1e-3)


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
])
def test_bad_mechanism_values_name_their_key(key, value):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        scenario({key: value})
