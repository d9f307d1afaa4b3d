"""Guards: refuse a run that cannot fit in memory, and stop on numeric trouble.

A run that would exhaust memory is refused before it starts, with the estimate and the limit
(:func:`check_memory`). While it runs, the engine checks the population at the end of each
month (:func:`check_population`); any process may check its own arrays with
:func:`check_probability` (a rate that must stay in [0, 1]) or :func:`check_finite` (a balance
that must not overflow). Trouble raises :class:`NumericError`, naming the month, the process
and the scenario key to look at: values are never silently clipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .population import Population, synthesize
from .scenario import Scenario

#: Peak memory per byte of population arrays: the scoring temporaries (float64 module scores)
#: roughly double it. Measured: 211 bytes a user at peak for 103 bytes of arrays.
WORKING_SET = 2.5
#: Bytes a recorded table row holds until the tables are built (a dict of about ten values).
ROW_BYTES = 1500
#: Python, NumPy, pandas and pyarrow before the first user is drawn (measured about 130 MB).
BASE_BYTES = 200 * 2**20
#: Overrides the detected limit, e.g. ``GREYSIM_MEMORY_LIMIT=8G`` on a shared machine.
LIMIT_ENV = "GREYSIM_MEMORY_LIMIT"

#: Population arrays that hold probabilities or shares.
PROBABILITIES = ("social_quality", "offline_share", "night_share", "hazard", "visibility_draw")


class ResourceError(RuntimeError):
    """A run that cannot fit; ``str()`` is the message users see."""


class NumericError(ArithmeticError):
    """A value left its allowed range during a run; ``str()`` names month, process and key.

    Made by :func:`numeric_error`; the message is the only constructor argument, so the error
    survives SimPy re-raising it out of a process.
    """

    process: str | None = None
    month: int | None = None
    key: str | None = None


def numeric_error(process: str, month: int, name: str, problem: str,
                  key: str | tuple[str, ...]) -> NumericError:
    """The error for ``name`` going wrong in ``process`` during ``month`` (0: at the start);
    ``key`` is the scenario key (or keys) that drive the value."""
    when = "at the start" if month == 0 else f"in month {month}"
    keys = (key,) if isinstance(key, str) else key
    which = "key" if len(keys) == 1 else "keys"
    exc = NumericError(f"numeric trouble {when}, process '{process}': {name} {problem}; "
                       f"values are not clipped, check {which} "
                       + " and ".join(f"'{k}'" for k in keys))
    exc.process, exc.month, exc.key = process, month, key
    return exc


# --------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a run needs: per user (arrays and temporaries), the tables, and a fixed base."""

    users: int
    months: int
    per_user: float
    table_rows: int

    @property
    def tables(self) -> int:
        return self.table_rows * ROW_BYTES

    @property
    def total(self) -> int:
        return int(self.users * self.per_user) + self.tables + BASE_BYTES


def estimate_memory(scenario: Scenario, quarters: int | None = None) -> MemoryEstimate:
    """Estimate peak memory from a tiny population drawn from the same scenario."""
    from . import scoring
    from .metrics import segment_codes

    sample = 64
    spec = scenario.population.model_copy(update={"users": sample})
    tiny = scenario.model_copy(update={"population": spec})
    pop = synthesize(tiny, np.random.default_rng(0))
    scoring.apply(pop, scoring.evaluate(pop, tiny))
    months = 3 * (quarters or scenario.quarters)
    segments = sum(len(labels) for _, _, labels in segment_codes(pop, scenario.reporting.bands))
    return MemoryEstimate(users=scenario.population.users, months=months,
                          per_user=WORKING_SET * pop.nbytes() / sample,
                          table_rows=months * (segments + 1))


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
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not match:
        raise ResourceError(f"{LIMIT_ENV}={text!r}: give bytes, or a number with K, M, G or T")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def check_memory(scenario: Scenario, quarters: int | None = None,
                 available: tuple[int, str] | None = None) -> MemoryEstimate:
    """Raise :class:`ResourceError` when the run cannot fit; returns the estimate."""
    est = estimate_memory(scenario, quarters)
    limit = available if available is not None else available_memory()
    if limit is None or est.total <= limit[0]:
        return est
    room = max(0, int((limit[0] - est.tables - BASE_BYTES) / max(est.per_user, 1)))
    raise ResourceError(
        f"key 'population.users': {est.users:,} users over {est.months} months need about "
        f"{human(est.total)} of memory ({est.per_user:.0f} bytes a user, "
        f"{human(est.tables)} of tables, {human(BASE_BYTES)} for Python and its libraries), "
        f"but only {human(limit[0])} is available ({limit[1]}); allowed: about "
        f"{room:,} users here. Simulate fewer users (--users N keeps the real population: "
        "the weight rises), or shorten the horizon with --quarters."
    )


# --------------------------------------------------------------------------- numbers


def _count(mask: np.ndarray) -> str:
    return f"{int(np.count_nonzero(mask)):,} of {mask.size:,} users"


def check_finite(values: np.ndarray, *, name: str, process: str, month: int,
                 key: str | tuple[str, ...], limit: float | None = None) -> np.ndarray:
    """Stop when ``values`` (a balance, an amount) is not finite or beyond ``limit``."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise numeric_error(process, month, name, f"is not finite (overflow) for {_count(bad)}",
                           key)
    if limit is not None:
        over = np.abs(values) > limit
        if over.any():
            raise numeric_error(process, month, name,
                               f"exceeds {limit:g} for {_count(over)} (largest "
                               f"{float(np.abs(values).max()):.4g})", key)
    return values


def check_probability(values: np.ndarray, *, name: str, process: str, month: int,
                      key: str | tuple[str, ...]) -> np.ndarray:
    """Stop when a probability is not finite or has left [0, 1] (after a shock, say)."""
    check_finite(values, name=name, process=process, month=month, key=key)
    out = (values < 0) | (values > 1)
    if out.any():
        raise numeric_error(process, month, name,
                           f"left [0, 1] for {_count(out)} (range {float(values.min()):.4g} to "
                           f"{float(values.max()):.4g})", key)
    return values


def check_population(pop: Population, *, process: str, month: int, key: str) -> None:
    """Every float array finite and every probability in [0, 1] (the month-end check)."""
    for name in PROBABILITIES:
        check_probability(getattr(pop, name), name=name, process=process, month=month, key=key)
    for name, values in vars(pop).items():
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            check_finite(values, name=name, process=process, month=month, key=key)
