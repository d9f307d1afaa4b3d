"""Small scenarios for the credit and fraud tests: the baseline with a few keys changed."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from sim.engine.simulation import Simulation
from sim.scenario import Scenario, _resolve, validate

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.yaml"


def raw(path: Path = BASELINE) -> dict:
    """The resolved mapping of a scenario file (``extends`` applied)."""
    return copy.deepcopy(_resolve(path, ())[0])


def put(mapping: dict, dotted: str, value) -> None:
    node = mapping
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def scenario(changes: dict | None = None, path: Path = BASELINE) -> Scenario:
    """The scenario at ``path`` with ``{"a.b.c": value}`` changes, validated."""
    data = raw(path)
    for key, value in (changes or {}).items():
        put(data, key, copy.deepcopy(value))
    return validate(data, str(path))


def quiet_fraud() -> dict:
    """Changes that switch off every risk signal."""
    return {"fraud.fraudsters": 0.0, "fraud.r1_rate": 0.0, "fraud.r2_rate": 0.0,
            "fraud.r3_rate": 0.0}


def single_vintage(users: int) -> dict:
    """One batch on the first day inviting every eligible user, who all see the entry,
    open a line at once and draw every month; no re-evaluation in the horizon."""
    archetypes = list(yaml.safe_load(BASELINE.read_text())["population"]["archetypes"])
    versions = raw()["release"]["versions"]
    for v in versions:
        v["visible"] = 1.0
    return {
        "population.users": users,
        "release.versions": versions,
        "reevaluation.every_months": 1000,
        "reevaluation.admit_new": False,
        "rollout.phases": [{"name": "all", "start": "2025-01-01", "cadence_days": 100000,
                            "batch": {"share": 1.0}, "ordering": "random"}],
        "credit.activation": {a: 1.0 for a in archetypes},
        "credit.draw_rate": 1.0,
        "credit.repayment.full": 0.0,
        "credit.repayment.minimum_only": 0.0,
        "capital.equity": None,
        "capital.max_leverage": None,
        **quiet_fraud(),
    }


def risky_vintage(users: int, quarters: int) -> Simulation:
    """A simulation run ``quarters`` into one vintage that opens and draws at once, with
    enough risk for defaults and charge-offs within a year (fraud as in the baseline: a
    fraudster's default is a default too)."""
    changes = {**single_vintage(users=users), "risk.monthly_hazard": 0.03,
               "credit.repayment.full": 0.2, "credit.repayment.minimum_only": 0.3}
    s = Simulation(scenario(changes), quarters=quarters)
    s.run()
    return s
