"""Strategies compared on common random numbers: per-run metrics, intervals, paired
differences, swap sets and a verdict, held by a :class:`Comparison`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.stats import interval
from sim.errors import OptionError
from sim.experiments.runs import (
    Progress,
    RunOutput,
    RunSpec,
    concat,
    replicate,
    run_all,
)
from sim.scenario import Scenario, load

COVERAGES = ("invited", "visible")


@dataclass(frozen=True, repr=False)
class Comparison:
    """Strategies run ``reps`` times each on common random numbers, and what they show.

    ``runs`` has one row per run (strategy, replication and the figures of
    :func:`run_metrics`); ``summary`` one row per strategy and metric (mean, 95% interval,
    paired difference to the first strategy and its interval); ``swap_sets`` who each
    challenger invites that the champion does not, and the reverse; ``metrics`` and
    ``vintages`` the monthly and vintage tables of every run, labelled.
    """

    strategies: list[str]
    reps: int
    target: float
    coverage: str
    max_default_rate: float | None
    runs: pd.DataFrame
    summary: pd.DataFrame
    swap_sets: pd.DataFrame
    metrics: pd.DataFrame
    vintages: pd.DataFrame | None
    verdict: str
    notes: tuple[str, ...] = ()  # what could not be computed, and why
    segments: pd.DataFrame | None = None  # each run's segment table at its last month

    @property
    def differences(self) -> pd.DataFrame:
        """Each challenger's paired difference to the champion (the first strategy), per
        metric, with its 95% interval."""
        rows = self.summary[self.summary.strategy != self.strategies[0]]
        return rows[["strategy", "metric", "diff", "diff_ci_low", "diff_ci_high",
                     "replications"]].reset_index(drop=True)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of a comparison folder, by file stem."""
        tables = {"runs": self.runs, "comparison": self.summary, "swap_set": self.swap_sets,
                  "metrics": self.metrics}
        if self.vintages is not None:
            tables["vintages"] = self.vintages
        if self.segments is not None:
            tables["segments"] = self.segments
        return tables

    def __repr__(self) -> str:
        means = self.summary.pivot(index="strategy", columns="metric", values="mean")
        lines = [f"Comparison of {len(self.strategies)} strategies x {self.reps} replications "
                 f"(target {self.target:.0%} {self.coverage} coverage)"]
        for name in self.strategies[:8]:
            row = means.loc[name]
            q = row["quarters_to_target"]
            text = f"  {name}: " + (f"target in quarter {q:.2f}" if np.isfinite(q) else
                                   "target not reached")
            if "default_rate_12m" in row:
                text += f", 12-month default rate {row['default_rate_12m']:.2%}"
            lines.append(text)
        if len(self.strategies) > 8:
            lines.append(f"  ... and {len(self.strategies) - 8} more")
        return "\n".join([*lines, f"verdict: {self.verdict}"])

def quarter_ends(monthly: pd.DataFrame) -> pd.DataFrame:
    """The last month of every quarter, indexed by quarter."""
    return monthly.groupby("quarter", sort=True).tail(1).set_index("quarter")


def run_metrics(monthly: pd.DataFrame, target: float, coverage: str = "invited") -> dict:
    """The figures a planner compares strategies on, from one run's monthly table.

    Credit figures are included when the table has them: the 12-month default rate at the
    horizon, the annualised loss rate over the last 12 months (charge-offs over the mean
    outstanding balance), net income over the horizon and the peak outstanding balance.
    """
    ends = quarter_ends(monthly)
    share = ends[f"{coverage}_share"]
    reached = share.index[share.to_numpy() >= target]
    out = {f"{kind}_share_q{q}": float(ends.loc[q, f"{kind}_share"])
           for kind in ("invited", "visible") for q in ends.index}
    out["quarters_to_target"] = float(reached[0]) if len(reached) else float("inf")
    last12 = monthly.tail(12)
    if "default_rate_12m" in monthly:
        out["default_rate_12m"] = float(monthly["default_rate_12m"].iloc[-1])
    if {"charge_off_loss", "outstanding"} <= set(monthly.columns):
        mean_out = float(last12["outstanding"].mean())
        annual = float(last12["charge_off_loss"].sum()) * 12 / len(last12)
        out["loss_rate"] = annual / mean_out if mean_out > 0 else float("nan")
    if "net_income" in monthly:
        out["net_income"] = float(monthly["net_income"].sum())
    if "outstanding" in monthly:
        out["peak_outstanding"] = float(monthly["outstanding"].max())
    return out


