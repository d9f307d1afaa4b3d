"""A/B arms and champion/challenger: per-arm tables and the statistics that compare them.

The statistics themselves (Wald and Welch intervals, the sample-ratio-mismatch test, the
minimum detectable difference) live in :mod:`sim.analysis.stats`; this module assembles them
into the A/B report of a run and the swap-set tables of two runs.

The sample-ratio-mismatch check runs on assignment (users per arm, a check of the hash) and
on exposure (users ever invited, and visible at the horizon, per arm), each against the
intended split: an arm whose strategy reaches fewer users (a version floor, a region list) is
flagged, because its per-invited figures then compare other people than the control's, and
only the per-assigned-user (intent-to-treat) differences stay randomized. The split is
redrawn with the replication's seed (:func:`sim.engine.arms.assignment`), so the SRM p-value
varies across replications as it must. The minimum detectable difference is the exact
two-proportion one (unpooled variance under the alternative) at the stored ``alpha`` and
``power``; holdout default rates carry Clopper-Pearson intervals and a small-cell warning.

Intervals and the SRM check are computed on simulated users, the sample the simulated
figures actually come from (a weighted count would claim ``weight`` times the precision the
simulation has); the minimum detectable difference is given both at the real arm sizes (what
the bank's own experiment could detect) and at the simulated ones (what this simulation can
resolve). Nothing here does I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.analysis.stats import (
    clopper_pearson,
    mean_difference_interval,
    minimum_detectable_difference,
    srm_test,
    two_proportion_interval,
)
from sim.errors import GreysimError
from sim.model.credit import FEN
from sim.model.population import Population

if TYPE_CHECKING:
    from sim.engine.result import Result
    from sim.model.credit import Book
    from sim.scenario import AB

ARM_COLUMNS = ("arm", "share", "users", "accounts", "invited", "visible", "borrowers",
               "ever_invited", "defaults", "default_rate", "default_rate_12m", "loss",
               "holdout", "holdout_defaults", "holdout_default_rate")
SWAP_CELLS = ("both", "champion_only", "challenger_only", "neither")


class PopulationMismatch(GreysimError, ValueError):
    """Two runs that are not on the same population cannot be set against each other."""


SAME_POPULATION = ("the swap set needs two runs on the same population: the same "
                   "population keys and seed (common random numbers)")


#: The A/B summary's test settings: two-sided level of the intervals, and the alpha and
#: power of the minimum detectable difference.
ALPHA, POWER = 0.05, 0.80
#: A holdout (or arm) with fewer defaults than this has an interval too wide to read.
SMALL_CELL_DEFAULTS = 10


def srm_entry(counts, shares, alpha: float) -> dict:
    """One sample-ratio check: the counts, chi-square, p-value and whether it is flagged."""
    counts = [int(c) for c in counts]
    if sum(counts) == 0:
        return {"counts": counts, "chi2": None, "p_value": None, "mismatch": False}
    chi2, p = srm_test(counts, shares)
    return {"counts": counts, "chi2": chi2, "p_value": p, "mismatch": bool(p < alpha)}


def ab_summary(arm: np.ndarray, names: tuple[str, ...], pop: Population, book: Book,
               ab: AB, level: float = 0.95, holdout: np.ndarray | None = None,
               visible: np.ndarray | None = None) -> dict:
    """The A/B report: sample-ratio checks on assignment and exposure, and each arm against
    the first one (the control): differences in coverage, default rate (per ever-invited
    user, and per assigned user: the randomized, intent-to-treat one) and loss per account
    with their intervals, the exact minimum detectable difference in default rate at the
    arms' sizes (``POWER`` power, ``ALPHA`` two-sided), and the holdout's default rate with
    its Clopper-Pearson interval. ``visible`` is the per-arm count of simulated users who
    see the entry at the horizon (optional).
    """
    k, w = len(names), pop.weight
    codes = arm.astype(np.intp)
    ever = pop.vintage >= 0
    defaulted = book.default_month >= 0
    held = np.zeros(pop.n, dtype=bool) if holdout is None else holdout
    users = np.bincount(codes, minlength=k)[:k]
    invited = np.bincount(codes[pop.invited], minlength=k)[:k]
    n_ever = np.bincount(codes[ever], minlength=k)[:k]
    n_def = np.bincount(codes[ever & defaulted], minlength=k)[:k]
    n_hold = np.bincount(codes[held], minlength=k)[:k]
    n_hold_def = np.bincount(codes[held & defaulted], minlength=k)[:k]
    loss = book.cum_loss.astype(np.float64) / FEN  # CNY per simulated user
    shares = [a.share for a in ab.arms.values()]
    srm = {"alpha": ab.srm_alpha, "shares": shares,
           "assignment": srm_entry(users, shares, ab.srm_alpha),
           "exposure": {"invited": srm_entry(n_ever, shares, ab.srm_alpha)}}
    if visible is not None:
        srm["exposure"]["visible"] = srm_entry(visible, shares, ab.srm_alpha)
    srm["users"] = [int(u) for u in users]
    srm["mismatch"] = any(e["mismatch"] for e in srm["exposure"].values())
    out = {"salt": ab.salt, "control": names[0], "level": level, "alpha": ALPHA,
           "power": POWER, "srm": srm, "arms": {}, "warnings": []}
    if srm["assignment"]["mismatch"]:
        out["warnings"].append(
            f"sample-ratio mismatch in assignment (p = {srm['assignment']['p_value']:.2g}): "
            "the split does not follow the arms' shares")
    for kind, entry in srm["exposure"].items():
        if entry["mismatch"]:
            out["warnings"].append(
                f"sample-ratio mismatch in exposure: {kind} users per arm "
                f"{entry['counts']} against the split {shares} (p = {entry['p_value']:.2g}); "
                "per-invited differences compare different people, read the per-assigned-"
                "user (intent-to-treat) ones")
    # the base rate of the detectable difference: the control's, or the pooled one when the
    # control has no default yet (a base rate of 0 would claim any difference is detectable)
    base_rate = n_def[0] / n_ever[0] if n_def[0] else (
        n_def.sum() / n_ever.sum() if n_def.sum() else float("nan"))
    for i, name in enumerate(names):
        rate, lo, hi = clopper_pearson(n_hold_def[i], n_hold[i], level)
        entry = {
            "users": int(users[i]), "accounts": float(users[i] * w),
            "ever_invited_users": int(n_ever[i]), "ever_invited": float(n_ever[i] * w),
            "default_users": int(n_def[i]),
            "invited_share": float(invited[i] / users[i]) if users[i] else None,
            "default_rate": float(n_def[i] / n_ever[i]) if n_ever[i] else None,
            "defaults_per_user": float(n_def[i] / users[i]) if users[i] else None,
            "holdout": {"users": int(n_hold[i]), "default_users": int(n_hold_def[i]),
                        "default_rate": _num(rate), "ci_low": _num(lo), "ci_high": _num(hi),
                        "small_cell": bool(n_hold[i] and n_hold_def[i] < SMALL_CELL_DEFAULTS)},
        }
        if entry["holdout"]["small_cell"]:
            out["warnings"].append(
                f"arm '{name}': the holdout has {n_hold_def[i]} defaults in {n_hold[i]} "
                f"simulated users: its default rate {rate:.1%} is only known to within "
                f"{lo:.1%} to {hi:.1%} (Clopper-Pearson {level:.0%})")
        if i > 0:
            entry["vs_control"] = {
                "invited_share": _interval(two_proportion_interval(
                    invited[0], users[0], invited[i], users[i], level)),
                "default_rate": _interval(two_proportion_interval(
                    n_def[0], n_ever[0], n_def[i], n_ever[i], level)),
                "defaults_per_user": _interval(two_proportion_interval(
                    n_def[0], users[0], n_def[i], users[i], level)),
                "loss_per_invited": _interval(mean_difference_interval(
                    loss[ever & (codes == 0)], loss[ever & (codes == i)], level)),
                "mde_base_rate": _num(base_rate),
                "mde_default_rate": _num(minimum_detectable_difference(
                    base_rate, n_ever[0] * w, n_ever[i] * w, ALPHA, POWER)),
                "mde_default_rate_simulated": _num(minimum_detectable_difference(
                    base_rate, n_ever[0], n_ever[i], ALPHA, POWER)),
            }
        out["arms"][name] = entry
    return out


def attach_ab_summary(result: Result) -> None:
    """Add the A/B report (``summary["ab"]``) and its warnings (small arms, sample-ratio
    mismatch, small holdout cells) to a run's summary."""
    ab = result.scenario.ab
    if ab is None:
        return
    summary = result.summary
    visible = None
    if "visible" in result.arms:
        visible = np.rint(result.arms["visible"].to_numpy(dtype=float)
                          / result.population.weight).astype(np.int64)
    summary["ab"] = ab_summary(result.arm, result.arm_names, result.population, result.book,
                               ab, holdout=result.holdout, visible=visible)
    sizes = {n: a["ever_invited_users"] for n, a in summary["ab"]["arms"].items()}
    summary["warnings"] = (small_arm_warnings(result.arms, sizes, ab.min_arm_accounts)
                           + summary["ab"]["warnings"])


