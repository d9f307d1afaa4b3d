"""Where runs execute: in this process, a local process pool, or a Dask cluster.

An executor maps a top-level function over items and yields ``(index, result)`` as results
arrive; :func:`execute` puts them back in the order of the items, so a table concatenated
from them is the same on every executor.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

Progress = Callable[[int, int], None]

#: Seconds between two looks of a worker's watchdog at its parent.
WATCHDOG_SECONDS = 1.0
#: What a pool worker imports when it starts (:func:`start_worker`): the model and the runs.
PRELOAD = ("sim.engine.simulation", "sim.experiments.runs", "sim.analysis.abtest")
#: Linux's prctl option that signals a process when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Make this worker process end when its parent does, even when the parent is killed
    with SIGKILL (a worker holds a whole population: an orphan keeps hundreds of MB).

    On Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); on
    every platform a daemon thread looks at ``os.getppid()`` every :data:`WATCHDOG_SECONDS`
    and exits when the parent changed. ``parent`` is the pid the worker must outlive (default:
    its parent now); if it is already gone, the worker exits at once.
    """
    parent = os.getppid() if parent is None else parent
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the watchdog alone
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="greysim-watchdog",
                     daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCHDOG_SECONDS)
    os._exit(1)


class InProcess:
    """Runs one after another in this process."""

    workers = 1

    def map(self, fn, items: Sequence) -> Iterator[tuple[int, object]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


def start_worker(parent: int) -> None:
    """A pool worker's initializer: die with ``parent`` (:func:`die_with_parent`) and import
    the model and the run machinery once, so that every run the worker is sent pays no
    import (a few seconds per process)."""
    die_with_parent(parent)
    _preload()


def _preload() -> int:
    for name in PRELOAD:  # by name: runs imports this module, not the other way round
        importlib.import_module(name)
    return os.getpid()


def _run_chunk(fn: Callable, items: Sequence) -> list:
    return [fn(item) for item in items]


def _started(_: int) -> int:
    time.sleep(0.2)  # hold the worker so the next task starts another one
    return os.getpid()


class ProcessPool:
    """A local pool of worker processes (spawned, so no state leaks from the parent) that
    die with the parent (:func:`die_with_parent`), import the stack once when they start
    (:func:`start_worker`) and stay up across :meth:`map` calls until :meth:`close`.

    Items go to the workers in chunks (``chunk`` items each; default: about four chunks a
    worker), so many small runs pay one round trip a chunk, not one a run.
    :meth:`shared` keeps one pool per worker count for the whole process.
    """

    _shared: dict[int, ProcessPool] = {}

    def __init__(self, workers: int | None = None, chunk: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self.chunk = chunk
        self._owned = True
        self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                         initializer=start_worker, initargs=(os.getpid(),))

    def __repr__(self) -> str:
        return f"ProcessPool(workers={self.workers})"

    @classmethod
    def shared(cls, workers: int | None = None) -> ProcessPool:
        """The process-wide pool of ``workers`` workers, started once and reused by every
        caller (its :meth:`close` does nothing; it shuts down when the process exits)."""
        workers = workers or os.cpu_count() or 1
        pool = cls._shared.get(workers)
        if pool is None:
            pool = cls._shared[workers] = cls(workers)
            pool._owned = False
            atexit.register(pool._pool.shutdown, cancel_futures=True)
        return pool

    def warm(self) -> list[int]:
        """Start every worker now (imports included) and return their pids."""
        return list(self._pool.map(_started, range(self.workers)))

    def map(self, fn, items: Sequence) -> Iterator[tuple[int, object]]:
        items = list(items)
        size = self.chunk or max(1, len(items) // (4 * self.workers))
        pending = {self._pool.submit(_run_chunk, fn, items[i:i + size]): i
                   for i in range(0, len(items), size)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                first = pending.pop(future)
                for offset, result in enumerate(future.result()):
                    yield first + offset, result

    def close(self) -> None:
        if self._owned:
            self._pool.shutdown(cancel_futures=True)


class DaskCluster:
    """A Dask distributed cluster: an existing scheduler, or a LocalCluster of ``workers``
    whose worker processes die with this process (:func:`die_with_parent`)."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if scheduler is None:
            self._cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                         threads_per_worker=1, processes=True,
                                         dashboard_address=None)
            self._client = Client(self._cluster)
            # the nannies live in this process and start the workers: they die with it
            self._client.run(die_with_parent)
        else:
            self._client = Client(scheduler)
        self.workers = len(self._client.scheduler_info().get("workers", {})) or 1

    def warm(self) -> dict:
        """Import the model and the run machinery on every worker now (as a pool worker's
        initializer does), so the first runs pay no import."""
        return self._client.run(_preload)

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


@contextlib.contextmanager
def dask_processes(workers: int = 2, folder: str | os.PathLike | None = None,
                   timeout: float = 60.0) -> Iterator[str]:
    """Start a ``dask scheduler`` and ``workers`` single-threaded ``dask worker`` processes on
    127.0.0.1, as a cluster runs them, and yield the scheduler's address; they are stopped
    on exit. ``folder`` holds the scheduler file (default: a temporary folder)."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        address_file = os.path.join(folder or tmp, "scheduler.json")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        procs = [subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", address_file], **quiet)]
        try:
            deadline = time.monotonic() + timeout
            while not os.path.exists(address_file):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the dask scheduler did not start within {timeout:g} s")
                time.sleep(0.2)
            time.sleep(0.2)  # the file is written in one go, but let it land
            procs += [subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                 address_file, "--nthreads", "1", "--no-dashboard", "--no-nanny"], **quiet)
                for _ in range(workers)]
            with open(address_file) as f:
                yield json.load(f)["address"]
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


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
