"""Checking that a recorded run reproduces: same scenario, seed and horizon, same bytes.

``greysim run --check RUN_DIR`` re-runs the scenario recorded in the folder's manifest (as
resolved, after ``extends`` and ``--set``) with its seed and horizon, and compares every
table and the summary byte for byte with the files in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim.experiments.runs import run
from sim.io.folders import MANIFEST, OutputError, json_text, table_bytes
from sim.scenario import Scenario, ScenarioError, validate


@dataclass
class Reproduction:
    """The outcome of a check: for each file, whether it came out byte for byte the same."""

    run_dir: Path
    files: dict[str, bool]
    recorded_version: str
    current_version: str
    same_values: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.files.values())

    @property
    def differing(self) -> list[str]:
        return [name for name, same in self.files.items() if not same]


def read_manifest(run_dir: Path) -> dict:
    """The manifest of a run folder, checked (:func:`sim.io.reading.read_manifest`);
    :class:`OutputError` when there is none, it is broken or it lacks what a check needs."""
    from sim.io.reading import read_manifest as read

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise OutputError(f"{run_dir} is not a greysim run folder (no {MANIFEST})")
    data = read(path)
    missing = [k for k in ("scenario", "scenario_digest", "seed", "months") if k not in data]
    if missing:
        raise OutputError(f"{path} lacks {missing}; it was not written by greysim")
    return data


def recorded_scenario(run_dir: Path) -> tuple[Scenario, int]:
    """The scenario a run folder records (its digest checked, the seed included) and the
    months it ran; :class:`ScenarioError` or :class:`OutputError` when the manifest was
    edited."""
    recorded = read_manifest(run_dir)
    source = str(Path(run_dir) / MANIFEST)
    scenario = validate(recorded["scenario"], source)
    if scenario.digest() != recorded["scenario_digest"]:
        raise ScenarioError(source, "scenario", "the recorded scenario does not match its "
                            "recorded digest; the manifest was edited")
    # the digest covers the scenario's seed: the seed recorded beside it must be the same
    if recorded["seed"] != scenario.seed:
        raise ScenarioError(source, "seed", f"the recorded seed {recorded['seed']} is not the "
                            f"seed of the recorded scenario ({scenario.seed}), which its digest "
                            "covers; the manifest was edited")
    months = recorded["months"]
    if months > scenario.months:
        raise ScenarioError(source, "months", f"{months} months recorded, longer than the "
                            f"scenario's horizon of {scenario.months}; the manifest was edited")
    return scenario, months


def check_run(run_dir: Path) -> Reproduction:
    """Re-run the run recorded in ``run_dir`` and compare its files byte for byte."""
    from sim import __version__
    from sim.io.cost import check_memory

    run_dir = Path(run_dir)
    scenario, months = recorded_scenario(run_dir)
    recorded = read_manifest(run_dir)
    check_memory(scenario, months // 3)
    result = run(scenario, quarters=months // 3)
    files: dict[str, bool] = {}
    same_values: dict[str, bool] = {}
    for stem, table in result.tables().items():
        name = f"{stem}.parquet"
        path = run_dir / name
        files[name] = path.is_file() and path.read_bytes() == table_bytes(table)
        if not files[name] and path.is_file():
            same_values[name] = _same_values(path, table)
    summary = run_dir / "summary.json"
    files["summary.json"] = (summary.is_file()
                             and summary.read_text(encoding="utf-8") == json_text(result.summary))
    return Reproduction(run_dir, files, str(recorded.get("greysim_version", "unknown")),
                        __version__, same_values)


def _same_values(path: Path, table: pd.DataFrame) -> bool:
    """Whether a table that differs in bytes still holds the same values (another pyarrow)."""
    try:
        return pd.read_parquet(path).equals(table)
    except Exception:  # noqa: BLE001 - an unreadable file simply does not hold the values
        return False
