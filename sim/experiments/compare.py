"""Strategies compared on common random numbers: per-run metrics, intervals, paired
differences, swap sets and a verdict, held by a :class:`Comparison`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis import metrics as defs
from sim.analysis.stats import holm, interval, paired_p_value
from sim.engine.summary import horizon_rows
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
    verdict: Verdict
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
            risk = f"default_{defs.RISK_MOB}mob_opened"
            if risk in row and np.isfinite(row[risk]):
                text += (f", default at {defs.RISK_MOB} months on book {row[risk]:.2%} "
                         "per opened line")
            lines.append(text)
        if len(self.strategies) > 8:
            lines.append(f"  ... and {len(self.strategies) - 8} more")
        return "\n".join([*lines, f"verdict: {self.verdict.text}"])

def quarter_ends(monthly: pd.DataFrame) -> pd.DataFrame:
    """The last month of every quarter, indexed by quarter."""
    return monthly.groupby("quarter", sort=True).tail(1).set_index("quarter")


def run_metrics(monthly: pd.DataFrame, target: float, coverage: str = "invited") -> dict:
    """The figures a planner compares strategies on, from one run's monthly table.

    Coverage is read at the quarter ends of the rollout horizon (the run-off months after it
    invite no one). Credit figures are included when the table has them: the 12-month
    default rate at the end of the run (after the run-off), the annualised loss rate over the
    last 12 months (charge-offs over the mean outstanding balance), net income over the whole
    run and the peak outstanding balance.
    """
    ends = quarter_ends(horizon_rows(monthly))  # coverage at the horizon, not the run-off
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


def decision_metrics(tables: dict[str, pd.DataFrame], target: float,
                     coverage: str = "invited", mob: int = defs.RISK_MOB,
                     weight: float | None = None) -> dict:
    """The figures the verdict reads from one run (defined in :mod:`sim.analysis.metrics`):
    days to the target (interpolated), the lagged default rate at the horizon, capital use and
    capital-bound months, and the vintage figures at fixed months on book (per opened line
    and per invited user, pooled over the batches that reached them, and the peak of the
    ``mob`` one along the path)."""
    monthly = tables["metrics"]
    out = {"days_to_target": defs.days_to_target(monthly, target, coverage)}
    if "lagged_default_rate" in monthly:
        out["lagged_default_rate"] = defs.lagged_default_rate(monthly)
    out.update(defs.capital_figures(monthly))
    out.update(defs.risk_figures(tables.get("vintages"), mob, weight))
    return out


def metrics_table(outputs: Sequence[RunOutput], target: float,
                  coverage: str = "invited", mob: int = defs.RISK_MOB) -> pd.DataFrame:
    """One row per run: its labels, :func:`run_metrics` and :func:`decision_metrics`."""
    rows = [{**o.labels, **run_metrics(o.tables["metrics"], target, coverage),
             **decision_metrics(o.tables, target, coverage, mob, o.weight)} for o in outputs]
    return pd.DataFrame(rows)


def summarize_strategies(per_run: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Mean and 95% interval of every metric per strategy, and the paired difference to
    ``baseline`` (the first strategy by default), replication by replication, with its paired
    t-test p-value, the Holm-adjusted one over every challenger x metric (``p_holm``) and
    whether it is ``significant`` at 5% family-wise."""
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
            p = paired_p_value(diff.to_numpy()) if name != baseline else math.nan
            rows.append({"strategy": name, "metric": metric, "mean": mean, "ci_low": lo,
                         "ci_high": hi, "diff": dmean, "diff_ci_low": dlo,
                         "diff_ci_high": dhi, "replications": int(mine[metric].size),
                         "p_value": p})
    table = pd.DataFrame(rows)
    # one family: every challenger x metric, Holm-adjusted (about 20 metrics x k strategies
    # would otherwise flag a few differences by chance alone)
    table["p_holm"], table["significant"] = holm(table["p_value"].to_numpy())
    return table