def _interval(values: tuple[float, float, float]) -> dict:
    diff, lo, hi = values
    return {"diff": _num(diff), "ci_low": _num(lo), "ci_high": _num(hi)}


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def small_arm_warnings(arms: pd.DataFrame, users: dict[str, int],
                       min_accounts: float) -> list[str]:
    """A warning for every arm with fewer ever-invited accounts than ``min_accounts``, counted
    in real accounts or in simulated users, whichever is smaller (a simulated arm of a few
    hundred users measures nothing, whatever it stands for)."""
    out = []
    for row in arms.itertuples():
        sim_users = users.get(row.arm, 0)
        n = min(row.ever_invited, sim_users)
        if n < min_accounts:
            unit = "simulated users" if sim_users < row.ever_invited else "accounts"
            out.append(f"arm '{row.arm}' is too small to measure: {n:,.0f} invited {unit}, "
                       f"under the {min_accounts:,.0f} of ab.min_arm_accounts; its default "
                       f"rate and differences are mostly noise")
    return out


# --------------------------------------------------------------------------- swap set


def outcomes(result: Result) -> pd.DataFrame:
    """Compact per-user outcome of a run, one row per simulated user: arm, ever invited,
    defaulted by the horizon, in a holdout, and the latent 12-month default probability the
    simulator knows (the bank does not)."""
    pop, book = result.population, result.book
    arm = result.arm if result.arm is not None else np.zeros(pop.n, dtype=np.int8)
    holdout = result.holdout if result.holdout is not None else np.zeros(pop.n, dtype=bool)
    hazard = pop.hazard.astype(np.float64)
    return pd.DataFrame({
        "arm": pd.Categorical.from_codes(arm.astype(np.int64),
                                         categories=list(result.arm_names)),
        "ever_invited": pop.vintage >= 0,
        "defaulted": book.default_month >= 0,
        "holdout": holdout,
        "latent_pd_12m": 1.0 - (1.0 - hazard) ** 12,
    })


