"""Many runs: replications, strategies and sweeps mapped over an executor.

A run is described by a :class:`RunSpec` (scenario, seed, labels) and executed by a top-level
function, so it can travel to a process pool or a Dask cluster. Runs return only their tables
and summary (not the population arrays), tagged with their labels; tables are concatenated in
the order of the specs whatever order the runs finished in, so results are identical across
executors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
import pandas as pd

from .engine import run
from .scenario import Scenario

Progress = Callable[[int, int], None]


def replication_seeds(seed: int, reps: int) -> list[int]:
    """``reps`` independent 63-bit seeds spawned from ``seed`` (``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(seed).spawn(reps)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


@dataclass(frozen=True)
class RunSpec:
    """One run to make: a scenario, its seed, and labels that tag every row it produces."""

    scenario: Scenario
    seed: int
    quarters: int | None = None
    labels: dict = field(default_factory=dict)


@dataclass
class RunOutput:
    """What a run sends back: its tables (labelled) and its summary."""

    labels: dict
    tables: dict[str, pd.DataFrame]
    summary: dict


def execute_one(spec: RunSpec) -> RunOutput:
    """Run one spec; a top-level function so that worker processes can import it."""
    result = run(spec.scenario, seed=spec.seed, quarters=spec.quarters)
    tables = {}
    for name, table in result.tables().items():
        table = table.copy()
        for i, (key, value) in enumerate(spec.labels.items()):
            table.insert(i, key, value)
        tables[name] = table
    return RunOutput(dict(spec.labels), tables, result.summary)


# --------------------------------------------------------------------------- executors


class InProcess:
    """Runs one after another in this process."""

    workers = 1

    def map(self, fn, items: Sequence) -> Iterator[tuple[int, object]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


class ProcessPool:
    """A local pool of worker processes (spawned, so no state leaks from the parent)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"))

    def map(self, fn, items: Sequence) -> Iterator[tuple[int, object]]:
        pending = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskCluster:
    """A Dask distributed cluster: an existing scheduler, or a LocalCluster of ``workers``."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if scheduler is None:
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                         threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            self._client = Client(scheduler)
        self.workers = len(self._client.scheduler_info().get("workers", {})) or 1

    def map(self, fn, items: Sequence) -> Iterator[tuple[int, object]]:
        from dask.distributed import as_completed

        futures = self._client.map(fn, list(items), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future in as_completed(futures):
            yield index[future.key], future.result()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None,
                  dask_local: int | None = None):
    """The executor the CLI options ask for: Dask, a process pool, or in-process."""
    if scheduler is not None or dask_local is not None:
        return DaskCluster(scheduler, dask_local)
    if workers is not None and workers <= 1:
        return InProcess()
    return ProcessPool(workers)


def execute(specs: Sequence[RunSpec], executor=None, progress: Progress | None = None,
            on_result: Callable[[int, RunOutput], None] | None = None) -> list[RunOutput]:
    """Run every spec and return the outputs in the order of ``specs``."""
    executor = executor or InProcess()
    outputs: list[RunOutput | None] = [None] * len(specs)
    for done, (i, output) in enumerate(executor.map(execute_one, specs), start=1):
        outputs[i] = output
        if on_result is not None:
            on_result(i, output)
        if progress is not None:
            progress(done, len(specs))
    return outputs  # type: ignore[return-value]


def concat(outputs: Iterable[RunOutput], table: str) -> pd.DataFrame:
    """One table of every run, labels first, in run order."""
    frames = [o.tables[table] for o in outputs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def replications(scenario: Scenario, reps: int, quarters: int | None = None,
                 executor=None, progress: Progress | None = None) -> list[RunOutput]:
    """``reps`` runs of one scenario with seeds spawned from its seed."""
    specs = [RunSpec(scenario, seed, quarters, {"replication": r})
             for r, seed in enumerate(replication_seeds(scenario.seed, reps))]
    return execute(specs, executor, progress)
