"""Numeric guards: stop a run whose values leave their allowed range, never clip them.

While it runs, the engine checks the population whenever behaviour is read (each re-scoring
and the last month, :func:`check_population`: every float array the first time, then what
behaviour writes) and the score after each scoring (naming the array it summed that went
bad); any step may check its own arrays with
:func:`check_probability` (a rate that must stay in [0, 1]) or :func:`check_finite` (a
balance that must not overflow).
Trouble raises :class:`NumericError`, naming the month, the process and the scenario key to
look at.
"""

from __future__ import annotations

import numpy as np

from sim.errors import GreysimError
from sim.model.population import FIXED, Population

#: Population arrays that hold probabilities or shares.
PROBABILITIES = ("social_quality", "offline_share", "night_share", "hazard", "visibility_draw")



class NumericError(GreysimError, ArithmeticError):
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


# --------------------------------------------------------------------------- numbers


def _count(mask: np.ndarray) -> str:
    return f"{int(np.count_nonzero(mask)):,} of {mask.size:,} users"


def check_finite(values: np.ndarray, *, name: str, process: str, month: int,
                 key: str | tuple[str, ...], limit: float | None = None) -> np.ndarray:
    """Stop when ``values`` (a balance, an amount) is not finite or beyond ``limit``."""
    # a sum carries any NaN or infinity, in one pass without a mask the size of the array;
    # only a sum that is not finite (or finite values whose sum overflows) looks closer
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(values, axis=None)
    if values.size and not np.isfinite(total):
        bad = ~np.isfinite(values)
        if bad.any():
            raise numeric_error(process, month, name,
                               f"is not finite (overflow) for {_count(bad)}", key)
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


def check_population(pop: Population, *, process: str, month: int, key: str,
                     fixed: bool = True, names: tuple[str, ...] | None = None) -> None:
    """Every float array finite and every probability in [0, 1] (the check at each read of
    behaviour). ``fixed=False`` leaves out the arrays no step writes after synthesis
    (:data:`sim.model.population.FIXED`, among them every probability): once checked they
    hold for the run. ``names`` limits the check to those arrays (a step checks what it
    wrote)."""
    for name in PROBABILITIES:
        if (fixed or name not in FIXED) and (names is None or name in names):
            check_probability(getattr(pop, name), name=name, process=process, month=month,
                              key=key)
    for name, values in vars(pop).items():
        if (isinstance(values, np.ndarray) and values.dtype.kind == "f"
                and (fixed or name not in FIXED) and (names is None or name in names)):
            check_finite(values, name=name, process=process, month=month, key=key)
