"""The A/B sample-ratio check on exposure, redrawn per replication, and printed."""

from __future__ import annotations

from credit_helpers import ROOT
from typer.testing import CliRunner

import sim
from sim.cli.app import app

AB = ROOT / "scenarios" / "ab-version-vs-tier.yaml"
SAME = {"name": "tier-first"}  # both arms run the control's strategy: an A/A test


def _aa(users: int, **changes) -> dict:
    return {"population.users": users, "ab.arms.treatment.rollout": SAME, **changes}


def test_an_arm_restricted_to_new_clients_is_flagged_by_exposure_srm():
    # clients upgrade slowly, so a third of the users stay under 8.0.40 for the whole run
    sc = sim.load(AB, _aa(20000, **{"release.adoption_half_life_weeks": 1000}))
    floor = sc.rollout.phases  # the control's phases, with an 8.0.40 client floor
    restricted = [p.model_dump(mode="json") | {"min_version": "8.0.40"} for p in floor]
    sc = sc.replace({"ab.arms.treatment.rollout": {"name": "new-clients",
                                                  "phases": restricted}})
    srm = sim.run(sc, quarters=4).summary["ab"]["srm"]
    assert not srm["assignment"]["mismatch"]  # the split itself is fine
    assert srm["exposure"]["invited"]["mismatch"] and srm["mismatch"]


def test_an_aa_split_flags_at_most_one_in_twenty_seeds():
    base = sim.load(AB, _aa(3000))
    assignment, flags = [], 0
    for seed in range(20):
        srm = sim.run(base.replace({"seed": seed}), quarters=2).summary["ab"]["srm"]
        assignment.append(srm["assignment"]["p_value"])
        flags += srm["mismatch"] or srm["assignment"]["mismatch"]
    assert flags <= 1
    assert len(set(assignment)) >= 10  # the split is redrawn with each replication's seed


def test_the_cli_prints_the_srm_flag_and_the_arms(tmp_path):
    res = CliRunner().invoke(app, ["run", str(AB), "--users", "8000", "--quarters", "3",
                                   "--quiet", "--no-report", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "sample ratio (assignment)" in res.output and "sample ratio (invited)" in res.output
    assert "A/B arms" in res.output and "defaults / assigned user (ITT)" in res.output
    res = CliRunner().invoke(app, ["run", str(AB), "--users", "8000", "--quarters", "3",
                                   "--quiet", "--no-report", "--out", str(tmp_path / "s"),
                                   "--set", "ab.arms.treatment.share=0.5",
                                   "--set", "ab.arms.treatment.rollout.phases.0.batch.share=0.2"])
    assert res.exit_code == 0, res.output
    assert "SRM MISMATCH" in res.output


def test_holdout_rate_has_an_exact_interval_and_a_small_cell_warning():
    sc = sim.load(AB, _aa(6000, **{"rollout.holdout": {"share": 0.3, "margin": 5}}))
    result = sim.run(sc, quarters=4)
    ab = result.summary["ab"]
    assert ab["alpha"] == 0.05 and ab["power"] == 0.80
    for name, arm in ab["arms"].items():
        h = arm["holdout"]
        assert h["users"] > 0
        lo, hi = h["ci_low"], h["ci_high"]
        assert lo <= h["default_rate"] <= hi and hi > 0
        if h["small_cell"]:
            assert any(f"arm '{name}': the holdout" in w for w in result.summary["warnings"])
