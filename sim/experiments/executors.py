"""Where runs execute: in this process, a local process pool, or a Dask cluster.

An executor maps a top-level function over items and yields ``(index, result)`` as results
arrive; :func:`execute` puts them back in the order of the items, so a table concatenated
from them is the same on every executor.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

Progress = Callable[[int, int], None]


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


def execute(fn: Callable, items: Sequence, executor=None, progress: Progress | None = None,
            on_result: Callable[[int, object], None] | None = None) -> list:
    """``[fn(item) for item in items]`` on ``executor`` (default: in this process), in the
    order of ``items``; ``on_result(index, result)`` and ``progress(done, total)`` are called
    as results arrive."""
    executor = executor or InProcess()
    results: list = [None] * len(items)
    for done, (i, result) in enumerate(executor.map(fn, items), start=1):
        results[i] = result
        if on_result is not None:
            on_result(i, result)
        if progress is not None:
            progress(done, len(items))
    return results
