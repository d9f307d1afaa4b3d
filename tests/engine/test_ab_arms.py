"""A/B arms inside one population, the holdout below the cut-off, and the swap set."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from credit_helpers import ROOT
from typer.testing import CliRunner

import sim
from sim.analysis import abtest
from sim.cli.app import app
from sim.engine.simulation import Simulation
from sim.model import scoring

AB = ROOT / "scenarios" / "ab-version-vs-tier.yaml"


@pytest.fixture(scope="module")
def ab_run() -> sim.Result:
    sc = sim.load(AB, {
        "population.users": 40000,
        "ab.arms": {
            "control": {"share": 0.6},
            "treatment": {"share": 0.4, "rollout": {"name": "version-first", "phases": [
                {"name": "v", "start": "2025-01-01", "batch": {"share": 0.05},
                 "ordering": "score", "min_version": "8.0.40"}]}},
        },
    })
    return sim.run(sc, quarters=6)


def test_arms_never_invite_users_outside_their_arm(ab_run):
    pop = ab_run.population
    invited = np.flatnonzero(pop.vintage >= 0)
    arm_of_batch = ab_run.batches["arm"].to_numpy()[pop.vintage[invited]]
    arm_of_user = np.array(ab_run.arm_names)[ab_run.arm[invited]]
    assert invited.size > 1000
    assert (arm_of_batch == arm_of_user).all()
    assert set(ab_run.batches["arm"]) == {"control", "treatment"}
    # both kinds of invitation happen in each arm: batches and re-evaluation admissions
    kinds = ab_run.batches.groupby("arm")["kind"].agg(set)
    assert all({"batch", "reevaluation"} <= k for k in kinds)
    assert (ab_run.vintages["arm"].to_numpy()
            == ab_run.batches["arm"].to_numpy()[ab_run.vintages["vintage"]]).all()


def test_arm_shares_and_srm_in_a_run(ab_run):
    arms = ab_run.arms.set_index("arm")
    n = arms["users"].sum()
    for name, share in (("control", 0.6), ("treatment", 0.4)):
        assert abs(arms.loc[name, "users"] / n - share) < 4 * np.sqrt(share * (1 - share) / n)
    srm = ab_run.summary["ab"]["srm"]
    assert srm["users"] == arms["users"].tolist() and not srm["assignment"]["mismatch"]
    # the treatment's own strategy (5% batches of 8.0.40+ clients) reaches other numbers of
    # users than the control: exposure does not follow the split, and says so
    assert srm["exposure"]["invited"]["counts"] == [
        int(a["ever_invited_users"]) for a in ab_run.summary["ab"]["arms"].values()]


def test_arm_segments_and_table_add_up_to_the_run(ab_run):
    seg = ab_run.segments[ab_run.segments["dimension"] == "arm"]
    assert seg.groupby("month")["value"].apply(set).map(len).eq(2).all()
    per_month = seg.groupby("month")[["population", "invited", "visible", "borrowers"]].sum()
    # segments are recorded at quarter ends and the last month (reporting.segment_months)
    months = ab_run.monthly["month"].max()
    assert set(per_month.index) == set(range(3, months + 1, 3)) | {months}
    monthly = ab_run.monthly.set_index("month").loc[per_month.index]
    assert np.allclose(per_month["population"], monthly["population"])
    assert np.allclose(per_month["invited"], monthly["invited"])
    assert np.allclose(per_month["visible"], monthly["visible"])
    assert np.allclose(per_month["borrowers"], monthly["borrowers"])
    arms = ab_run.arms
    last = monthly.iloc[-1]
    assert arms["invited"].sum() == pytest.approx(last["invited"])
    assert arms["defaults"].sum() == pytest.approx(last["cum_defaults"])
    assert (arms["default_rate"] == arms["defaults"] / arms["ever_invited"]).all()


def test_ab_summary_differences_come_from_the_arm_counts(ab_run):
    arms = ab_run.summary["ab"]["arms"]
    c, t = arms["control"], arms["treatment"]
    vs = t["vs_control"]["default_rate"]
    diff, lo, hi = abtest.two_proportion_interval(c["default_users"], c["ever_invited_users"],
                                                  t["default_users"], t["ever_invited_users"])
    assert vs["diff"] == pytest.approx(t["default_rate"] - c["default_rate"])
    assert (vs["ci_low"], vs["ci_high"]) == pytest.approx((lo, hi))
    # the bank's arms are 5,000 times larger than the simulated ones: at least sqrt(5000)
    # finer (more: the variance of a small rate grows with the rise it must detect)
    mde = t["vs_control"]
    assert c["default_users"] > 0 and mde["mde_base_rate"] == c["default_rate"]
    assert mde["mde_default_rate_simulated"] / mde["mde_default_rate"] > np.sqrt(5000)
    assert mde["mde_default_rate_simulated"] == pytest.approx(
        abtest.minimum_detectable_difference(c["default_rate"], c["ever_invited_users"],
                                             t["ever_invited_users"]))


def test_small_arm_is_warned_in_summary_and_cli(tmp_path):
    sc = sim.load(AB, {
        "population.users": 40000,
        "ab.arms.control.share": 0.98,
        "ab.arms.treatment.share": 0.02,
    })
    result = sim.run(sc, quarters=4)
    warnings = result.summary["warnings"]
    assert len(warnings) == 1 and "'treatment'" in warnings[0]
    res = CliRunner().invoke(app, ["run", str(AB), "--users", "5000", "--quarters", "1",
                                   "--quiet", "--out", str(tmp_path / "r"),
                                   "--set", "ab.min_arm_accounts=1e12"])
    assert res.exit_code == 0, res.output
    assert "warning: arm 'control' is too small to measure" in res.output
    assert (tmp_path / "r" / "arms.parquet").exists()
    assert pd.read_parquet(tmp_path / "r" / "arms.parquet")["arm"].tolist() == [
        "control", "treatment"]


def test_holdout_invites_a_random_share_just_under_the_cutoff(baseline_path):
    sc = sim.load(baseline_path, {
        "population.users": 40000,
        "rollout.holdout": {"share": 0.25, "margin": 6},
    })
    s = Simulation(sc, quarters=1)
    plan, phase = sc.rollout, sc.rollout.phases[2]  # national: every open region
    pop = s.pop
    band = ((pop.reasons == scoring.REASONS["score_below_cutoff"])
            & (pop.score >= sc.scoring.cutoff - 6) & (pop.version >= 1))
    s.send_holdout(0, plan, phase, dt.date(2025, 1, 1))
    chosen = s.holdout
    assert chosen.any() and not (chosen & ~band).any()
    assert not pop.eligible[chosen].any() and pop.invited[chosen].all()
    assert abs(chosen.sum() / band.sum() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / band.sum())


def test_holdout_keeps_its_invitation_and_its_defaults_are_observed(baseline_path):
    sc = sim.load(baseline_path, {
        "population.users": 30000,
        "rollout.holdout": {"share": 0.5, "margin": 5},
    })
    result = sim.run(sc, quarters=4)
    pop, held = result.population, result.holdout
    assert (result.batches["kind"] == "holdout").any()
    assert pop.invited[held & ~pop.closed].all()  # re-evaluations did not revoke them
    row = result.arms.iloc[0]
    assert row["holdout"] == held.sum() * pop.weight
    assert row["holdout_defaults"] == (held & (result.book.default_month >= 0)).sum() * pop.weight


def test_swap_set_cells_add_up_to_the_population(baseline_path):
    champion = sim.run(sim.load(ROOT / "scenarios" / "tier-first.yaml",
                                {"population.users": 20000}), quarters=4)
    challenger = sim.run(sim.load(ROOT / "scenarios" / "version-first.yaml",
                                  {"population.users": 20000}), quarters=4)
    table = abtest.swap_set(champion, challenger).set_index("cell")
    assert table.index.tolist() == list(abtest.SWAP_CELLS)
    assert table["users"].sum() == 20_000
    ever_a = (champion.population.vintage >= 0).sum()
    ever_b = (challenger.population.vintage >= 0).sum()
    assert table.loc[["both", "champion_only"], "users"].sum() == ever_a
    assert table.loc[["both", "challenger_only"], "users"].sum() == ever_b
    assert table.loc["champion_only", "users"] > 0 and table.loc["challenger_only", "users"] > 0
    assert np.isnan(table.loc["neither", "default_rate_champion"])
    other_seed = sim.run(sim.load(ROOT / "scenarios" / "version-first.yaml",
                                  {"population.users": 20000}), seed=1, quarters=1)
    with pytest.raises(ValueError, match="same population"):
        abtest.swap_set(champion, other_seed)
