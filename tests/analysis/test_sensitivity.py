"""Sensitivity that can be trusted: analytic Sobol indices, a noise floor, no 0/0 shares."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sim.analysis import sensitivity as sa


def test_sobol_matches_the_analytic_indices_of_an_additive_function():
    # y = a x1 + b x2, x ~ U(0, 1): S1 = ST = a^2 / (a^2 + b^2) and b^2 / (a^2 + b^2)
    a, b = 2.0, 1.0
    X = sa.sobol_sample(["x1", "x2"], [(0, 1), (0, 1)], 512, seed=3)
    y = pd.DataFrame({"y": a * X["x1"] + b * X["x2"]})
    table = sa.sobol(X, y).set_index("parameter")
    expected = {"x1": a**2 / (a**2 + b**2), "x2": b**2 / (a**2 + b**2), "dummy": 0.0}
    for name, value in expected.items():
        row = table.loc[name]
        assert row.first_order_low <= value <= row.first_order_high, name
        assert row.total_low <= value <= row.total_high, name
    assert table.loc["x1", "verdict"] == table.loc["x2", "verdict"] == "influential"
    assert table.loc["dummy", "verdict"] == "noise floor"


def test_a_parameter_that_cannot_matter_is_not_distinguishable_from_the_dummy():
    X = sa.sobol_sample(["real", "inert"], [(0, 1), (5, 9)], 256, seed=4)
    noise = np.random.default_rng(0).normal(0, 0.05, len(X))
    table = sa.sobol(X, pd.DataFrame({"y": 3 * X["real"] + noise})).set_index("parameter")
    assert table.loc["real", "verdict"] == "influential"
    assert table.loc["inert", "verdict"] == "not distinguishable from noise"


def test_rbd_fast_on_a_hypercube_flags_an_inert_parameter_as_noise():
    from scipy.stats import qmc

    # the noise floor is a test at 2.5%: over many hypercubes an inert parameter clears it
    # about once in 40 (P(more than 3 of 20) < 0.2%), the real one always
    flagged = 0
    for seed in range(20):
        unit = qmc.LatinHypercube(d=2, rng=np.random.default_rng(seed)).random(200)
        X = pd.DataFrame(unit, columns=["real", "inert"])
        table = sa.rbd_fast(X, pd.DataFrame({"y": np.sin(3 * X["real"])}), seed=seed)
        table = table.set_index("parameter")
        assert table.loc["real", "verdict"] == "influential"
        flagged += table.loc["inert", "verdict"] == "influential"
        # the old report put an inert parameter at 0.39 beside the real one at 0.99
        assert table.loc["inert", "first_order"] < 0.15
    assert flagged <= 3


def test_a_constant_output_gets_no_variation_and_no_scipy_warning():
    X = sa.sobol_sample(["x1"], [(0, 1)], 16, seed=1)
    outputs = pd.DataFrame({"flat": np.full(len(X), 4.8e-18), "y": X["x1"].to_numpy()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = sa.sobol(X, outputs)
    flat = table[table.output == "flat"]
    assert set(flat.verdict) == {"no variation"}
    assert flat.first_order.isna().all() and flat["rank"].isna().all()


def test_grid_main_effects_of_an_inert_parameter_and_a_constant_output():
    X = pd.DataFrame({"maturity": np.repeat([6, 9, 12], 4), "real": np.tile([0, 1, 2, 3], 3)})
    outputs = pd.DataFrame({"y": X["real"] * 2.0, "flat": 1.0})
    table = sa.main_effects(X, outputs)
    y = table[table.output == "y"].set_index("parameter")
    assert y.loc["real", "verdict"] == "influential"
    assert y.loc["real", "first_order"] == pytest.approx(1.0)
    assert y.loc["maturity", "verdict"] == "not distinguishable from noise"
    assert set(table[table.output == "flat"].verdict) == {"no variation"}


def test_too_few_points_names_the_minimum():
    X = pd.DataFrame({"x": np.linspace(0, 1, 8)})
    with pytest.raises(sa.SensitivityError, match="at least 10 points"):
        sa.rbd_fast(X, pd.DataFrame({"y": X["x"]}))
    with pytest.raises(sa.SensitivityError, match="power of two, at least 16"):
        sa.sobol_sample(["x"], [(0, 1)], 8, seed=1)


def test_replication_variance_separates_noise_from_the_effect():
    results = pd.DataFrame({"point": np.repeat([0, 1, 2], 2),
                            "y": [0.0, 2.0, 10.0, 12.0, 20.0, 22.0]})
    row = sa.replication_variance(results, ["y"]).iloc[0]
    assert row.within_point_variance == pytest.approx(2.0)   # var of (0, 2) = 2
    assert row.between_point_variance == pytest.approx(100.0)  # var of (1, 11, 21)
    assert row.replications == 2


# --- the sweep reports through this module ---------------------------------------------

SMALL = {"population.users": 2000, "population.weight": 500000}


def test_a_sweep_of_a_parameter_that_changes_nothing_reports_no_variation(tmp_path,
                                                                          baseline_path):
    from sim.experiments import sweep

    design = sweep.grid(["credit.vintage_maturity_months=6,9,12"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no SciPy ConstantInputWarning leaks
        results = sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=2,
                                  overrides=SMALL)
        table = sweep.sensitivity(results, design)
    assert set(table.verdict) <= {"no variation", "too few finite values"}
    assert table["rank"].isna().all()


def test_a_sweep_folder_refuses_points_computed_at_another_size(tmp_path, baseline_path):
    from sim.experiments import sweep
    from sim.io.folders import OutputError

    design = sweep.grid(["scoring.cutoff=20,30"])
    sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=1, overrides=SMALL)
    bigger = {**SMALL, "population.users": 2500}
    with pytest.raises(OutputError, match="other inputs.*users: 2000 there, 2500 now"):
        sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=1, overrides=bigger)
    with pytest.raises(OutputError, match="other inputs.*replications: 1 there, 2 now"):
        sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=1, overrides=SMALL,
                        reps=2)


def test_a_latin_hypercube_sweep_too_small_for_its_indices_fails_before_running(
        tmp_path, baseline_path):
    from sim.experiments import sweep

    design = sweep.latin_hypercube(["scoring.cutoff=15:35"], 8, seed=1)
    with pytest.raises(sweep.SweepError, match="at least 10 points"):
        sweep.run_sweep(baseline_path, design, tmp_path / "s", quarters=1, overrides=SMALL)
    assert not (tmp_path / "s").exists()


def test_a_sobol_sweep_design_carries_a_dummy_that_enters_no_run():
    from sim.experiments import sweep

    design = sweep.design_of(ranges=["scoring.cutoff=10:40", "risk.dispersion=0.5:1.2"],
                             samples=16, seed=2, method="sobol")
    assert design.keys == ["scoring.cutoff", "risk.dispersion"]  # no 'dummy' to set
    assert len(design.points) == 16 * (3 + 2) and "dummy" not in design.changes(0)
    pts = design.points
    results = pd.DataFrame({"point": pts.point, "replication": 0,
                            "invited_share_final": 1 - pts["scoring.cutoff"] / 50})
    table = sweep.sensitivity(results, design).set_index("parameter")
    assert table.loc["scoring.cutoff", "verdict"] == "influential"
    assert table.loc["risk.dispersion", "verdict"] == "not distinguishable from noise"
    assert table.loc["scoring.cutoff", "spearman"] == pytest.approx(-1.0)
