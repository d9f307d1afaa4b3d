"""Sensitivity indices that can be trusted: every index with its interval, against a noise floor.

Three designs, one verdict per (output, parameter):

* :func:`sobol` — Saltelli sampling (SALib): first-order and total indices with bootstrap
  intervals, a ``dummy`` parameter sampled like the others (it enters no run);
* :func:`rbd_fast` — any Latin hypercube sample: SALib's RBD-FAST first-order index with its
  bootstrap interval, against the spread of the same index for inert (dummy) columns;
* :func:`main_effects` — grid designs: the main-effect share of variance, with a permutation
  noise floor (the same statistic on shuffled levels).

An index that does not clear the dummy's noise floor (Sobol: its interval reaches down into
the dummy's; RBD-FAST and grids: it is under the upper end of the same index's spread for
inert parameters) is reported as "not distinguishable from noise"; an output that does not
vary across the points is "no variation", never an index (a 0/0 is not a share of 1.00). Too
few points for a method is a :class:`SensitivityError` naming the minimum.
:func:`replication_variance` puts the within-point (replication) variance beside the
between-point variance.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.errors import GreysimError

DUMMY = "dummy"
#: RBD-FAST harmonics; the method needs more than 2M + 1 points.
HARMONICS = 4
#: Sobol (Saltelli) base samples at least: fewer leave the bootstrap intervals meaningless.
SOBOL_MIN_BASE = 16
#: Relative variance under which an output counts as constant (float round-off, not an effect).
CONSTANT = 1e-12

VERDICTS = ("influential", "not distinguishable from noise", "noise floor", "no variation",
            "too few finite values")


class SensitivityError(GreysimError, ValueError):
    """A sensitivity analysis that cannot be made; ``str()`` is the message users see."""


def min_points(method: str, parameters: int = 1) -> int:
    """The fewest points ``method`` needs (``sobol``: base samples; others: points)."""
    if method == "sobol":
        return SOBOL_MIN_BASE
    if method == "rbd_fast":
        return 2 * HARMONICS + 2
    if method == "grid":
        return 3
    raise SensitivityError(f"unknown sensitivity method '{method}'; allowed: sobol, rbd_fast, "
                           "grid")


def is_constant(y: np.ndarray) -> bool:
    """Whether ``y`` does not vary beyond round-off (relative to its scale)."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if y.size < 2:
        return True
    scale = max(float(np.mean(y ** 2)), np.finfo(float).tiny)
    return float(np.var(y)) <= CONSTANT * scale


def _problem(names: Sequence[str], bounds: Sequence[tuple[float, float]]) -> dict:
    return {"num_vars": len(names), "names": list(names),
            "bounds": [[float(lo), float(hi)] for lo, hi in bounds]}


