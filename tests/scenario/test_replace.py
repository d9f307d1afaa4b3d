"""Scenario.replace: a changed copy, validated again, with errors naming the key."""

from __future__ import annotations

import pytest

from sim.scenario import ScenarioError


def test_replace_returns_a_new_validated_scenario(baseline):
    new = baseline.replace({"rollout.phases.0.batch.share": 0.1, "population.users": 5000})
    assert new.rollout.phases[0].batch.share == 0.1
    assert new.population.users == 5000
    assert baseline.population.users != 5000  # the original is untouched (frozen)
    assert new.replace({}) == new


def test_replace_unknown_key_suggests_the_nearest(baseline):
    with pytest.raises(ScenarioError, match="population.userz.*did you mean 'users'"):
        baseline.replace({"population.userz": 10})


def test_replace_bad_value_says_what_is_allowed(baseline):
    with pytest.raises(ScenarioError, match="rollout.phases.0.batch.share.*less than or equal"):
        baseline.replace({"rollout.phases.0.batch.share": 3})


def test_replacing_a_category_share_rescales_its_siblings(baseline):
    name = next(iter(baseline.population.archetypes))
    new = baseline.replace({f"population.archetypes.{name}.share": 0.5})
    shares = {k: a.share for k, a in new.population.archetypes.items()}
    assert shares[name] == 0.5
    assert sum(shares.values()) == pytest.approx(1.0)


def test_plain_share_keys_are_plain_numbers(baseline):
    """A batch's share is not a category share: nothing else is rescaled."""
    new = baseline.replace({"rollout.phases.1.batch.share": 0.2})
    assert new.rollout.phases[1].batch.share == 0.2
    assert new.population == baseline.population


def test_the_seed_is_replaced_like_any_key(baseline):
    assert baseline.replace({"seed": 42}).seed == 42


def test_a_replaced_rollout_key_reaches_the_arms_that_inherit_it():
    """Arms merge their own keys over the rollout, as in the file; replace keeps that."""
    from pathlib import Path

    import sim

    ab = sim.load(Path(__file__).resolve().parents[2] / "scenarios" / "ab-version-vs-tier.yaml")
    assert ab.replace({}) == ab
    new = ab.replace({"rollout.phases.0.batch.share": 0.11})
    own = {name: arm.rollout for name, arm in ab.ab.arms.items()}
    for name, arm in new.ab.arms.items():
        inherits = own[name].phases[0].batch == ab.rollout.phases[0].batch
        expected = 0.11 if inherits else own[name].phases[0].batch.share
        assert arm.rollout.phases[0].batch.share == expected