def risk_metrics(mob: int) -> tuple[str, ...]:
    """The risk measures whose paired differences decide "no clear difference" (Holm)."""
    return (f"default_{mob}mob_opened", f"default_{mob}mob_opened_peak", "batch_loss_rate")


@dataclass(frozen=True, repr=False)
class Verdict:
    """Which strategy reaches the coverage target soonest inside the risk budget and the
    capital limit, and why every other one is not it.

    ``winner`` is the fastest eligible strategy (None when none is), ``runner_up`` the next
    one; ``clear`` is False when the paired interval of their time to target holds 0 and no
    risk difference between them is significant (Holm): then ``text`` says "no clear
    difference". ``reasons`` has one line per strategy, with its figures against the limits.
    """

    winner: str | None
    runner_up: str | None
    clear: bool
    reasons: dict[str, str]
    text: str
    measure: str
    budget: float | None
    target: float
    coverage: str
    warnings: tuple[str, ...] = ()
    days: dict[str, list[float]] = field(default_factory=dict)  # mean, 95% low, high

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Verdict(winner={self.winner!r}, runner_up={self.runner_up!r}, " \
               f"clear={self.clear}): {self.text}"

    def to_dict(self) -> dict:
        """The verdict as plain JSON values (for summary.json)."""
        return {"winner": self.winner, "runner_up": self.runner_up, "clear": self.clear,
                "text": self.text, "measure": self.measure, "budget": self.budget,
                "target": self.target, "coverage": self.coverage,
                "reasons": dict(self.reasons), "warnings": list(self.warnings),
                "days_to_target": {k: [None if not math.isfinite(x) else x for x in v]
                                   for k, v in self.days.items()}}


def _days(x: float) -> str:
    return "never" if not math.isfinite(x) else f"{x:.0f} days"


def _span(lo: float, hi: float, fmt) -> str:
    return f" (95% {fmt(lo)} to {fmt(hi)})" if math.isfinite(lo) and math.isfinite(hi) else ""


def _pct(x: float) -> str:
    return f"{x:.2%}"


