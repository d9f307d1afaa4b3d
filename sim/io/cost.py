"""What a run costs before it starts: peak memory and wall time, and the refusal of a run
that cannot fit.

:func:`estimate` draws a tiny population from the scenario, scales its arrays to the
scenario's users and adds the tables and the interpreter; the wall time comes from the
benchmark constants (``benchmarks/README.md``). :func:`check_memory` compares that one
estimate with the memory available and raises :class:`ResourceError` with the estimate and
the limit; the command line warns with the same estimate above :data:`WARN_BYTES`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import GreysimError
from sim.model.population import synthesize
from sim.scenario import Scenario

#: Peak memory per byte of population arrays: the scoring temporaries (float64 module scores)
#: roughly double it. Measured: 211 bytes a user at peak for 103 bytes of arrays.
WORKING_SET = 2.5
#: Bytes a recorded table row holds until the tables are built (a dict of about ten values).
ROW_BYTES = 1500
#: Python, NumPy, pandas and pyarrow before the first user is drawn (measured about 130 MB).
BASE_BYTES = 200 * 2**20
#: Overrides the detected limit, e.g. ``GREYSIM_MEMORY_LIMIT=8G`` on a shared machine.
LIMIT_ENV = "GREYSIM_MEMORY_LIMIT"
#: Seconds per simulated user-month (measured about 3.5e6 user-months a second on 2 cores,
#: rounded down), plus the fixed start-up.
SECONDS_PER_USER_MONTH = 1 / 3.0e6
FIXED_SECONDS = 1.0
#: Runs estimated to need more than this many bytes print a warning with the estimate.
WARN_BYTES = 2_000_000_000
#: What the parent of many runs (compare, sweep) holds of each finished run until the end:
#: each user's outcome (ever invited, defaulted, latent PD: the swap sets) in a DataFrame ...
HELD_BYTES_PER_USER = 12
#: ... its tables as DataFrames (a row of about fifteen numbers and labels) ...
HELD_BYTES_PER_ROW = 200
#: ... the fixed part of a run's output (six DataFrames and the summary) ...
OUTPUT_BYTES = 40_000
#: ... and its run spec (a validated scenario, made before the first run starts).
#: Measured with tracemalloc: 77 KB a spec, 119 KB an output at 2,000 users over 3 months.
SPEC_BYTES = 80_000


class ResourceError(GreysimError):
    """A run that cannot fit; ``str()`` is the message users see."""


@dataclass(frozen=True)
class Estimate:
    """What a run needs: bytes per user (arrays and temporaries), the tables and a fixed
    base, and its wall time on the benchmark machine."""

    users: int
    months: int
    per_user: float
    table_rows: int
    runs: int = 1
    workers: int = 1

    @property
    def tables(self) -> int:
        return self.table_rows * ROW_BYTES

    @property
    def one_run(self) -> int:
        """Peak bytes of one run in its process."""
        return int(self.users * self.per_user) + self.tables + BASE_BYTES

    @property
    def held(self) -> int:
        """Bytes the parent holds of every finished run (none for a single run)."""
        if self.runs <= 1:
            return 0
        per_run = (self.users * HELD_BYTES_PER_USER + self.table_rows * HELD_BYTES_PER_ROW
                   + OUTPUT_BYTES + SPEC_BYTES)
        return self.runs * per_run

    @property
    def total(self) -> int:
        """Peak bytes: one run in each worker (and a parent beside worker processes), and
        what the parent holds of the finished runs."""
        workers = max(1, min(self.workers, self.runs))
        parent = BASE_BYTES if workers > 1 else 0
        return workers * self.one_run + parent + self.held

    @property
    def seconds(self) -> float:
        return FIXED_SECONDS + SECONDS_PER_USER_MONTH * self.users * self.months


def estimate(scenario: Scenario, quarters: int | None = None, runs: int = 1,
             workers: int = 1) -> Estimate:
    """Estimate peak memory and wall time from a tiny population drawn from the same
    scenario, for ``runs`` runs on ``workers`` processes (compare and sweep: replications
    included)."""
    from sim.engine.recorder import segment_codes
    from sim.model import invites, scoring

    sample = 64
    spec = scenario.population.model_copy(update={"users": sample})
    tiny = scenario.model_copy(update={"population": spec})
    pop = synthesize(tiny, np.random.default_rng(0))
    invites.decide(pop, scoring.evaluate(pop, tiny))
    months = 3 * (quarters or scenario.quarters)
    segments = sum(len(labels) for _, _, labels in segment_codes(pop, scenario.reporting.bands))
    return Estimate(users=scenario.population.users, months=months,
                          per_user=WORKING_SET * pop.nbytes() / sample,
                    table_rows=months * (segments + 1), runs=max(1, int(runs)),
                    workers=max(1, int(workers)))


def available_memory() -> tuple[int, str] | None:
    """Bytes this process may still use, and where that figure comes from (None: unknown).

    The smallest of: ``GREYSIM_MEMORY_LIMIT``, the container's cgroup limit left, and the
    kernel's ``MemAvailable``.
    """
    found: list[tuple[int, str]] = []
    env = os.environ.get(LIMIT_ENV, "").strip()
    if env:
        return parse_bytes(env), f"{LIMIT_ENV}={env}"
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            used = int((cgroup / "memory.current").read_text())
            found.append((int(limit) - used, "the container's memory limit (cgroup)"))
    except (OSError, ValueError):
        pass
    try:
        match = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if match:
            found.append((int(match.group(1)) * 1024, "MemAvailable in /proc/meminfo"))
    except OSError:
        pass
    if not found:
        try:
            pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            found.append((pages, "free physical memory (sysconf)"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(found)


def parse_bytes(text: str) -> int:
    """``'8G'``, ``'512M'``, ``'1.5T'`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not match or float(match.group(1)) <= 0:
        raise ResourceError(f"{LIMIT_ENV}={text!r}: give a positive number of bytes, or a "
                            "number with K, M, G or T (e.g. 8G)")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(scenario: Scenario, quarters: int | None = None,
                 available: tuple[int, str] | None = None, *, runs: int = 1,
                 workers: int = 1) -> Estimate:
    """Raise :class:`ResourceError` when the run (or ``runs`` runs on ``workers`` processes,
    the parent keeping each finished run) cannot fit; returns the estimate."""
    est = estimate(scenario, quarters, runs, workers)
    limit = available if available is not None else available_memory()
    if limit is None or est.total <= limit[0]:
        return est
    if est.runs > 1 and est.held + BASE_BYTES > limit[0] - est.one_run:
        per_run = est.held // est.runs
        room = max(0, int((limit[0] - est.one_run - BASE_BYTES) / max(per_run, 1)))
        raise ResourceError(
            f"{est.runs:,} runs of {est.users:,} users need about {human(est.total)} of "
            f"memory: each finished run's tables and per-user outcomes stay in memory until "
            f"the end ({human(per_run)} a run, {human(est.held)} in all) beside "
            f"{human(est.one_run)} for a run in progress, but only {human(limit[0])} is "
            f"available ({limit[1]}); allowed: about {room:,} runs here. Ask for fewer "
            "replications (--reps) or points, or fewer users (--users)."
        )
    procs = max(1, min(est.workers, est.runs))
    each = (limit[0] - est.held - (BASE_BYTES if procs > 1 else 0)) / procs
    room = max(0, int((each - est.tables - BASE_BYTES) / max(est.per_user, 1)))
    workers = f" (a run in each of {procs} workers)" if procs > 1 else ""
    raise ResourceError(
        f"key 'population.users': {est.users:,} users over {est.months} months need about "
        f"{human(est.total)} of memory{workers} ({est.per_user:.0f} bytes a user, "
        f"{human(est.tables)} of tables, {human(BASE_BYTES)} for Python and its libraries), "
        f"but only {human(limit[0])} is available ({limit[1]}); allowed: about "
        f"{room:,} users here. Simulate fewer users (--users N keeps the real population: "
        "the weight rises), or shorten the horizon with --quarters."
    )