def sobol_sample(names: Sequence[str], bounds: Sequence[tuple[float, float]], n: int,
                 seed: int) -> pd.DataFrame:
    """Saltelli's sample for first-order and total Sobol indices, with the :data:`DUMMY`
    parameter on [0, 1] as the last column: ``n * (2 * (d + 1) + 2)`` rows (``n`` a power
    of two, at least :data:`SOBOL_MIN_BASE`)."""
    from SALib.sample import sobol as saltelli

    if n < SOBOL_MIN_BASE or n & (n - 1):
        raise SensitivityError(f"Sobol sampling needs a base sample that is a power of two, "
                               f"at least {SOBOL_MIN_BASE}; got {n}")
    problem = _problem([*names, DUMMY], [*bounds, (0.0, 1.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = saltelli.sample(problem, n, calc_second_order=False, seed=seed)
    return pd.DataFrame(X, columns=[*names, DUMMY])


def sobol(X: pd.DataFrame, outputs: pd.DataFrame, seed: int = 1,
          level: float = 0.95) -> pd.DataFrame:
    """First-order and total Sobol indices of every output column from a :func:`sobol_sample`
    (columns of ``X`` in sample order, :data:`DUMMY` last), with bootstrap intervals."""
    from SALib.analyze import sobol as analyze

    names = list(X.columns)
    if DUMMY not in names:
        raise SensitivityError("a Sobol analysis needs the dummy column of sobol_sample")
    d = len(names)
    if len(X) % (d + 2) or len(X) // (d + 2) < SOBOL_MIN_BASE:
        raise SensitivityError(f"a Sobol analysis of {d - 1} parameters needs at least "
                               f"{SOBOL_MIN_BASE * (d + 2)} points ({SOBOL_MIN_BASE} base "
                               f"samples x {d + 2}) from sobol_sample; got {len(X)}")
    problem = _problem(names, [(X[c].min(), X[c].max()) for c in names])
    rows = []
    for output in outputs.columns:
        y = outputs[output].to_numpy(dtype=float)
        if is_constant(y) or not np.isfinite(y).all():
            rows += _no_variation(output, names, "sobol", finite=np.isfinite(y).all())
            continue
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = analyze.analyze(problem, y, calc_second_order=False, num_resamples=200,
                                  conf_level=level, seed=seed)
        # SALib's *_conf are half widths of the bootstrap interval at conf_level
        for i, name in enumerate(names):
            rows.append(_row(output, name, "sobol", res["S1"][i], res["S1_conf"][i],
                             res["ST"][i], res["ST_conf"][i]))
    return _judge(pd.DataFrame(rows), index="total")


def rbd_fast(X: pd.DataFrame, outputs: pd.DataFrame, seed: int = 1,
             level: float = 0.95, nulls: int = 200) -> pd.DataFrame:
    """RBD-FAST first-order indices from a Latin hypercube sample ``X`` (one column per
    parameter), with SALib's bootstrap intervals, against a noise floor.

    The :data:`DUMMY` row is the index of an inert parameter: its estimate for one column
    drawn independently of the sample, its interval the central ``level`` range of the index
    over ``nulls`` such columns (the estimator's spread under no effect, which at a few dozen
    points is wide), and the noise floor that range's upper end. A parameter is influential
    when its index exceeds the noise floor: a permutation test at ``(1 - level) / 2``.
    """
    from SALib.analyze import rbd_fast as analyze

    n = len(X)
    need = min_points("rbd_fast")
    if n < need:
        raise SensitivityError(f"RBD-FAST needs at least {need} points (more than twice its "
                               f"{HARMONICS} harmonics plus one); the sample has {n}")
    rng = np.random.default_rng(seed)
    data = X.astype(float)
    names = list(data.columns)
    problem = _problem(names, [(data[c].min(), data[c].max() + 1e-12) for c in names])
    rows = []
    for output in outputs.columns:
        y = outputs[output].to_numpy(dtype=float)
        finite = np.isfinite(y)
        if is_constant(y) or finite.sum() < need:
            rows += _no_variation(output, [*names, DUMMY], "rbd_fast",
                                  finite=finite.sum() >= need)
            continue
        yf = y[finite]
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            res = analyze.analyze(problem, data.to_numpy()[finite], yf, M=HARMONICS,
                                  num_resamples=200, conf_level=level, seed=seed)
            null = np.array([_rbd_index(rng.permutation(yf.size), yf) for _ in range(nulls)])
        lo, hi = np.quantile(null, [(1 - level) / 2, (1 + level) / 2])
        floor = float(hi)
        for i, name in enumerate(names):
            s1 = float(res["S1"][i])
            rows.append({**_row(output, name, "rbd_fast", s1, res["S1_conf"][i]),
                         "noise_floor": floor,
                         "verdict": "influential" if s1 > floor
                         else "not distinguishable from noise"})
        rows.append({**_row(output, DUMMY, "rbd_fast", float(null[0]), np.nan),
                     "first_order_low": float(lo), "first_order_high": float(hi),
                     "noise_floor": floor, "verdict": "noise floor"})
    table = pd.DataFrame(rows)
    return _ranked(table, "first_order") if not table.empty else table


def _rbd_index(x: np.ndarray, y: np.ndarray) -> float:
    """SALib's RBD-FAST first-order estimate of ``y`` on the ordering of ``x``."""
    from SALib.analyze.rbd_fast import compute_first_order, permute_outputs, unskew_S1

    s1 = compute_first_order(permute_outputs(x, y), HARMONICS)
    return float(unskew_S1(s1, HARMONICS, y.size))


def main_effects(X: pd.DataFrame, outputs: pd.DataFrame, seed: int = 1,
                 level: float = 0.95, permutations: int = 200) -> pd.DataFrame:
    """Grid designs: each parameter's main-effect share of variance (variance of the output's
    mean per level over the output's variance); the :data:`DUMMY` row and every parameter's
    noise floor are the ``level`` quantile of the same share on shuffled levels."""
    rng = np.random.default_rng(seed)
    n = len(X)
    if n < min_points("grid"):
        raise SensitivityError(f"a main-effect analysis needs at least {min_points('grid')} "
                               f"points; the grid has {n}")
    rows = []
    for output in outputs.columns:
        y = outputs[output].to_numpy(dtype=float)
        finite = np.isfinite(y)
        if is_constant(y) or finite.sum() < 3:
            rows += _no_variation(output, [*X.columns, DUMMY], "grid", finite=finite.sum() >= 3)
            continue
        yf = y[finite]
        floor = 0.0
        for name in X.columns:
            labels = X[name].astype(str).to_numpy()[finite]
            share = _main_effect(labels, yf)
            null = [_main_effect(rng.permutation(labels), yf) for _ in range(permutations)]
            q = float(np.quantile(null, level))
            floor = max(floor, q)
            rows.append({**_row(output, name, "grid", share, np.nan), "noise_floor": q})
        rows.append({**_row(output, DUMMY, "grid", np.nan, np.nan), "noise_floor": floor})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    judged = table["verdict"].eq("")
    table.loc[judged, "verdict"] = np.where(
        table.loc[judged, "first_order"] > table.loc[judged, "noise_floor"], "influential",
        "not distinguishable from noise")
    table.loc[judged & table.parameter.eq(DUMMY), "verdict"] = "noise floor"
    return _ranked(table, "first_order")


def _main_effect(labels: np.ndarray, y: np.ndarray) -> float:
    means = pd.Series(y).groupby(labels).transform("mean").to_numpy()
    return float(np.var(means) / np.var(y))


def _row(output: str, name: str, method: str, s1: float, s1_half: float,
         st: float = np.nan, st_half: float = np.nan) -> dict:
    return {"output": output, "parameter": name, "method": method,
            "first_order": float(s1), "first_order_low": float(s1 - s1_half),
            "first_order_high": float(s1 + s1_half), "total": float(st),
            "total_low": float(st - st_half), "total_high": float(st + st_half),
            "noise_floor": np.nan, "verdict": ""}


def _no_variation(output: str, names: Sequence[str], method: str, finite: bool) -> list[dict]:
    """Rows of an output that cannot be analysed: constant, or too few finite values (an
    output never reached in most points)."""
    why = "no variation" if finite else "too few finite values"
    return [{**_row(output, n, method, np.nan, np.nan), "verdict": why} for n in names]


def _judge(table: pd.DataFrame, index: str) -> pd.DataFrame:
    """Mark an index whose interval overlaps the dummy's as not distinguishable from noise."""
    if table.empty:
        return table
    out = []
    for _, rows in table.groupby("output", sort=False):
        rows = rows.copy()
        if rows["verdict"].ne("").all():
            out.append(rows)
            continue
        dummy = rows[rows.parameter == DUMMY].iloc[0]
        ceiling = max(float(dummy[f"{index}_high"]), float(dummy[index]), 0.0)
        above = rows[f"{index}_low"] > ceiling
        rows["verdict"] = np.where(above, "influential", "not distinguishable from noise")
        rows.loc[rows.parameter == DUMMY, "verdict"] = "noise floor"
        rows["noise_floor"] = ceiling
        out.append(rows)
    return _ranked(pd.concat(out, ignore_index=True), index)


def _ranked(table: pd.DataFrame, index: str) -> pd.DataFrame:
    """Rank the parameters judged influential by ``index`` within each output (others: NaN)."""
    real = table["verdict"].eq("influential")
    table["rank"] = np.nan
    table.loc[real, "rank"] = table[real].groupby("output")[index].rank(ascending=False,
                                                                        method="first")
    return table.reset_index(drop=True)


def replication_variance(results: pd.DataFrame, outputs: Sequence[str],
                         point: str = "point") -> pd.DataFrame:
    """Per output: the variance between points (of the point means), the mean variance
    within a point (across its replications: simulation noise), and their ratio. A ratio near
    or under 1 / replications means the points differ no more than noise would make them."""
    rows = []
    for output in outputs:
        if output not in results:
            continue
        y = results[[point, output]].replace([np.inf, -np.inf], np.nan).dropna()
        groups = y.groupby(point)[output]
        between = float(groups.mean().var(ddof=1)) if groups.ngroups > 1 else np.nan
        within = float(groups.var(ddof=1).mean()) if groups.size().max() > 1 else np.nan
        rows.append({"output": output, "between_point_variance": between,
                     "within_point_variance": within,
                     "replications": int(groups.size().min()) if len(y) else 0,
                     "noise_share": within / (between + within)
                     if np.isfinite(within) and between + within > 0 else np.nan})
    return pd.DataFrame(rows)
