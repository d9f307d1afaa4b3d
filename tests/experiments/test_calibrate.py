"""Calibration: recovering known parameters, the shipped baseline against DOMAIN.md, and
targets from a bank's own observed monthly figures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.experiments.calibrate import (
    Target,
    TargetError,
    calibrate,
    echo_of,
    evaluate,
    parse_targets,
    run_tables,
    statistic,
    with_values,
)
from sim.experiments.parameters import Parameter
from sim.model.population import synthesize, tilted_shares
from sim.scenario import ScenarioError, parse_yaml

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_TARGETS = ROOT / "scenarios" / "targets" / "domain.yaml"
runner = CliRunner()


def _domain_targets():
    return parse_targets(parse_yaml(DOMAIN_TARGETS.read_text()), str(DOMAIN_TARGETS))


def _eligibility_targets(scenario, tolerance=0.01):
    """Eligibility by device grade and region at the first re-evaluation, read off one run."""
    specs = [Target(name=f"{dim}={v}", table="segments", month=3,
                    filter={"dimension": dim, "value": v},
                    statistic="eligible / population", value=0.0, tolerance=tolerance)
             for dim, values in (("device_grade", ["A", "B", "C"]),
                                 ("region", ["tier1", "new_tier1", "county"]))
             for v in values]
    truth = evaluate(scenario, specs)
    return [t.model_copy(update={"value": v}) for t, v in zip(specs, truth.simulated,
                                                                strict=True)]


def test_calibration_recovers_known_parameters(baseline_path):
    known = {"population.device_grades.A.score_offset": 43.0,
             "population.regions.county.restricted": 0.45, "scoring.cutoff": 25.0}
    # (no phone allows unknown sources: their deduction moves with the device offsets, which
    # would leave the A offset a flatter objective than this test's point needs)
    truth, _ = with_values(sim.load(baseline_path, {"population.users": 20000,
                                                    "population.os.android.unknown_sources": 0}),
                           known)
    targets = _eligibility_targets(truth)
    perturbed, _ = with_values(truth, {"population.device_grades.A.score_offset": 25.0,
                                       "population.regions.county.restricted": 0.15,
                                       "scoring.cutoff": 35.0})
    params = [Parameter.between("population.device_grades.A.score_offset", 0, 80),
              Parameter.between("population.regions.county.restricted", 0, 0.9),
              Parameter.between("scoring.cutoff", 10, 45)]
    fit = calibrate(perturbed, targets, params, budget_evals=120)
    # Common random numbers make the truth an exact zero of the objective; the score is
    # continuous, so 20,000 users pin each score parameter to well under one point and the
    # county restriction (about 5,000 users) to a couple of points of share.
    for key, value in known.items():
        tol = 0.03 if key.endswith("restricted") else 1.0
        assert fit.params[key] == pytest.approx(value, abs=tol), (key, fit.params)
    assert fit.report.within.all()


def test_shipped_baseline_meets_every_domain_target(baseline_path):
    targets, _ = _domain_targets()
    # 300,000 users standing for the baseline's billion: the rarest segment (clients left on
    # 8.0.20 at the horizon, about 0.14% of users with access) still has a sampling error under
    # a third of its tolerance.
    report = evaluate(sim.load(baseline_path, users=300_000), targets)
    known_se = report[report.standard_error.notna()]
    # all but the churn pooled over quarters and the region ordering (a maximum over strata)
    assert len(known_se) >= len(report) - 2
    assert (known_se.standard_error < known_se.tolerance / 3).all(), known_se.to_string()
    assert report.within.all(), report[~report.within].to_string()
    assert (report.unmet == "").all(), "no target is marked unmet"


def test_domain_targets_cover_every_table_of_the_issue():
    targets, params = _domain_targets()
    names = " ".join(t.name for t in targets)
    for part in ("archetype", "region", "device_grade", "data_sharing", "class II", "churn",
                 "payments_per_month", "wealth_days", "credit_history_years", "awakened",
                 "iOS", "region ordering"):
        assert part in names
    assert all(t.tolerance >= 0.05 for t in targets if t.statistic == "invited / population")
    assert params, "the targets file names the default free parameters"


SHIPPED_TARGETS = sorted((ROOT / "scenarios" / "targets").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_TARGETS, ids=lambda p: p.name)
def test_a_shipped_targets_file_frees_no_more_parameters_than_it_has_targets(path):
    targets, params = parse_targets(parse_yaml(path.read_text()), str(path))
    assert len(params) <= len(targets), (
        f"{path.name} frees {len(params)} parameters for {len(targets)} targets: fix the "
        "ones no target identifies at documented values")
    # region and OS effects come from mechanisms (restrictions, composition, the Android
    # unknown-sources deduction), never from free score offsets
    assert not [p.key for p in params if p.key.startswith(("population.regions.",
                                                           "population.os."))
                and p.key.endswith("score_offset")]


@pytest.mark.parametrize("path", SHIPPED_TARGETS, ids=lambda p: p.name)
def test_no_shipped_target_echoes_an_input(path):
    targets, _ = parse_targets(parse_yaml(path.read_text()), str(path))
    echoes = {t.name: echo_of(t) for t in targets if echo_of(t)}
    assert not echoes


def test_visibility_by_version_is_an_echo_of_the_visible_input(baseline_path):
    """The old targets' statistic restates `release.versions[].visible`: moving the input
    moves the statistic with it, whatever else the model does."""
    t = Target(name="entry visible version=8.0.30", table="segments", month=12,
               filter={"dimension": "version", "value": "8.0.30"},
               statistic="visible / invited", value=0.57, tolerance=0.05)
    assert echo_of(t) == "release.versions[].visible"
    base = sim.load(baseline_path, {"population.users": 20000})
    versions = base.model_dump(mode="json")["release"]["versions"]
    lowered = [dict(v, visible=0.2) if v["name"] == "8.0.30" else v for v in versions]
    a = evaluate(base, [t]).simulated.iloc[0]
    b = evaluate(base.replace({"release.versions": lowered}), [t]).simulated.iloc[0]
    assert b < 0.6 * a  # (who is invited on 8.0.30 shifts too, so not exactly 0.2 / 0.57)
    assert echo_of(t.model_copy(update={"statistic": "invited / population"})) is None


def _cells(rows):
    cols = ("month", "archetype", "region", "os", "band", "pattern", "users", "invited")
    return {"cells": pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows]),
            "_weight": pd.DataFrame({"weight": [1.0]})}


def test_versus_contrasts_rates_within_strata_weighted_by_the_first_group():
    tables = _cells([
        (3, "a", "r", "ios", 0, "awakened", 100, 10), (3, "a", "r", "ios", 0, "active", 900, 450),
        (3, "b", "r", "ios", 0, "awakened", 300, 120), (3, "b", "r", "ios", 0, "active", 100, 80),
        (3, "c", "r", "ios", 0, "active", 50, 50),  # no awakened users: left out
    ])
    t = Target(name="gap", table="cells", month=3, filter={"pattern": "awakened"},
               versus={"pattern": "active"}, stratify="archetype",
               statistic="invited / users", value=0, tolerance=1)
    value, se = statistic(tables, t)
    # archetype a: 0.1 vs 0.5, weight 1/4; b: 0.4 vs 0.8, weight 3/4
    assert value == pytest.approx(0.25 * (0.1 - 0.5) + 0.75 * (0.4 - 0.8))
    assert se > 0
    ratio, _ = statistic(tables, t.model_copy(update={"contrast": "ratio"}))
    assert ratio == pytest.approx((0.25 * 0.1 + 0.75 * 0.4) / (0.25 * 0.5 + 0.75 * 0.8))


def test_order_reports_the_largest_reversal_within_any_stratum():
    tables = _cells([
        (36, "a", "tier1", "ios", 0, "active", 100, 80),
        (36, "a", "new_tier1", "ios", 0, "active", 100, 70),
        (36, "a", "county", "ios", 0, "active", 100, 30),
        (36, "b", "tier1", "ios", 0, "active", 100, 40),
        (36, "b", "new_tier1", "ios", 0, "active", 100, 46),  # reversed by 6 points
        (36, "b", "county", "ios", 0, "active", 100, 10),
    ])
    t = Target(name="order", table="cells", month=36,
               order={"region": ["tier1", "new_tier1", "county"]}, stratify="archetype",
               statistic="invited / users", value=0, tolerance=0.03)
    assert statistic(tables, t)[0] == pytest.approx(0.06)
    held = _cells([r if r[2] != "new_tier1" or r[1] != "b" else (*r[:6], 100, 35)
                   for r in tables["cells"].itertuples(index=False)])
    assert statistic(held, t)[0] == 0.0


@pytest.mark.parametrize("extra, message", [
    ({"versus": {"os": "android"}, "order": {"region": ["a", "b"]}}, "either versus"),
    ({"order": {"region": ["a"]}}, "at least two"),
    ({"versus": {"os": "android"}, "statistic": "invited"}, "'a / b'"),
])
def test_malformed_comparisons_are_a_target_error_naming_the_target(extra, message):
    raw = {"targets": [{"name": "bad", "table": "cells", "month": 36, "statistic":
                        "invited / users", "value": 0, "tolerance": 0.1, **extra}]}
    with pytest.raises(TargetError, match=f"target 'bad'.*{message}"):
        parse_targets(raw, "t.yaml")


def test_the_ordering_target_fails_when_the_restrictions_reverse_it(baseline_path):
    targets, _ = _domain_targets()
    order = next(t for t in targets if t.order is not None)
    reversed_ = sim.load(baseline_path, {"population.users": 20000,
                                         "population.regions.tier1.restricted": 0.6,
                                         "population.regions.new_tier1.restricted": 0.0,
                                         "population.regions.county.restricted": 0.0})
    row = evaluate(reversed_, [order]).iloc[0]
    assert not row.within and row.simulated > 0.2


def test_observed_csv_targets_fit_through_the_command_line(tmp_path, baseline_path):
    truth = sim.load(baseline_path, {"population.users": 20000})
    observed = sim.run(truth, quarters=2).monthly  # a bank's first two quarters of shares
    observed = observed[~observed["run_off"]]  # (the run-off months after them invite no one)
    csv = tmp_path / "observed.csv"
    observed[["date", "month", "eligible_share", "invited_share", "visible_share"]].to_csv(
        csv, index=False)
    start = tmp_path / "start.yaml"
    known = truth.scoring.cutoff
    start.write_text(f"extends: {baseline_path}\nscoring:\n  cutoff: {known + 8}\n")
    out = tmp_path / "fitted.yaml"
    res = runner.invoke(app, ["calibrate", str(start), "--targets", str(csv), "--users", "20000",
                              "--params", f"scoring.cutoff={known - 12}:{known + 12}",
                              "--budget-evals", "40",
                              "--share-tolerance", "0.005",
                              "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    written = yaml.safe_load(out.read_text())
    assert written["extends"] == "start.yaml"
    assert set(written) == {"extends", "scoring"} and set(written["scoring"]) == {"cutoff"}
    assert written["scoring"]["cutoff"] == pytest.approx(known, abs=1.0)
    assert "eligible_share@6" in res.output and "fitted" in res.output
    fitted = sim.load(out, {"population.users": 20000})
    assert fitted.population.archetypes == truth.population.archetypes


def test_check_exits_1_when_a_target_is_off(tmp_path, baseline_path):
    targets = tmp_path / "t.yaml"
    targets.write_text(yaml.safe_dump({"targets": [
        {"name": "all eligible", "table": "metrics", "month": 3, "statistic": "eligible_share",
         "value": 0.99, "tolerance": 0.05}]}))
    res = runner.invoke(app, ["calibrate", str(baseline_path), "--targets", str(targets),
                              "--users", "5000", "--check"])
    assert res.exit_code == 1 and "off" in res.output


@pytest.mark.parametrize(("body", "message"), [
    ({"targets": [{"name": "x", "table": "segmentz", "month": 3, "statistic": "invited",
                   "value": 1, "tolerance": 1}]}, "targets.0.table"),
    ({"targets": [{"name": "x", "table": "metrics", "month": 3, "statistic": "invited",
                   "value": 1, "tolerance": 0}]}, "targets.0.tolerance"),
    ({"targetz": []}, "a 'targets' list"),
    ({"targets": [{"name": "x", "table": "metrics", "month": 3, "statistic": "nope",
                   "value": 1, "tolerance": 1}], "params": {"scoring.cutoff": [0, 1]}},
     "'nope' is not a column"),
])
def test_bad_targets_file_is_one_clear_error(tmp_path, baseline_path, body, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    res = runner.invoke(app, ["calibrate", str(baseline_path), "--targets", str(path),
                              "--users", "2000", "--budget-evals", "2", "--out",
                              str(tmp_path / "o.yaml"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o.yaml").exists()


@pytest.mark.parametrize("param", ["scoring.cutof=1:2", "scoring.cutoff=5", "scoring.cutoff=9:3",
                                   "name=0:1"])
def test_bad_params_are_one_clear_error(tmp_path, baseline_path, param):
    res = runner.invoke(app, ["calibrate", str(baseline_path), "--targets", str(DOMAIN_TARGETS),
                              "--params", param, "--users", "2000", "--budget-evals", "1",
                              "--out", str(tmp_path / "o.yaml"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "error" in res.output


def test_fitted_share_rescales_the_others(baseline):
    sc, changed = with_values(baseline, {"population.regions.tier1.share": 0.30})
    shares = {k: r.share for k, r in sc.population.regions.items()}
    assert math.isclose(sum(shares.values()), 1.0) and shares["tier1"] == 0.30
    before = baseline.population.regions
    assert shares["county"] / shares["new_tier1"] == pytest.approx(
        before["county"].share / before["new_tier1"].share)
    assert set(changed) == {f"population.regions.{k}.share" for k in shares}
    with pytest.raises(TargetError):
        with_values(baseline, {"population.regions.nowhere.share": 0.1})


# --------------------------------------------------------------------------- share tilts


def test_tilted_shares_keep_the_margin_and_the_odds():
    arch = np.array([0.2, 0.3, 0.5])
    odds = np.array([[4.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.5, 1.0, 2.0]])
    p = tilted_shares(arch, [0.34, 0.52, 0.14], odds)
    assert np.allclose(arch @ p, [0.34, 0.52, 0.14])
    assert np.allclose(p.sum(axis=1), 1.0)
    # the odds of A against B are 4x (and 1/2x) those of the untilted archetype
    assert (p[0, 0] / p[0, 1]) / (p[1, 0] / p[1, 1]) == pytest.approx(4.0)
    assert (p[2, 0] / p[2, 1]) / (p[1, 0] / p[1, 1]) == pytest.approx(0.5)


def test_tilts_skew_segments_by_archetype_but_keep_population_shares(baseline_path):
    sc = sim.load(baseline_path, {
        "population.users": 200000,
        "population.archetypes.affluent_active.tilts": {"device_grades": {"A": 6.0, "C": 0.2}},
    })
    pop = synthesize(sc, np.random.default_rng(5))
    shares = np.bincount(pop.device_grade, minlength=3) / pop.n
    assert np.allclose(shares, [0.34, 0.52, 0.14], atol=0.005)
    arch = sc.population.archetypes
    odds = [[a.tilts.get("device_grades", {}).get(k, 1.0) for k in "ABC"] for a in arch.values()]
    expected = tilted_shares([a.share for a in arch.values()], [0.34, 0.52, 0.14], odds)
    for code in range(len(arch)):
        mine = pop.archetype == code
        seen = np.bincount(pop.device_grade[mine], minlength=3) / mine.sum()
        assert np.allclose(seen, expected[code], atol=0.015), (code, seen, expected[code])
    assert expected[0, 0] > 0.34 > expected[-1, 0]


def test_unknown_tilt_category_names_the_key(baseline_path):
    with pytest.raises(ScenarioError) as exc:
        sim.load(baseline_path,
                 {"population.archetypes.mass_market.tilts": {"device_grades": {"Z": 2.0}}})
    assert "population.archetypes.mass_market.tilts.device_grades" in str(exc.value)
    assert "allowed: ['A', 'B', 'C']" in str(exc.value)


def test_fitted_shares_are_written_so_the_scenario_loads(tmp_path, baseline_path):
    """Rounded shares must still sum to 1: the calibrated file is meant to be run."""
    out = tmp_path / "fitted.yaml"
    res = runner.invoke(app, ["calibrate", str(baseline_path), "--targets", str(DOMAIN_TARGETS),
                              "--users", "3000", "--budget-evals", "2", "--quiet",
                              "--params", "population.archetypes.affluent_active.share=0.11:0.2",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    fitted = sim.load(out)
    arch = fitted.population.archetypes
    assert arch["affluent_active"].share >= 0.11  # the start was clipped into the bounds
    assert sum(a.share for a in arch.values()) == pytest.approx(1.0, abs=1e-9)


def test_rounded_shares_still_sum_to_one():
    from sim.experiments.calibrate import nested

    thirds = {f"population.regions.{k}.share": 1 / 3 for k in ("a", "b", "c")}
    thirds["scoring.cutoff"] = 1 / 3
    out = nested(thirds)
    assert sum(r["share"] for r in out["population"]["regions"].values()) == pytest.approx(
        1.0, abs=1e-12)
    assert out["scoring"]["cutoff"] == 0.333333


def test_a_parameter_pinned_at_its_bound_is_reported(baseline_path):
    truth = sim.load(baseline_path, {"population.users": 5000})
    targets = _eligibility_targets(truth)
    # the true cut-off lies below the range offered: the fit presses on the lower bound
    low = truth.scoring.cutoff + 8
    fit = calibrate(truth, targets, [Parameter.between("scoring.cutoff", low, low + 20)],
                    budget_evals=30)
    assert fit.params["scoring.cutoff"] == pytest.approx(low, abs=0.05)
    assert fit.at_bound == {"scoring.cutoff": "lower"}


def test_a_behaviour_mean_at_a_month_without_a_rescoring_is_refused(baseline_path):
    """Behaviour is drawn when the bank reads it: a 'users' target at month 4 would read the
    month-3 values, so it is a clear error, not a stale figure."""
    sc = sim.load(baseline_path, users=2_000)
    target = Target(name="payments", table="users", month=4, filter={"group": "with_access"},
                    statistic="payments_per_month / users", value=28, tolerance=4)
    with pytest.raises(TargetError, match="'targets.0.month'.*month 4, where behaviour is not"):
        run_tables(sc, [target])


def test_cell_bands_are_read_against_the_cut_off_in_force(baseline_path):
    """A policy change may move the cut-off during a run: the credit bands of the cells
    table follow the one in force, as if the scenario had started with it."""
    from sim.engine.simulation import Simulation
    from sim.experiments.calibrate import cell_table

    sc = sim.load(baseline_path, users=3_000)
    pop = Simulation(sc, quarters=1).pop
    moved = sc.scoring.cutoff + 10
    assert (cell_table(pop, sc, 3, cutoff=moved)
            == cell_table(pop, sc.replace({"scoring.cutoff": moved}), 3))
    assert cell_table(pop, sc, 3, cutoff=moved) != cell_table(pop, sc, 3)