def verdict(per_run: pd.DataFrame, target: float, max_default_rate: float | None,
            coverage: str = "invited", mob: int = defs.RISK_MOB) -> Verdict:
    """The verdict from the per-run table (:func:`metrics_table`).

    A strategy is out when its outstanding exceeded the capital limit in any replication,
    when its risk measure (the pooled cumulative default at ``mob`` months on book per opened
    line, at its highest along the path) is over ``max_default_rate`` on average over the
    replications, or when it does not reach the target in every replication. Among the others
    the fewest mean days to the target wins; the runner-up is the next. The two are "no
    clear difference" when the 95% paired interval of their days to target holds 0 and no
    risk difference between them is significant after Holm's adjustment; a significant risk
    difference with no difference in time makes the safer one the winner.
    """
    strategies = list(dict.fromkeys(per_run["strategy"]))
    reps = int(per_run.groupby("strategy").size().min())
    peak = f"default_{mob}mob_opened_peak"
    measure = (f"cumulative default at {mob} months on book per opened line, pooled over the "
               f"batches that reached {mob} months on book, at its highest along the path")
    goal = f"{target:.0%} {coverage} coverage"
    warnings: list[str] = []
    if reps < 3:
        warnings.append(f"only {reps} replication(s) per strategy: the intervals cannot "
                        "decide; read the verdict as a point estimate and run --reps 5 or more")
    runs = {n: per_run[per_run.strategy == n].sort_values("replication")
            .set_index("replication") for n in strategies}
    reasons, days, eligible = {}, {}, []
    for name, rows in runs.items():
        d = rows["days_to_target"].to_numpy(dtype=float)
        dm, dlo, dhi = interval(d)
        days[name] = [dm, dlo, dhi]
        out = []
        use = rows.get("capital_use_peak")
        if use is not None and np.isfinite(use).any() and (use > 1.0).any():
            out.append(f"over the capital limit: outstanding peaked at {use.max():.0%} of it "
                       f"in {(use > 1.0).sum()} of {len(use)} replications")
        risk = rows[peak].to_numpy(dtype=float) if peak in rows else np.array([np.nan])
        rm, rlo, rhi = interval(risk)
        if max_default_rate is not None and np.isfinite(rm) and rm > max_default_rate:
            out.append(f"over the risk budget: {rm:.2%}{_span(rlo, rhi, _pct)} against "
                       f"{max_default_rate:.2%} ({measure})")
        if max_default_rate is not None and not np.isfinite(rm):
            warnings.append(f"'{name}': the risk budget could not be checked: no batch "
                            f"reached {mob} months on book (simulate longer or add "
                            "reporting.run_off_months)")
        if not np.isfinite(d).all():
            out.append(f"does not reach {goal} in {(~np.isfinite(d)).sum()} of {len(d)} "
                       "replications")
        bound = rows.get("capital_bound_months")
        note = ""
        if bound is not None and bound.mean() > 0:
            note = f"; the capital limit held batches back in {bound.mean():.1f} months"
        risk_text = f"risk {rm:.2%}{_span(rlo, rhi, _pct)}" if np.isfinite(rm) else \
            f"risk not measurable yet (no batch {mob} months on book)"
        if out:
            reasons[name] = "out: " + "; ".join(out) + note
        else:
            eligible.append(name)
            reasons[name] = (f"reaches {goal} in {_days(dm)}{_span(dlo, dhi, _days)}, "
                             f"{risk_text}{note}")
    budget = "" if max_default_rate is None else \
        f" within a risk budget of {max_default_rate:.2%}"
    if not eligible:
        text = (f"No strategy reaches {goal}{budget} and inside the capital limit in every "
                "replication: " + "; ".join(f"'{n}' {r[5:]}" for n, r in reasons.items()) + ".")
        return Verdict(None, None, False, reasons, text, measure, max_default_rate, target,
                       coverage, tuple(warnings), days)
    risk_mean = {n: float(np.nanmean(runs[n][peak])) if peak in runs[n]
                 and runs[n][peak].notna().any() else math.inf for n in eligible}
    order = sorted(eligible, key=lambda n: (days[n][0], risk_mean[n]))
    winner = order[0]
    if len(order) == 1:
        text = f"'{winner}' reaches {goal} soonest{budget}: {reasons[winner]}; the others " \
               "are out (see reasons)."
        return Verdict(winner, None, True, reasons, text, measure, max_default_rate, target,
                       coverage, tuple(warnings), days)
    runner = order[1]
    a, b = runs[winner], runs[runner]
    dd = (b["days_to_target"] - a["days_to_target"]).dropna().to_numpy(dtype=float)
    ddm, ddlo, ddhi = interval(dd)
    time_unclear = not (np.isfinite(ddlo) and (ddlo > 0 or ddhi < 0))
    risk_p = [paired_p_value((b[m] - a[m]).to_numpy(dtype=float)) if m in a else math.nan
              for m in risk_metrics(mob)]
    _, risk_sig = holm(risk_p)
    gap = f"{ddm:+.0f} days{_span(ddlo, ddhi, lambda x: f'{x:+.0f}')}"
    if time_unclear and not risk_sig.any():
        text = (f"No clear difference between '{winner}' and '{runner}'{budget}: '{runner}' "
                f"reaches {goal} {gap} later, an interval that holds 0, and no risk "
                f"difference is significant (Holm). '{winner}': {reasons[winner]}.")
        return Verdict(winner, runner, False, reasons, text, measure, max_default_rate,
                       target, coverage, tuple(warnings), days)
    if time_unclear:  # same pace, different risk: the safer one
        safer = min((winner, runner), key=lambda n: risk_mean[n])
        winner, runner = safer, runner if safer == winner else winner
        text = (f"'{winner}' wins{budget}: as fast as '{runner}' ({gap} apart, an interval "
                f"that holds 0) with significantly lower risk. '{winner}': "
                f"{reasons[winner]}; '{runner}': {reasons[runner]}.")
    else:
        text = (f"'{winner}' reaches {goal} soonest{budget}: {reasons[winner]}; the "
                f"runner-up '{runner}' is {gap} later.")
    return Verdict(winner, runner, True, reasons, text, measure, max_default_rate, target,
                   coverage, tuple(warnings), days)

