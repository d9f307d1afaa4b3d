"""The result of one run: its tables, its summary and the final state of the population."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.engine.summary import quarterly_frame
from sim.engine.tables import Table
from sim.model import credit, fraud
from sim.model.population import Population
from sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd


#: The tables of a run, by attribute, and each one's file stem in a run folder (``monthly``
#: is written as ``metrics``).
STEMS = {"monthly": "metrics", "segments": "segments", "batches": "batches",
         "vintages": "vintages", "arms": "arms", "gates": "gates"}
TABLES = tuple(STEMS)


class TableAttribute:
    """A table of a :class:`Result`: set to a :class:`~sim.engine.tables.Table` (as a run
    records it) or a DataFrame, read as a DataFrame, built on first read (``None`` stays
    ``None``)."""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, result, owner=None):
        if result is None:
            return self
        table = result._tables[self.name]
        return None if table is None else table.frame

    def __set__(self, result, value) -> None:
        result._tables[self.name] = (value if value is None or isinstance(value, Table)
                                     else Table.of_frame(value))


class Result:
    """A finished run: its tables, the final population and how it was made.

    The tables (``monthly``, ``segments``, ``batches``, ``vintages``, ``arms``, ``gates``)
    are pandas DataFrames, made when first read: a run without A/B arms that only writes its
    folder imports no pandas (:meth:`recorded` gives the tables as recorded).
    """

    monthly: pd.DataFrame = TableAttribute()
    segments: pd.DataFrame = TableAttribute()
    batches: pd.DataFrame = TableAttribute()
    vintages: pd.DataFrame = TableAttribute()
    arms: pd.DataFrame | None = TableAttribute()  # per-arm figures at the horizon
    gates: pd.DataFrame | None = TableAttribute()  # every gate decision

    def __init__(self, scenario: Scenario, seed: int, monthly: Table | pd.DataFrame,
                 segments: Table | pd.DataFrame, batches: Table | pd.DataFrame,
                 vintages: Table | pd.DataFrame, summary: dict, population: Population,
                 wall_seconds: float, book: credit.Book | None = None,
                 fraud: fraud.FraudBook | None = None, arm: np.ndarray | None = None,
                 arm_names: tuple[str, ...] = ("all",), holdout: np.ndarray | None = None,
                 arms: Table | pd.DataFrame | None = None,
                 gates: Table | pd.DataFrame | None = None,
                 timings: dict[str, float] | None = None):
        self._tables: dict[str, Table | None] = {}
        self.scenario = scenario
        self.seed = seed
        self.monthly = monthly
        self.segments = segments
        self.batches = batches
        self.vintages = vintages
        self.summary = summary
        self.population = population
        self.wall_seconds = wall_seconds  # the run's, the population's synthesis included
        self.book = book  # the credit lines at the end of the run
        self.fraud = fraud  # risk levels at the end of the run
        self.arm = arm  # A/B arm code of every user (into ``arm_names``)
        self.arm_names = arm_names
        self.holdout = holdout  # invited below the cut-off by a holdout
        self.arms = arms
        self.gates = gates
        self.timings = {} if timings is None else timings  # seconds per process (TIMED)

    def __repr__(self) -> str:
        s, credit = self.summary, self.summary.get("credit") or {}
        final = s.get("final", {})
        default = credit.get("annualised_default_rate")
        return "\n".join([
            f"Result of '{self.scenario.name}' ({self.scenario.rollout.name}), seed {self.seed}",
            f"  {self.population.n:,} users x {self.population.weight:g}, "
            f"{len(self._tables['monthly'])} months, {self.wall_seconds:.1f}s",
            f"  final coverage: invited {final.get('invited_share', float('nan')):.1%}, "
            f"visible {final.get('visible_share', float('nan')):.1%}",
            "  annualised default rate " + ("n/a" if default is None else f"{default:.2%}"),
        ])

    @property
    def quarterly(self) -> pd.DataFrame:
        """Each quarter's figures (:func:`sim.engine.summary.quarter_rows`), as a DataFrame."""
        table = self._tables["monthly"]
        if table.columns is not None and not table.built:
            return quarterly_frame(table.columns)
        return quarterly_frame({name: table.frame[name].tolist() for name in table.frame})

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables a run writes, by file stem (``metrics`` is the monthly table)."""
        return {STEMS[name]: getattr(self, name) for name in TABLES}

    def recorded(self) -> dict[str, Table | None]:
        """:meth:`tables` as recorded, by file stem: what the run folder's writer reads
        (without making DataFrames)."""
        return {STEMS[name]: self._tables[name] for name in TABLES}
