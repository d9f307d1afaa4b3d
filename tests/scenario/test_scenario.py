"""Scenario files: inheritance, overrides, and one clear error for each way a file is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import sim
from sim.scenario import ScenarioError, load


def _child(tmp_path: Path, baseline_path: Path, body: str, name: str = "child.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"extends: {baseline_path}\n" + textwrap.dedent(body))
    return path


def test_baseline_carries_domain_figures(baseline):
    w = baseline.scoring.weights
    assert (w["spending_capacity"], w["repayment_trust"], w["social_influence"], w["assets"],
            w["behavioural_stability"], w["risk_resilience"]) == (0.25, 0.20, 0.18, 0.15, 0.12,
                                                                  0.10)
    shares = {v.name: v.share for v in baseline.release.versions if v.share}
    assert shares == {"older": 0.03, "8.0.20": 0.07, "8.0.30": 0.28, "8.0.40": 0.62}
    grades = {k: v.share for k, v in baseline.population.device_grades.items()}
    assert grades == {"A": 0.34, "B": 0.52, "C": 0.14}
    assert baseline.scoring.cutoffs["payments_per_month"].min == 15
    assert baseline.reevaluation.every_months == 3


def test_extends_overrides_only_what_it_names(tmp_path, baseline_path, baseline):
    child = load(_child(tmp_path, baseline_path, """
        name: child
        population:
          users: 1234
    """))
    assert child.name == "child" and child.population.users == 1234
    assert child.population.weight == baseline.population.weight
    assert child.rollout == baseline.rollout


def test_set_overrides_nested_keys_and_list_items(baseline_path):
    sc = load(baseline_path, {"rollout.phases.1.batch.share": 0.2, "scoring.cutoff": 30})
    assert sc.rollout.phases[1].batch.share == 0.2 and sc.scoring.cutoff == 30


def test_digest_ignores_key_order(tmp_path, baseline_path, baseline):
    text = baseline_path.read_text()
    head, _, rest = text.partition("quarters: 12\n")
    swapped = tmp_path / "swapped.yaml"
    swapped.write_text(rest + "\nquarters: 12\n" + head)
    assert load(swapped).digest() == baseline.digest()


BAD = {
    "unknown key": ("population:\n  userz: 5\n", "population.userz", "did you mean 'users'"),
    "shares": ("population:\n  device_grades:\n    A: {share: 0.5}\n",
               "population.device_grades", "sum to 1"),
    "negative count": ("population:\n  users: -3\n", "population.users", "greater than 0"),
    "wrong type": ("quarters: many\n", "quarters", "integer"),
    "bad date": ("start: 2025-13-01\n", "start", "date"),
    "probability": ("population:\n  past_default: 1.5\n", "population.past_default",
                    "less than or equal to 1"),
    "phase after horizon": ("quarters: 1\n", "rollout.phases.1.start", "outside the horizon"),
    "unknown version": ("rollout:\n  phases:\n    - {name: a, start: 2025-01-01, "
                        "batch: {share: 0.1}, min_version: 9.9.9}\n",
                        "rollout.phases.0.min_version", "unknown version"),
    "batch kind": ("rollout:\n  phases:\n    - {name: a, start: 2025-01-01}\n",
                   "rollout.phases.0", "exactly one of 'batch' or 'ramp'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_name_file_and_key(tmp_path, baseline_path, case):
    body, key, allowed = BAD[case]
    path = _child(tmp_path, baseline_path, body)
    with pytest.raises(ScenarioError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message and f"'{key}'" in message and allowed in message, message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\npopulation:\n  users: [1, 2\nseed: 3\n")
    with pytest.raises(ScenarioError) as info:
        load(path)
    assert info.value.line is not None and str(path) in str(info.value)


def test_extends_loop_and_missing_parent(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\n")
    b.write_text("extends: a.yaml\n")
    with pytest.raises(ScenarioError, match="loops"):
        load(a)
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ScenarioError, match="does not exist"):
        load(tmp_path / "c.yaml")


def test_set_unknown_path_is_refused(baseline_path):
    with pytest.raises(ScenarioError, match="no list item 7"):
        load(baseline_path, {"rollout.phases.7.batch.share": 0.1})
    with pytest.raises(ScenarioError, match="did you mean 'cutoff'"):
        load(baseline_path, {"scoring.cutof": 3})


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load(path)


def test_api_round_trip(baseline):
    again = sim.scenario.validate(baseline.model_dump(mode="json"))
    assert again == baseline


def test_users_option_keeps_the_real_population(baseline_path):
    """``--users N`` changes the sample, not the market: absolute limits bind alike."""
    base = load(baseline_path)
    real = base.population.users * base.population.weight
    for n in (20_000, 300_000):
        sized = load(baseline_path, {"seed": 7}, users=n)
        assert sized.population.users == n
        assert sized.population.users * sized.population.weight == pytest.approx(real)
        assert sized.seed == 7  # other overrides still apply
    for bad in (0, -3, 2.5):
        with pytest.raises(ScenarioError, match="population.users.*at least 1"):
            load(baseline_path, users=bad)
    # the book in CNY (what the capital limit is set against) is the same market's
    book = [sim.run(load(baseline_path, users=n)).monthly.outstanding.iloc[-1]
            for n in (20_000, 60_000)]
    assert book[0] == pytest.approx(book[1], rel=0.05)


def test_a_sized_load_is_the_file_with_its_users_and_weight_set(baseline_path):
    """``users`` validates the file twice (from one reading): the result is the file with
    the overrides, the users and the weight they imply set in one go."""
    base = load(baseline_path, {"seed": 7, "rollout.phases.0.batch.share": 0.05})
    weight = float(base.population.users * base.population.weight / 5000)
    sized = load(baseline_path, {"seed": 7, "rollout.phases.0.batch.share": 0.05}, users=5000)
    assert sized == load(baseline_path, {"seed": 7, "rollout.phases.0.batch.share": 0.05,
                                         "population.users": 5000,
                                         "population.weight": weight})


def test_bound_cards_beyond_the_counted_maximum_is_refused(baseline_path):
    """A mean far above what is counted used to crash the Poisson draw (found by the fuzzer)."""
    with pytest.raises(ScenarioError, match="account_classes.III.bound_cards.*less than or"):
        load(baseline_path, {"population.account_classes.III.bound_cards": "9e18"})
