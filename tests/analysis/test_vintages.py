"""Issue 14: the age-period-cohort decomposition recovers what a triangle was built from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.analysis.vintages import TriangleError, decompose, triangle_from_csv


def known_triangle(seed: int = 3):
    """24 monthly vintages observed to period 36, equal quality (so the constraint holds);
    lifecycle log-logistic (peak ~15), environment flat but doubled in periods 20-22."""
    rng = np.random.default_rng(seed)
    ages = np.arange(1, 31)
    x = ages / 12.0
    life = x ** 2 / (1 + x ** 3)
    env = {p: (2.0 if 20 <= p <= 22 else 1.0) for p in range(1, 60)}
    rows = []
    for v in range(24):
        for a in ages:
            p = v + a
            if p > 36:
                continue
            exposure = 20_000.0
            rate = 0.004 * life[a - 1] * env[p]
            rows.append({"vintage": v, "mob": a, "exposure": exposure,
                         "defaults": rng.poisson(exposure * rate)})
    return pd.DataFrame(rows), dict(zip(ages, life, strict=True)), env


def test_recovers_a_known_lifecycle_and_shock_within_its_intervals():
    frame, life, env = known_triangle()
    fit = decompose(triangle_from_csv(frame))
    lc = fit.lifecycle.set_index("age")
    ref = lc.index[(lc.upper - lc.lower).to_numpy().argmin()]  # the reference: no interval
    truth = pd.Series({a: life[a] / life[ref] for a in lc.index})
    inside = (lc.lower <= truth) & (truth <= lc.upper)
    assert inside.mean() >= 0.9, lc.assign(truth=truth)
    assert 12 <= lc.multiplier.idxmax() <= 18
    en = fit.environment.set_index("period")
    raw = pd.Series({p: env[int(p)] for p in en.index})
    truth_e = raw / np.exp(np.log(raw).mean())  # relative to the average period
    inside = (en.lower <= truth_e) & (truth_e <= en.upper)
    assert inside.mean() >= 0.9, en.assign(truth=truth_e)
    for p in (20, 21, 22):  # the shock is found, and told apart from no shock
        assert en.loc[p, "lower"] > 1.3
        assert en.loc[p, "lower"] <= truth_e[p] <= en.loc[p, "upper"]
    # equal quality: every vintage's interval holds 1
    q = fit.quality
    assert ((q.lower <= 1.0) & (q.upper >= 1.0)).mean() >= 0.9
    assert "linear trend" in fit.constraint


def test_a_triangle_without_the_columns_is_a_clear_error():
    with pytest.raises(TriangleError, match="exposure"):
        triangle_from_csv(pd.DataFrame({"vintage": [0], "mob": [1], "defaults": [1]}))


def test_environment_constraint_reads_a_steady_worsening_of_vintages_as_quality():
    """Vintages that get steadily worse, a flat calendar: with the environment constraint the
    quality curve rises across vintages and holds the truth within its intervals."""
    frame, _, _ = known_triangle()
    rng = np.random.default_rng(4)
    worse = np.exp(0.05 * (frame["vintage"] - frame["vintage"].mean()))
    ages = frame["mob"].to_numpy() / 12.0
    rate = 0.004 * ages ** 2 / (1 + ages ** 3) * worse
    frame = frame.assign(defaults=rng.poisson(frame["exposure"] * rate))
    fit = decompose(triangle_from_csv(frame), constraint="environment")
    q = fit.quality.set_index("vintage")
    truth = np.exp(0.05 * (q.index - np.mean(q.index)))
    assert ((q.lower <= truth) & (truth <= q.upper)).mean() >= 0.9
    assert q.multiplier.iloc[-1] > 2 * q.multiplier.iloc[0]
    with pytest.raises(TriangleError, match="constraint"):
        decompose(triangle_from_csv(frame), constraint="age")


def test_vintages_command_writes_the_curves_and_the_chart(tmp_path):
    from typer.testing import CliRunner

    from sim.cli.app import app

    frame, _, _ = known_triangle()
    csv = tmp_path / "triangle.csv"
    frame.to_csv(csv, index=False)
    result = CliRunner().invoke(app, ["vintages", str(csv), "--out", str(tmp_path / "apc")])
    assert result.exit_code == 0, result.output
    assert "constraint" in result.output
    for name in ("lifecycle.csv", "environment.csv", "quality.csv", "decomposition.png"):
        assert (tmp_path / "apc" / name).is_file()
    bad = CliRunner().invoke(app, ["vintages", str(tmp_path / "missing.csv")])
    assert bad.exit_code == 2 and "not a run folder or a .csv file" in bad.output


def test_a_csv_that_is_not_a_triangle_is_one_message_naming_the_file(tmp_path):
    from typer.testing import CliRunner

    from sim.cli.app import app

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("vintage,months\n1,2\n")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(200, 256)) * 4)
    for path, words in ((wrong, "needs column(s) defaults, exposure, mob (or age)"),
                        (binary, "cannot be read as a CSV table")):
        res = CliRunner().invoke(app, ["vintages", str(path)])
        assert res.exit_code == 2, res.output
        assert str(path) in " ".join(res.output.split()) and words in res.output
        assert "Traceback" not in res.output
