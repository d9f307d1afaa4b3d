"""Shared fixtures: the baseline scenario and one run of it, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import sim

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"


@pytest.fixture(scope="session")
def baseline_path() -> Path:
    return BASELINE


@pytest.fixture(scope="session")
def baseline() -> sim.Scenario:
    return sim.load(BASELINE)


@pytest.fixture(scope="session")
def baseline_run() -> sim.Result:
    """The baseline over its whole horizon at 100k users (sampling error well under 1 pp)."""
    return sim.run(sim.load(BASELINE, {"population.users": 100000}))
