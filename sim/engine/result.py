"""The result of one run: its tables, its summary and the final state of the population."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.engine.recorder import quarterly
from sim.model import credit, fraud
from sim.model.population import Population
from sim.scenario import Scenario


@dataclass
class Result:
    """A finished run: its tables, the final population and how it was made."""

    scenario: Scenario
    seed: int
    monthly: pd.DataFrame
    segments: pd.DataFrame
    batches: pd.DataFrame
    vintages: pd.DataFrame
    summary: dict
    population: Population
    wall_seconds: float
    book: credit.Book | None = None  # the credit lines at the end of the run
    fraud: fraud.FraudBook | None = None  # risk levels at the end of the run
    arm: np.ndarray | None = None  # A/B arm code of every user (into ``arm_names``)
    arm_names: tuple[str, ...] = ("all",)
    holdout: np.ndarray | None = None  # invited below the cut-off by a holdout
    arms: pd.DataFrame | None = None  # per-arm figures at the horizon
    gates: pd.DataFrame | None = None  # every gate decision
    timings: dict[str, float] = field(default_factory=dict)  # seconds per process (TIMED)

    def __repr__(self) -> str:
        s, credit = self.summary, self.summary.get("credit") or {}
        final = s.get("final", {})
        default = credit.get("annualised_default_rate")
        return "\n".join([
            f"Result of '{self.scenario.name}' ({self.scenario.rollout.name}), seed {self.seed}",
            f"  {self.population.n:,} users x {self.population.weight:g}, "
            f"{len(self.monthly)} months, {self.wall_seconds:.1f}s",
            f"  final coverage: invited {final.get('invited_share', float('nan')):.1%}, "
            f"visible {final.get('visible_share', float('nan')):.1%}",
            "  annualised default rate " + ("n/a" if default is None else f"{default:.2%}"),
        ])

    @property
    def quarterly(self) -> pd.DataFrame:
        return quarterly(self.monthly)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables a run writes, by file stem (``metrics`` is the monthly table)."""
        return {"metrics": self.monthly, "segments": self.segments, "batches": self.batches,
                "vintages": self.vintages, "arms": self.arms, "gates": self.gates}