def compare(scenarios: Sequence[Scenario | str | Path], reps: int = 5, *,
            target: float | None = None, max_default_rate: float | None = None,
            coverage: str = "invited", quarters: int | None = None, executor=None,
            progress: Progress | None = None,
            common_random_numbers: bool = True, mob: int = defs.RISK_MOB) -> Comparison:
    """Run every strategy ``reps`` times on common random numbers and compare them.

    ``scenarios`` are :class:`~sim.scenario.Scenario` objects or scenario files, one per
    strategy (the first is the champion the others are set against). Replication ``r`` of a
    strategy uses the ``r``-th seed spawned from that scenario's own seed: strategies that
    share a seed (the usual case) share the synthetic population and random streams of every
    replication, so paired differences measure the strategy and not the noise.
    ``common_random_numbers=False`` gives each strategy its own seeds, which
    only exists to show how much wider the intervals then are (and leaves the swap sets,
    which need one population, empty). Two strategies with one label are refused
    (:func:`strategy_labels`).

    ``target`` and ``max_default_rate`` default to the first scenario's
    ``reporting.target_coverage`` (30% without one) and ``reporting.max_default_rate`` (the
    risk budget of the verdict, :func:`verdict`; none without one); ``mob`` is the months on
    book of the verdict's risk measure.
    """
    sources = [f"scenario {i + 1}" if isinstance(s, Scenario) else str(s)
               for i, s in enumerate(scenarios)]
    scenarios = [s if isinstance(s, Scenario) else load(s) for s in scenarios]
    _check(scenarios, reps, coverage, quarters)
    strategy_labels(scenarios, sources)
    reporting = scenarios[0].reporting
    if target is None:
        target = reporting.target_coverage if reporting.target_coverage is not None else 0.30
    if max_default_rate is None:
        max_default_rate = reporting.max_default_rate
    outputs = _run_strategies(scenarios, reps, quarters, executor, progress,
                              common_random_numbers)
    per_run = metrics_table(outputs, target, coverage, mob)
    summary = summarize_strategies(per_run)
    swaps = swap_sets(outputs) if common_random_numbers else pd.DataFrame()
    return Comparison(
        strategies=list(dict.fromkeys(per_run.strategy)), reps=reps, target=target,
        coverage=coverage, max_default_rate=max_default_rate, runs=per_run, summary=summary,
        swap_sets=swaps,
        metrics=concat(outputs, "metrics"),
        vintages=concat(outputs, "vintages") if "vintages" in outputs[0].tables else None,
        verdict=verdict(per_run, target, max_default_rate, coverage, mob),
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


def strategy_labels(scenarios: Sequence[Scenario],
                    sources: Sequence[str] | None = None) -> list[str]:
    """Each strategy's label (its rollout's name, else the scenario's); a label given twice
    (the same file twice, or two files whose rollout names collide) is refused, as its runs
    would be pooled as one strategy with duplicated replications. ``sources`` name the
    strategies in the message (their files); by default their positions."""
    names = [s.rollout.name if s.rollout.name else s.name for s in scenarios]
    where = list(sources) if sources is not None else [
        f"strategy {i + 1}" for i in range(len(names))]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise OptionError(
                f"{where[seen[name]]} and {where[i]} are both labelled '{name}' (rollout.name):"
                " a comparison needs one label per strategy; give one of them another "
                "rollout.name (its buckets are keyed by rollout.salt, so a new name changes "
                "no draw)")
        seen[name] = i
    return names


def _run_strategies(scenarios: Sequence[Scenario], reps: int, quarters: int | None,
                    executor, progress: Progress | None,
                    common_random_numbers: bool) -> list[RunOutput]:
    names = strategy_labels(scenarios)
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
