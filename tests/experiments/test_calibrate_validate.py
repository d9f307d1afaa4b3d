"""Issue 14: leave-K-out validation of a calibration (``greysim calibrate --validate K``)."""

from __future__ import annotations

import pytest
from credit_helpers import scenario

from sim.experiments.calibrate import Target, TargetError, run_tables, statistic, validate
from sim.experiments.parameters import Parameter


def _targets(truth) -> list[Target]:
    """Two access rates of one truth run (both move with the score cut-off)."""
    targets = [Target(name=f"access {a}", table="segments", month=12,
                      filter={"dimension": "archetype", "value": a},
                      statistic="invited / population", value=0.5, tolerance=0.05)
               for a in ("stable_salaried", "mass_market")]
    tables = run_tables(truth, targets)
    return [t.model_copy(update={"value": statistic(tables, t)[0]}) for t in targets]


def test_each_left_out_target_is_predicted_from_the_fit_on_the_others():
    base = scenario({"population.users": 8_000, "quarters": 5})
    truth = base.replace({"scoring.cutoff": base.scoring.cutoff + 12})
    targets = _targets(truth)
    params = [Parameter.between("scoring.cutoff", 0.0, 60.0, "test")]
    table = validate(base, targets, params, 1, budget_evals=15)
    assert list(table.target) == [t.name for t in targets]
    assert list(table.fold) == [0, 1]
    # the cut-off fitted to one access rate predicts the other (both come from one truth)
    assert table.within.all(), table.to_string()
    with pytest.raises(TargetError, match="between 1 and 1"):
        validate(base, targets, params, 2)