def metrics_table(outputs: Sequence[RunOutput], target: float,
                  coverage: str = "invited") -> pd.DataFrame:
    """One row per run: its labels and :func:`run_metrics`."""
    rows = [{**o.labels, **run_metrics(o.tables["metrics"], target, coverage)}
            for o in outputs]
    return pd.DataFrame(rows)


def summarize_strategies(per_run: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Mean and 95% interval of every metric per strategy, and the paired difference to
    ``baseline`` (the first strategy by default), replication by replication."""
    strategies = list(dict.fromkeys(per_run["strategy"]))
    baseline = baseline or strategies[0]
    metrics = [c for c in per_run.columns if c not in ("strategy", "replication")]
    ref = per_run[per_run.strategy == baseline].set_index("replication")
    rows = []
    for name in strategies:
        mine = per_run[per_run.strategy == name].set_index("replication")
        for metric in metrics:
            mean, lo, hi = interval(mine[metric].to_numpy())
            diff = (mine[metric] - ref[metric]).dropna()
            dmean, dlo, dhi = interval(diff.to_numpy())
            rows.append({"strategy": name, "metric": metric, "mean": mean, "ci_low": lo,
                         "ci_high": hi, "diff": dmean, "diff_ci_low": dlo,
                         "diff_ci_high": dhi, "replications": int(mine[metric].size)})
    return pd.DataFrame(rows)


def verdict(summary: pd.DataFrame, target: float, max_default_rate: float | None,
            coverage: str = "invited") -> str:
    """Which strategy reaches the coverage target soonest within the default budget; a tie
    goes to the lower 12-month default rate, then to the wider final coverage.

    A strategy is within budget when the upper end of its 95% interval of the 12-month default
    rate (its mean, with one replication) is at or under ``max_default_rate``.
    """
    table = summary.pivot(index="strategy", columns="metric", values="mean")
    upper = summary.pivot(index="strategy", columns="metric", values="ci_high")
    order = list(dict.fromkeys(summary.strategy))
    table, upper = table.loc[order], upper.loc[order]
    within = pd.Series(True, index=table.index)
    if max_default_rate is not None and "default_rate_12m" in table:
        bound = upper["default_rate_12m"].fillna(table["default_rate_12m"])
        within = bound <= max_default_rate
    budget = "" if max_default_rate is None else f" within a 12-month default rate of " \
                                                 f"{max_default_rate:.2%}"
    goal = f"{target:.0%} {coverage} coverage"
    candidates = table[within & np.isfinite(table["quarters_to_target"])]
    if candidates.empty:
        over = ", ".join(s for s in table.index if not within[s])
        reason = f" ({over} over budget)" if over else ""
        return f"No strategy reaches {goal}{budget} in every replication{reason}."
    # ties in time go to the lower default rate, then to the wider final coverage
    final = [c for c in table.columns if c.startswith(f"{coverage}_share_q")][-1]
    ascending = {"quarters_to_target": True, "default_rate_12m": True, final: False}
    keys = [k for k in ascending if k in candidates.columns]
    best = candidates.sort_values(keys, ascending=[ascending[k] for k in keys]).index[0]
    q = candidates.loc[best, "quarters_to_target"]
    detail = ""
    if "default_rate_12m" in table:
        detail = f"; 12-month default rate {table.loc[best, 'default_rate_12m']:.2%}"
    return (f"'{best}' reaches {goal} soonest{budget}: quarter {q:.1f} on average"
            f"{detail}.")


def compare(scenarios: Sequence[Scenario | str | Path], reps: int = 5, *,
            target: float = 0.30, max_default_rate: float | None = None,
            coverage: str = "invited", quarters: int | None = None, executor=None,
            progress: Progress | None = None,
            common_random_numbers: bool = True) -> Comparison:
    """Run every strategy ``reps`` times on common random numbers and compare them.

    ``scenarios`` are :class:`~sim.scenario.Scenario` objects or scenario files, one per
    strategy (the first is the champion the others are set against). Replication ``r`` of a
    strategy uses the ``r``-th seed spawned from that scenario's own seed: strategies that
    share a seed (the usual case) share the synthetic population and random streams of every
    replication, so paired differences measure the strategy and not the noise.
    ``common_random_numbers=False`` gives each strategy its own seeds, which
    only exists to show how much wider the intervals then are (and leaves the swap sets,
    which need one population, empty).
    """
    scenarios = [s if isinstance(s, Scenario) else load(s) for s in scenarios]
    _check(scenarios, reps, coverage, quarters)
    outputs = _run_strategies(scenarios, reps, quarters, executor, progress,
                              common_random_numbers)
    per_run = metrics_table(outputs, target, coverage)
    summary = summarize_strategies(per_run)
    swaps = swap_sets(outputs) if common_random_numbers else pd.DataFrame()
    return Comparison(
        strategies=list(dict.fromkeys(per_run.strategy)), reps=reps, target=target,
        coverage=coverage, max_default_rate=max_default_rate, runs=per_run, summary=summary,
        swap_sets=swaps,
        metrics=concat(outputs, "metrics"),
        vintages=concat(outputs, "vintages") if "vintages" in outputs[0].tables else None,
        verdict=verdict(summary, target, max_default_rate, coverage),
        notes=_swap_notes(swaps, per_run, common_random_numbers),
        segments=_last_month(concat(outputs, "segments")))


def _last_month(segments: pd.DataFrame) -> pd.DataFrame | None:
    """The segment rows of each run's last month (the report's heat maps per strategy)."""
    if segments.empty or "month" not in segments:
        return None
    return segments[segments["month"] == segments["month"].max()].reset_index(drop=True)


def _check(scenarios: Sequence[Scenario], reps: int, coverage: str,
           quarters: int | None) -> None:
    if len(scenarios) < 2:
        raise OptionError("a comparison needs at least two scenarios")
    if reps < 1:
        raise OptionError(f"reps must be at least 1, got {reps}")
    if coverage not in COVERAGES:
        raise OptionError(f"coverage must be 'invited' or 'visible', got '{coverage}'")
    if quarters is not None and quarters > min(s.quarters for s in scenarios):
        raise OptionError(f"quarters={quarters} is longer than a scenario's horizon")


def _run_strategies(scenarios: Sequence[Scenario], reps: int, quarters: int | None,
                    executor, progress: Progress | None,
                    common_random_numbers: bool) -> list[RunOutput]:
    names = [s.rollout.name if s.rollout.name else s.name for s in scenarios]
    if len(set(names)) != len(names):
        names = [f"{s.name}:{s.rollout.name}" for s in scenarios]
    specs = []
    for k, (name, sc) in enumerate(zip(names, scenarios, strict=True)):
        offset = 0 if common_random_numbers else 7919 * (k + 1)
        specs += [RunSpec(replica, quarters, {"strategy": name, "replication": r})
                  for r, replica in enumerate(replicate(sc, reps, offset))]
    return run_all(specs, executor, progress)


def _swap_notes(swaps: pd.DataFrame, per_run: pd.DataFrame,
                common_random_numbers: bool) -> tuple[str, ...]:
    """Say which challengers have no swap set (their population is not the champion's)."""
    strategies = list(dict.fromkeys(per_run.strategy))
    have = set(swaps["challenger"]) if "challenger" in swaps else set()
    missing = [s for s in strategies[1:] if s not in have]
    if not missing:
        return ()
    why = ("the comparison ran without common random numbers" if not common_random_numbers
           else "their populations differ from the champion's (a population key or the seed)")
    return (f"no swap set for {', '.join(repr(m) for m in missing)}: {why}",)


def swap_sets(outputs: Sequence[RunOutput]) -> pd.DataFrame:
    """The swap-set table of every strategy against the first (the champion), averaged over
    replications: users invited by both, by the champion only, by the challenger only, by
    neither, with each cell's accounts and default rates. Needs common random numbers: a
    challenger whose population differs from the champion's (another population key or seed)
    has no swap set, and is left out rather than failing the finished comparison."""
    from sim.analysis.abtest import PopulationMismatch, swap_set_of

    by_run = {(o.labels["strategy"], o.labels["replication"]): o for o in outputs}
    strategies = list(dict.fromkeys(o.labels["strategy"] for o in outputs))
    frames = []
    for (name, rep), challenger in by_run.items():
        champion = by_run[(strategies[0], rep)]
        if name == strategies[0] or champion.outcomes is None:
            continue
        try:
            cells = swap_set_of(champion.outcomes, challenger.outcomes, champion.weight)
        except PopulationMismatch:
            continue
        cells.insert(0, "challenger", name)
        cells.insert(1, "replication", rep)
        frames.append(cells)
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return (table.drop(columns="replication")
            .groupby(["challenger", "cell"], sort=False).mean().reset_index())
