"""Dotted keys: one implementation for overrides, replace, sweeps and calibration."""

from __future__ import annotations

import pytest

from sim.scenario import Scenario, ScenarioError, keys, load


def test_assignments_parse_values_as_yaml():
    assert keys.parse_assignments(["a.b=0.05", "c=tier", "d=[1, 2]", "e="]) == {
        "a.b": 0.05, "c": "tier", "d": [1, 2], "e": ""}
    with pytest.raises(ScenarioError, match="key.path=value"):
        keys.parse_assignment("no-equals-sign")


def test_a_share_is_a_category_share_only_where_the_schema_says_so():
    assert keys.share_group(Scenario, "population.archetypes.mass.share") == \
        "population.archetypes"
    assert keys.share_group(Scenario, "ab.arms.control.share") == "ab.arms"
    for plain in ("rollout.phases.0.batch.share", "release.versions.0.share",
                  "rollout.holdout.share"):
        assert keys.share_group(Scenario, plain) is None


def test_numeric_keys_come_from_the_schema():
    assert keys.numeric_key(Scenario, "rollout.phases.0.batch.share")
    assert keys.numeric_key(Scenario, "population.users")
    assert keys.numeric_key(Scenario, "population.archetypes.any.tilts.regions.tier1")
    assert not keys.numeric_key(Scenario, "rollout.phases.0.ordering")
    with pytest.raises(ScenarioError, match="did you mean 'cutoff'"):
        keys.numeric_key(Scenario, "scoring.cutof")


def test_unknown_keys_and_list_items_are_refused_with_a_hint(baseline_path):
    with pytest.raises(ScenarioError, match="no list item 7; the list has 3 items"):
        load(baseline_path, {"rollout.phases.7.batch.share": 0.1})
    with pytest.raises(ScenarioError, match="scoring.cutof.*did you mean 'cutoff'"):
        load(baseline_path, {"scoring.cutof": 3})


def test_an_override_error_says_how_the_value_was_set(baseline_path):
    with pytest.raises(ScenarioError) as exc:
        load(baseline_path, {"population.users": -1}, note="set on the command line")
    text = str(exc.value)
    assert "population.users" in text and "set on the command line" in text
    assert "--set" not in text  # the API names keys, not command-line flags


def test_nest_writes_a_whole_list_a_key_runs_through(baseline):
    full = baseline.model_dump(mode="json")
    out = keys.nest({"scoring.cutoff": 30, "rollout.phases.0.batch.share": 0.1}, full)
    assert out["scoring"] == {"cutoff": 30}
    assert isinstance(out["rollout"]["phases"], list)  # extends replaces lists whole
    assert len(out["rollout"]["phases"]) == len(baseline.rollout.phases)
