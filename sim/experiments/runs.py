"""Many runs: replications, strategies and sweeps mapped over an executor.

A run is described by a :class:`RunSpec` (scenario, labels) and executed by a top-level
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

from sim.engine.result import Result
from sim.engine.simulation import Simulation
from sim.scenario import Scenario

Progress = Callable[[int, int], None]


def run(scenario: Scenario, seed: int | None = None, progress: Progress | None = None,
        quarters: int | None = None) -> Result:
    """Simulate ``scenario`` and return the result, with the A/B statistics in its summary
    when the scenario has arms.

    The run's seed is ``scenario.seed``; ``seed`` is a shorthand for
    ``scenario.replace({"seed": seed})``, so the result's scenario records the seed it ran.

    ``quarters`` simulates only the first quarters of the scenario's horizon (its calendar,
    phases and releases stay as written), which is how short test and benchmark runs are made.
    """
    from sim.analysis.abtest import attach_ab_summary

    if seed is not None:
        scenario = scenario.replace({"seed": int(seed)})
    result = Simulation(scenario, progress, quarters).run()
    attach_ab_summary(result)
    return result


def replication_seeds(seed: int, reps: int) -> list[int]:
    """``reps`` independent 63-bit seeds spawned from ``seed`` (``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(seed).spawn(reps)
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


def replicate(scenario: Scenario, reps: int, offset: int = 0) -> list[Scenario]:
    """The ``reps`` replications of a scenario: replication ``r`` is the scenario with the
    ``r``-th seed spawned from its own seed (plus ``offset``, to decorrelate on purpose), so
    scenarios that share a seed share every replication's random numbers."""
    return [scenario.replace({"seed": seed})
            for seed in replication_seeds(scenario.seed + offset, reps)]


@dataclass(frozen=True)
class RunSpec:
    """One run to make: a scenario (its seed included) and labels that tag every row it
    produces."""

    scenario: Scenario
    quarters: int | None = None
    labels: dict = field(default_factory=dict)


@dataclass
class RunOutput:
    """What a run sends back: its tables (labelled), its summary, and each user's outcome
    (ever invited, defaulted, latent default probability) for swap-set tables."""

    labels: dict
    tables: dict[str, pd.DataFrame]
    summary: dict
    outcomes: pd.DataFrame | None = None
    weight: float = 1.0


def execute_one(spec: RunSpec) -> RunOutput:
    """Run one spec; a top-level function so that worker processes can import it."""
    result = run(spec.scenario, quarters=spec.quarters)
    tables = {}
    for name, table in result.tables().items():
        table = table.copy()
        for i, (key, value) in enumerate(spec.labels.items()):
            table.insert(i, key, value)
        tables[name] = table
    from sim.analysis.abtest import outcomes

    users = outcomes(result)[["ever_invited", "defaulted", "latent_pd_12m"]]
    return RunOutput(dict(spec.labels), tables, result.summary, users, result.population.weight)


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
    specs = [RunSpec(replica, quarters, {"replication": r})
             for r, replica in enumerate(replicate(scenario, reps))]
    return execute(specs, executor, progress)


# --------------------------------------------------------------------------- comparison


def interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t interval of the mean; (mean, nan, nan) from a single value."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = values.size
    mean = float(values.mean()) if n else float("nan")
    if n < 2 or not np.isfinite(values).all():
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def quarter_ends(monthly: pd.DataFrame) -> pd.DataFrame:
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


def compare(scenarios: Sequence[Scenario], reps: int, *, target: float,
            max_default_rate: float | None = None, coverage: str = "invited",
            quarters: int | None = None, executor=None, progress: Progress | None = None,
            common_random_numbers: bool = True):
    """Run every strategy ``reps`` times on common random numbers and compare them.

    Replication ``r`` of a strategy uses the ``r``-th seed spawned from that scenario's own
    seed: strategies that share a seed (the usual case) share the synthetic population and
    random streams of every replication, so paired differences measure the strategy and not
    the noise. ``common_random_numbers=False`` gives each strategy its own seeds, which only
    exists to show how much wider the intervals then are.
    """
    names = [s.rollout.name if s.rollout.name else s.name for s in scenarios]
    if len(set(names)) != len(names):
        names = [f"{s.name}:{s.rollout.name}" for s in scenarios]
    specs = []
    for k, (name, sc) in enumerate(zip(names, scenarios, strict=True)):
        offset = 0 if common_random_numbers else 7919 * (k + 1)
        specs += [RunSpec(replica, quarters, {"strategy": name, "replication": r})
                  for r, replica in enumerate(replicate(sc, reps, offset))]
    outputs = execute(specs, executor, progress)
    per_run = metrics_table(outputs, target, coverage)
    summary = summarize_strategies(per_run)
    return outputs, per_run, summary, verdict(summary, target, max_default_rate, coverage)


def swap_sets(outputs: Sequence[RunOutput]) -> pd.DataFrame:
    """The swap-set table of every strategy against the first (the champion), averaged over
    replications: users invited by both, by the champion only, by the challenger only, by
    neither, with each cell's accounts and default rates. Needs common random numbers."""
    from sim.analysis.abtest import swap_set_of

    by_run = {(o.labels["strategy"], o.labels["replication"]): o for o in outputs}
    strategies = list(dict.fromkeys(o.labels["strategy"] for o in outputs))
    frames = []
    for (name, rep), challenger in by_run.items():
        champion = by_run[(strategies[0], rep)]
        if name == strategies[0] or champion.outcomes is None:
            continue
        cells = swap_set_of(champion.outcomes, challenger.outcomes, champion.weight)
        cells.insert(0, "challenger", name)
        cells.insert(1, "replication", rep)
        frames.append(cells)
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return (table.drop(columns="replication")
            .groupby(["challenger", "cell"], sort=False).mean().reset_index())