def swap_set(champion: Result, challenger: Result) -> pd.DataFrame:
    """The swap-set table of two strategies run on the same population (common random
    numbers): users invited by both, by the champion only, by the challenger only, by neither,
    with each cell's accounts, the default rate observed in each run that invited it, and the
    latent 12-month default probability (what the bank would never see for ``neither``)."""
    if champion.population.weight != challenger.population.weight:
        raise PopulationMismatch(SAME_POPULATION)
    return swap_set_of(outcomes(champion), outcomes(challenger), champion.population.weight)


def swap_set_of(a: pd.DataFrame, b: pd.DataFrame, weight: float) -> pd.DataFrame:
    """:func:`swap_set` from two runs' :func:`outcomes` (what worker processes send back)."""
    same = len(a) == len(b) and np.array_equal(a["latent_pd_12m"].to_numpy(),
                                               b["latent_pd_12m"].to_numpy())
    if not same:
        raise PopulationMismatch(SAME_POPULATION)
    ia, ib = a["ever_invited"].to_numpy(), b["ever_invited"].to_numpy()
    cells = {"both": ia & ib, "champion_only": ia & ~ib, "challenger_only": ~ia & ib,
             "neither": ~ia & ~ib}
    da, db = a["defaulted"].to_numpy(), b["defaulted"].to_numpy()
    pd12 = a["latent_pd_12m"].to_numpy()
    rows = []
    for cell, mask in cells.items():
        n = int(mask.sum())
        rows.append({
            "cell": cell, "users": n, "accounts": n * weight,
            "default_rate_champion": (da[mask].mean() if n and cell in ("both", "champion_only")
                                      else np.nan),
            "default_rate_challenger": (db[mask].mean()
                                        if n and cell in ("both", "challenger_only")
                                        else np.nan),
            "latent_pd_12m": pd12[mask].mean() if n else np.nan,
        })
    return pd.DataFrame(rows)
