"""docs/scenario-reference.md is generated from the schema and kept current."""

from __future__ import annotations

from pathlib import Path

from sim.scenario import reference
from sim.scenario.root import Scenario

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scenario-reference.md"


def test_reference_page_is_current():
    assert PAGE.read_text(encoding="utf-8") == reference.markdown(), (
        "docs/scenario-reference.md is stale: run "
        "`python -m sim.scenario.reference > docs/scenario-reference.md`")


def test_reference_lists_every_key_with_its_bounds_and_default():
    rows = {r.path: r for r in reference.rows()}
    assert set(Scenario.model_fields) <= set(rows)
    phase = rows["rollout.phases.N.cadence_days"]
    assert (phase.type, phase.default, phase.allowed) == ("integer", "14", "> 0, <= 1000000")
    assert "`tier`, `score`, `random`" in rows["rollout.phases.N.ordering"].type
    assert rows["population.archetypes.<name>.share"].allowed == ">= 0, <= 1"
    assert rows["start"].default == "required"
    # a section met twice (each A/B arm runs a rollout) points at the first
    assert "Same keys as `rollout`" in rows["ab.arms.<name>.rollout"].description
