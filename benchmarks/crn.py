"""``python -m benchmarks.crn``: how much common random numbers narrow a paired comparison.

Two strategies that differ only in the first phase's batch share (0.05 vs 0.06 of the pool)
are compared twice, with common random numbers (both strategies share each replication's
seed) and without (each strategy its own seeds). For every figure the paired difference's
variance over the replications is reported for both, and their ratio (independent / CRN):
the paired interval is sqrt(ratio) times narrower with CRN.

Figures: coverage (invited share at the horizon), the 12-month default rate (defaults over
the trailing year per borrower, at the end of the run-off), the loss rate and net income of
:func:`sim.experiments.compare.run_metrics`, and the vintages' cumulative default (90+) at 12
months on book, pooled over every batch, per invited user and per opened line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import sim
from sim.experiments.compare import compare

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("coverage", "default_rate_12m", "vintage_default_12m_per_invited",
           "vintage_default_12m_per_opened", "loss_rate", "net_income", "defaults")


def strategies(users: int, shares=(0.05, 0.06), base: Path = ROOT / "scenarios" /
               "baseline.yaml") -> list[sim.Scenario]:
    """The two strategies: the baseline with the first phase's batch share set."""
    return [sim.load(base, {"population.users": users, "rollout.phases.0.batch.share": s,
                            "rollout.name": f"share-{s:g}"}) for s in shares]


def per_run(users: int, reps: int, quarters: int, crn: bool, executor=None) -> pd.DataFrame:
    """One row per (strategy, replication) with the figures of :data:`METRICS`."""
    result = compare(strategies(users), reps, quarters=quarters, executor=executor,
                     common_random_numbers=crn)
    runs = result.runs.set_index(["strategy", "replication"])
    out = pd.DataFrame(index=runs.index)
    out["coverage"] = runs[f"invited_share_q{quarters}"]
    for name in ("default_rate_12m", "loss_rate", "net_income"):
        out[name] = runs[name]
    m = result.metrics
    out["defaults"] = m.groupby(["strategy", "replication"])["cum_defaults"].last()
    v = result.vintages
    v = v[v["mob"] == 12].assign(defaults=lambda d: d["dpd90_cum_rate"] * d["accounts"])
    pooled = v.groupby(["strategy", "replication"])[["defaults", "accounts", "opened"]].sum()
    out["vintage_default_12m_per_invited"] = pooled["defaults"] / pooled["accounts"]
    out["vintage_default_12m_per_opened"] = pooled["defaults"] / pooled["opened"]
    return out


def paired_variance(runs: pd.DataFrame) -> pd.Series:
    """Variance over replications of (second strategy - first strategy), per figure."""
    names = list(dict.fromkeys(runs.index.get_level_values("strategy")))
    diff = runs.loc[names[1]] - runs.loc[names[0]]
    return diff.var(ddof=1)


def measure(users: int = 20_000, reps: int = 10, quarters: int = 8, executor=None) -> dict:
    """Variance of the paired difference with and without CRN, and their ratio, by figure."""
    crn = paired_variance(per_run(users, reps, quarters, True, executor))
    ind = paired_variance(per_run(users, reps, quarters, False, executor))
    return {name: {"var_crn": float(crn[name]), "var_independent": float(ind[name]),
                   "ratio": float(ind[name] / crn[name]) if crn[name] > 0 else float("inf")}
            for name in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--quarters", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    executor = None
    if args.workers > 1:
        from sim.experiments.executors import ProcessPool
        executor = ProcessPool(args.workers)
    try:
        figures = measure(args.users, args.reps, args.quarters, executor)
    finally:
        if executor is not None:
            executor.close()
    print(f"batch share 0.05 vs 0.06, {args.users:,} users, {args.reps} replications, "
          f"{args.quarters} quarters (+ run-off)")
    print(f"{'figure':34} {'var CRN':>12} {'var indep.':>12} {'ratio':>8} {'CI x':>6}")
    for name, f in figures.items():
        print(f"{name:34} {f['var_crn']:12.4g} {f['var_independent']:12.4g} "
              f"{f['ratio']:8.1f} {np.sqrt(f['ratio']):6.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
