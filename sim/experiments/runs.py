"""One run, and many: a run described by a :class:`RunSpec`, executed by a top-level function.

A run is described by a :class:`RunSpec` (scenario, labels) and executed by
:func:`execute_one`, a top-level function, so it can travel to a process pool or a Dask
cluster (:mod:`sim.experiments.executors`). Runs return only their tables and summary (not
the population arrays), tagged with their labels; :func:`run_all` puts them back in the order
of the specs whatever order they finished in, so results are identical across executors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sim.engine.result import Result
from sim.engine.simulation import Progress, Simulation
from sim.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd


def run(scenario: Scenario, seed: int | None = None, progress: Progress | None = None,
        quarters: int | None = None) -> Result:
    """Simulate ``scenario`` and return the result, with the A/B statistics in its summary
    when the scenario has arms.

    The run's seed is ``scenario.seed``; ``seed`` is a shorthand for
    ``scenario.replace({"seed": seed})``, so the result's scenario records the seed it ran.

    ``quarters`` simulates only the first quarters of the scenario's horizon (its calendar,
    phases and releases stay as written), which is how short test and benchmark runs are made.
    """
    if seed is not None:
        scenario = scenario.replace({"seed": int(seed)})
    result = Simulation(scenario, progress, quarters).run()
    if scenario.ab is not None:  # the A/B statistics load SciPy: only for a run with arms
        from sim.analysis.abtest import attach_ab_summary

        attach_ab_summary(result)
    return result


def replication_seeds(seed: int, reps: int) -> list[int]:
    """``reps`` independent 63-bit seeds spawned from ``seed`` (``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(seed).spawn(reps)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


def replicate(scenario: Scenario, reps: int, offset: int = 0) -> list[Scenario]:
    """The ``reps`` replications of a scenario: replication ``r`` is the scenario with the
    ``r``-th seed spawned from its own seed (plus ``offset``, to decorrelate on purpose), so
    scenarios that share a seed share every replication's random numbers."""
    return [scenario.replace({"seed": seed})
            for seed in replication_seeds(scenario.seed + offset, reps)]


@dataclass(frozen=True)
class RunSpec:
    """One run to make: a scenario (its seed included) and labels that tag every row it
    produces."""

    scenario: Scenario
    quarters: int | None = None
    labels: dict = field(default_factory=dict)


@dataclass
class RunOutput:
    """What a run sends back: its tables (labelled), its summary, and each user's outcome
    (ever invited, defaulted, latent default probability) for swap-set tables."""

    labels: dict
    tables: dict[str, pd.DataFrame]
    summary: dict
    outcomes: pd.DataFrame | None = None
    weight: float = 1.0


def execute_one(spec: RunSpec) -> RunOutput:
    """Run one spec; a top-level function so that worker processes can import it."""
    result = run(spec.scenario, quarters=spec.quarters)
    tables = {}
    for name, table in result.tables().items():
        table = table.copy()
        for i, (key, value) in enumerate(spec.labels.items()):
            table.insert(i, key, value)
        tables[name] = table
    from sim.analysis.abtest import outcomes

    users = outcomes(result)[["ever_invited", "defaulted", "latent_pd_12m"]]
    return RunOutput(dict(spec.labels), tables, result.summary, users, result.population.weight)


def run_all(specs: Sequence[RunSpec], executor=None, progress: Progress | None = None,
            on_result: Callable[[int, RunOutput], None] | None = None) -> list[RunOutput]:
    """Run every spec on ``executor`` (default: in this process); outputs in spec order."""
    # the executors import concurrent.futures and multiprocessing (~10 ms): not for one run
    from sim.experiments.executors import execute

    return execute(execute_one, specs, executor, progress, on_result)


def concat(outputs: Iterable[RunOutput], table: str) -> pd.DataFrame:
    """One table of every run, labels first, in run order."""
    import pandas as pd

    frames = [o.tables[table] for o in outputs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def replications(scenario: Scenario, reps: int, quarters: int | None = None,
                 executor=None, progress: Progress | None = None) -> list[RunOutput]:
    """``reps`` runs of one scenario with seeds spawned from its seed."""
    specs = [RunSpec(replica, quarters, {"replication": r})
             for r, replica in enumerate(replicate(scenario, reps))]
    return run_all(specs, executor, progress)
