"""Robust rollout plans: every strategy across sampled futures, and where each one fails.

The assumptions that dominate a rollout's outcome (default hazard, a macro shock's depth and
date, client adoption, activation...) are sampled once as futures (a Latin hypercube over an
uncertainties file, :mod:`sim.experiments.uncertainties`); every strategy runs in every future
on the same seed (common random numbers across strategies), ``reps`` replications each. From
each run's monthly and vintage tables, :func:`outcomes` computes what a planner judges a plan
on; :func:`measures` turns them into robustness: the satisficing share (futures in which the
plan reaches the target by the planner's date within the risk budget and capital limit) with
its Wilson interval, regret against the best plan in each future, and the worst case. PRIM
(:mod:`sim.analysis.discovery`) then describes the futures in which the recommended plan fails.

Every finished (strategy, future) is written as its own folder under ``runs/`` (atomically);
an interrupted run, rerun with the same inputs, skips what is complete. The folder's key
covers every input that changes results; a folder holding another key is refused.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import OptionError
from sim.experiments.runs import RunOutput, RunSpec, execute_one, replicate, replication_seeds
from sim.experiments.uncertainties import Uncertainties, read
from sim.scenario import Scenario, load

#: The per-run figures of :func:`outcomes`, in order.
OUTCOMES = ("time_to_target_months", "default_12mob_opened", "risk_vintages",
            "peak_outstanding", "capital_limit", "peak_capital_use", "capital_bound",
            "loss", "net_income", "final_coverage")


@dataclass(frozen=True, repr=False)
class Robustness:
    """Strategies run across sampled futures, and how robust each one is.

    ``futures``: one row per future (its value of every uncertainty); ``outcomes``: one row
    per (strategy, future), the mean over replications of :func:`outcomes`, the constraint
    flags (``reached``, ``within_budget``, ``within_capital``, ``satisficing``) and the
    ``regret_months``; ``runs``: the same per replication; ``ranking``: one row per strategy,
    most robust first; ``discovery``: the PRIM box of the futures where the recommended
    plan fails (:class:`sim.analysis.discovery.Discovery`).
    """

    strategies: list[str]
    futures: pd.DataFrame
    outcomes: pd.DataFrame
    runs: pd.DataFrame
    ranking: pd.DataFrame
    discovery: object
    recommended: str
    target: float
    coverage: str
    budget: float | None
    by: dt.date
    by_months: float
    capital_share: float
    reps: int
    root: Path
    notes: tuple[str, ...] = ()
    cart: str = ""  # a CART tree of the same failures, as text rules (a second view)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of a robust summary folder, by file stem."""
        tables = {"futures": self.futures, "outcomes": self.outcomes, "runs": self.runs,
                  "ranking": self.ranking}
        box = getattr(self.discovery, "box", pd.DataFrame())
        if not box.empty:
            tables["box"] = box.astype({"low": str, "high": str, "full_low": str,
                                        "full_high": str})  # dates and numbers in one column
            tables["peeling"] = self.discovery.trajectory
        return tables

    def summary(self) -> dict:
        """What the report reads: the recommendation, its interval, the failing box."""
        top = self.ranking.iloc[0]
        d = self.discovery
        return {
            "scenario": "robust comparison of " + ", ".join(self.strategies),
            "recommended": self.recommended,
            "satisficing_share": float(top.satisficing_share),
            "satisficing_low": float(top.satisficing_low),
            "satisficing_high": float(top.satisficing_high),
            "futures": int(len(self.futures)), "reps": self.reps,
            "strategies": self.strategies, "target": self.target, "coverage": self.coverage,
            "risk_budget": self.budget, "by": self.by.isoformat(),
            "by_months": self.by_months, "capital_share": self.capital_share,
            "risk_measure": "cumulative default at 12 months on book per opened line, pooled "
                            "over the vintages that reached 12 months (the verdict's)",
            "fails_when": list(getattr(d, "rules", ())),
            "box_coverage": getattr(d, "coverage", None),
            "box_density": getattr(d, "density", None),
            "discovery_note": getattr(d, "note", "") or getattr(d, "caution", ""),
            "cart": self.cart,
            "ranking": self.ranking.to_dict(orient="records"),
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        lines = [f"Robustness of {len(self.strategies)} strategies x {len(self.futures)} "
                 f"futures x {self.reps} replications (target {self.target:.0%} "
                 f"{self.coverage} by {self.by}"
                 + (f", risk budget {self.budget:.2%}" if self.budget is not None else "")
                 + ")"]
        for r in self.ranking.itertuples():
            lines.append(f"  {r.strategy}: satisficing {r.satisficing_share:.0%} "
                         f"[{r.satisficing_low:.0%}, {r.satisficing_high:.0%}], regret p90 "
                         f"{r.regret_p90:.1f} months")
        lines.append(f"recommended: {self.recommended}")
        rules = getattr(self.discovery, "rules", ())
        if rules:
            lines.append("  fails when " + "; ".join(rules))
        return "\n".join(lines)


def outcomes(tables: Mapping[str, pd.DataFrame], target: float,
             coverage: str = "invited") -> dict:
    """What a planner judges one run on, from its monthly (``metrics``) and ``vintages``
    tables.

    * ``time_to_target_months``: months from the start until coverage reaches ``target``,
      interpolated linearly between month ends (coverage 0 at the start); inf if never;
    * ``default_12mob_opened``: the risk measure, the verdict's: cumulative default at 12
      months on book per opened line, pooled over the vintages that reached 12 months
      (:func:`sim.analysis.metrics.pooled_default_at`); NaN when none did;
    * ``peak_outstanding`` and ``peak_capital_use`` (peak of outstanding over the capital
      limit), ``capital_bound`` (the limit bound in some month); ``loss`` (charge-off loss)
      and ``net_income`` summed over the run, CNY; ``final_coverage``.
    """
    monthly = tables["metrics"]
    share = monthly[f"{coverage}_share"].to_numpy(dtype=float)
    month = monthly["month"].to_numpy(dtype=float)
    out = {"time_to_target_months": _crossing(month, share, target),
           "final_coverage": float(share[-1]) if share.size else np.nan}
    vintages = tables.get("vintages")
    risk, pooled = np.nan, 0
    if vintages is not None and len(vintages):
        from sim.analysis import metrics

        risk = metrics.pooled_default_at(vintages, 12, "opened")
        pooled = int(len(metrics.at_months_on_book(vintages, 12)))
    out["default_12mob_opened"] = risk
    out["risk_vintages"] = pooled
    peak = float(monthly["outstanding"].max()) if "outstanding" in monthly else np.nan
    limit = float(monthly["capital_limit"].min()) if "capital_limit" in monthly else np.nan
    out["peak_outstanding"] = peak
    out["capital_limit"] = limit
    with np.errstate(divide="ignore", invalid="ignore"):
        use = monthly["outstanding"] / monthly["capital_limit"] \
            if {"outstanding", "capital_limit"} <= set(monthly) else pd.Series([np.nan])
    out["peak_capital_use"] = float(use.max()) if use.notna().any() else np.nan
    out["capital_bound"] = bool(monthly["capital_bound"].any()) \
        if "capital_bound" in monthly else False
    out["loss"] = float(monthly["charge_off_loss"].sum()) \
        if "charge_off_loss" in monthly else np.nan
    out["net_income"] = float(monthly["net_income"].sum()) if "net_income" in monthly \
        else np.nan
    return out


def _crossing(month: np.ndarray, share: np.ndarray, target: float) -> float:
    """The first time ``share`` reaches ``target``, linear between month ends (0 at month 0)."""
    hit = np.flatnonzero(share >= target)
    if not hit.size:
        return float("inf")
    i = int(hit[0])
    m0, s0 = (month[i - 1], share[i - 1]) if i else (0.0, 0.0)
    m1, s1 = month[i], share[i]
    if s1 <= s0:
        return float(m1)
    return float(m0 + (target - s0) / (s1 - s0) * (m1 - m0))


def months_until(start: dt.date, day: dt.date) -> float:
    """Months from ``start`` (a first of month) to the end of ``day``, counting whole months
    and the fraction of the last: the end of the 12th month is 12.0."""
    whole = (day.year - start.year) * 12 + day.month - start.month
    return whole + day.day / calendar.monthrange(day.year, day.month)[1]


def measures(table: pd.DataFrame, *, budget: float | None, by_months: float,
             capital_share: float = 1.0, horizon_months: float) -> pd.DataFrame:
    """Constraint flags and regret per (strategy, future), on per-future ``outcomes``.

    A plan *satisfices* in a future when it reaches the target by ``by_months``, its risk
    measure is at or under ``budget`` (measured: a risk no vintage could show fails the
    budget) and its peak outstanding stays within ``capital_share`` of the capital limit.
    Regret is in months: a plan's time to target (the horizon when it misses the target or
    breaks a limit) less the best plan's in the same future.
    """
    t = table.copy()
    t["reached"] = t["time_to_target_months"] <= by_months
    if budget is None:
        t["within_budget"] = True
    else:
        t["within_budget"] = t["default_12mob_opened"].le(budget)
    cap = t["peak_capital_use"]
    t["within_capital"] = cap.isna() | cap.le(capital_share)
    t["satisficing"] = t["reached"] & t["within_budget"] & t["within_capital"]
    effective = t["time_to_target_months"].where(t["within_budget"] & t["within_capital"],
                                                 np.inf).clip(upper=horizon_months)
    best = effective.groupby(t["future"]).transform("min")
    t["regret_months"] = effective - best
    return t


def ranking(table: pd.DataFrame, strategies: Sequence[str]) -> pd.DataFrame:
    """One row per strategy: satisficing share and its Wilson interval, regret (90th
    percentile, maximum), worst case; most robust first (satisficing share, then lower
    regret, then the strategy's place in the list)."""
    from sim.analysis.stats import wilson_interval

    rows = []
    for order, name in enumerate(strategies):
        mine = table[table.strategy == name]
        n = len(mine)
        share, lo, hi = wilson_interval(float(mine["satisficing"].sum()), n)
        rows.append({
            "strategy": name, "futures": n, "satisficing_share": share,
            "satisficing_low": lo, "satisficing_high": hi,
            "late": int((~mine["reached"]).sum()),
            "over_budget": int((~mine["within_budget"]).sum()),
            "over_capital": int((~mine["within_capital"]).sum()),
            "regret_mean": float(mine["regret_months"].mean()),
            "regret_p90": float(mine["regret_months"].quantile(0.9)),
            "regret_max": float(mine["regret_months"].max()),
            "worst_time_to_target_months": float(mine["time_to_target_months"].max()),
            "median_time_to_target_months": float(mine["time_to_target_months"].median()),
            "worst_default_12mob_opened": float(mine["default_12mob_opened"].max()),
            "worst_peak_capital_use": float(mine["peak_capital_use"].max()),
            "worst_net_income": float(mine["net_income"].min()),
            "order": order,
        })
    out = pd.DataFrame(rows).sort_values(
        ["satisficing_share", "regret_p90", "regret_max", "order"],
        ascending=[False, True, True, True], kind="stable")
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.drop(columns="order").reset_index(drop=True)


# --- running: specs, folders, resume ------------------------------------------------------


def _strategy_names(scenarios: Sequence[Scenario]) -> list[str]:
    names = [s.rollout.name if s.rollout.name else s.name for s in scenarios]
    if len(set(names)) != len(names):
        names = [f"{s.name}:{s.rollout.name}" for s in scenarios]
    if len(set(names)) != len(names):
        raise OptionError("two strategies have the same scenario and rollout name; give "
                          "each a distinct name")
    return names


def _run_dir(root: Path, strategy: int, future: int) -> Path:
    return root / "runs" / f"s{strategy:02d}-f{future:04d}"


def completed(root: Path) -> set[tuple[int, int]]:
    """The (strategy, future) pairs whose folder is complete (they appear atomically)."""
    base = root / "runs"
    if not base.is_dir():
        return set()
    done = set()
    for p in base.iterdir():
        if p.is_dir() and p.name.startswith("s") and "-f" in p.name:
            s, f = p.name[1:].split("-f")
            done.add((int(s), int(f)))
    return done


def run_one(spec: RunSpec) -> RunOutput:
    """One run, sent back with only the tables the outcomes read (a top-level function, so
    that pool and Dask workers can import it)."""
    output = execute_one(spec)
    keep = {k: output.tables[k] for k in ("metrics", "vintages") if k in output.tables}
    return RunOutput(output.labels, keep, {}, None, output.weight)


def inputs_of(scenarios: Sequence[Scenario], uncertainties: Uncertainties, futures: int,
              seed: int, reps: int, quarters: int | None) -> dict:
    """Every input that changes a robust run's results (the resume key's parts)."""
    from sim import __version__

    return {"greysim_version": __version__,
            "scenarios": [s.digest() for s in scenarios],  # users and --set included
            "uncertainties": uncertainties.digest(), "futures": futures, "seed": seed,
            "design": "lhs", "reps": reps, "quarters": quarters}


def key_of(inputs: Mapping) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:12]


def default_root(inputs: Mapping) -> Path:
    """``outputs/robust/robust-<key>``: the same inputs find their folder and resume."""
    return Path("outputs") / "robust" / f"robust-{key_of(inputs)}"


def _check_inputs(root: Path, inputs: dict, futures: pd.DataFrame) -> None:
    """Write the inputs once; a rerun must have the same inputs to resume (never mixes)."""
    from sim.io.folders import OutputError, write_folder

    marker = root / "design" / "design.json"
    if marker.exists():
        found = json.loads(marker.read_text())
        if found.get("key") != key_of(inputs):
            old = found.get("inputs", {})
            differ = [k for k in inputs if old.get(k) != inputs[k]] or ["the inputs"]
            raise OutputError(f"{root} holds a robust comparison of other inputs (they differ "
                              f"in: {', '.join(differ)}); choose another --out, or pass "
                              "--force to start it again")
        return
    write_folder(root / "design", tables={"futures": futures},
                 jsons={"design": {"key": key_of(inputs), "inputs": inputs}},
                 kind="robust-design")


def _write_run(root: Path, s: int, f: int, outputs: list[RunOutput]) -> None:
    from sim.io.folders import write_folder

    tables = {name: pd.concat([o.tables[name] for o in outputs], ignore_index=True)
              for name in outputs[0].tables}
    write_folder(_run_dir(root, s, f), tables=tables, kind="robust-run")


def load_runs(root: Path, names: Sequence[str], target: float, coverage: str) -> pd.DataFrame:
    """:func:`outcomes` of every replication of every complete (strategy, future)."""
    rows = []
    for s, f in sorted(completed(root)):
        folder = _run_dir(root, s, f)
        metrics = pd.read_parquet(folder / "metrics.parquet")
        vpath = folder / "vintages.parquet"
        vintages = pd.read_parquet(vpath) if vpath.exists() else None
        for r, m in metrics.groupby("replication", sort=True):
            v = None if vintages is None else vintages[vintages.replication == r]
            rows.append({"strategy": names[s], "future": f, "replication": int(r),
                         **outcomes({"metrics": m, "vintages": v}, target, coverage)})
    return pd.DataFrame(rows)


def per_future(runs: pd.DataFrame) -> pd.DataFrame:
    """The mean over replications of every outcome (any replication never reaching the
    target makes the future's time to target inf; ``capital_bound`` if any bound)."""
    numeric = [c for c in OUTCOMES if c != "capital_bound"]
    table = runs.groupby(["strategy", "future"], sort=False)[numeric].mean()
    table["capital_bound"] = runs.groupby(["strategy", "future"], sort=False)[
        "capital_bound"].any()
    return table.reset_index()


def robust(scenarios: Sequence[Scenario | str | Path], uncertainties: str | Path | Uncertainties,
           futures: int = 40, *, reps: int = 1, quarters: int | None = None,
           users: int | None = None, overrides: Mapping[str, object] | Sequence[str] = (),
           seed: int | None = None, target: float | None = None, budget: float | None = None,
           by: dt.date | str | None = None, capital_share: float = 1.0,
           coverage: str = "invited", root: str | Path | None = None, force: bool = False,
           executor=None, progress: Callable[[int, int], None] | None = None) -> Robustness:
    """Run every strategy in ``futures`` sampled futures and measure how robust each is.

    ``scenarios`` are strategy files (loaded with ``overrides`` and ``users``) or scenarios;
    ``uncertainties`` an uncertainties file. Futures are a Latin hypercube seeded by ``seed``
    (default: the first scenario's seed); future ``f`` runs every strategy on the same seed,
    the ``f``-th spawned from it, ``reps`` replications each. ``target`` (default the first
    scenario's ``reporting.target_coverage``, else 30%), ``budget`` (the highest acceptable
    risk measure, default none) and ``by`` (the planner's date, default the end of the
    simulated horizon) decide whether a plan satisfices. Finished runs are kept under
    ``root``; rerunning with the same inputs resumes.
    """
    from sim.io.folders import claim_folder

    if coverage not in ("invited", "visible"):
        raise OptionError(f"coverage must be 'invited' or 'visible', got '{coverage}'")
    if reps < 1 or futures < 2:
        raise OptionError(f"a robust comparison needs reps >= 1 and futures >= 2, got reps "
                          f"{reps}, futures {futures}")
    strategies = [s if isinstance(s, Scenario) else load(s, overrides, users) for s in scenarios]
    if not strategies:
        raise OptionError("give at least one strategy")
    if quarters is not None and quarters > min(s.quarters for s in strategies):
        raise OptionError(f"quarters={quarters} is longer than a strategy's horizon")
    first = strategies[0]
    unc = uncertainties if isinstance(uncertainties, Uncertainties) else read(uncertainties,
                                                                              first)
    seed = first.seed if seed is None else int(seed)
    names = _strategy_names(strategies)
    table = unc.sample(futures, seed)
    # every future of every strategy is built (and validated) before any run
    worlds = [[unc.apply(s, row) for row in table.to_dict("records")] for s in strategies]
    inputs = inputs_of(strategies, unc, futures, seed, reps, quarters)
    root = Path(root) if root is not None else default_root(inputs)
    claim_folder(root, "robust", force=force)
    _check_inputs(root, inputs, table)
    _run_missing(root, worlds, names, seed, reps, quarters, executor, progress)

    months = (quarters or min(s.quarters for s in strategies)) * 3
    target, budget, by, notes = _goals(first, target, budget, by, months)
    by_months = months_until(first.start, by)
    runs = load_runs(root, names, target, coverage)
    table_f = measures(per_future(runs), budget=budget, by_months=by_months,
                       capital_share=capital_share, horizon_months=months)
    if table_f["default_12mob_opened"].isna().all():
        notes.append("no vintage reached 12 months on book within the horizon: the risk "
                     "measure is unmeasured, and a risk budget fails every plan")
    ranks = ranking(table_f, names)
    best = str(ranks.iloc[0].strategy)
    from sim.analysis.discovery import prim, tree

    fails = (~table_f[table_f.strategy == best].sort_values("future")["satisficing"]).to_numpy()
    found = prim(table[unc.keys], fails)
    cart = tree(table[unc.keys], fails) if 0 < fails.sum() < len(fails) else ""
    return Robustness(strategies=names, futures=table, outcomes=table_f, runs=runs,
                      ranking=ranks, discovery=found, recommended=best, target=target,
                      coverage=coverage, budget=budget, by=by, by_months=by_months,
                      capital_share=capital_share, reps=reps, root=root, notes=tuple(notes),
                      cart=cart)


def _goals(first: Scenario, target, budget, by, months: int):
    """The target, budget and planner's date: given, else the scenario's reporting keys."""
    from sim.scenario.calendar import add_months

    notes = []
    reporting = first.reporting
    if target is None:
        target = getattr(reporting, "target_coverage", None)
        if target is None:
            target = 0.30
            notes.append("no target given and the scenario sets no reporting.target_coverage: "
                         "30% coverage")
    if budget is None:
        budget = getattr(reporting, "risk_budget", None)
        if budget is None:
            notes.append("no risk budget given (--budget): plans are judged on the target "
                         "and the capital limit only")
    if by is None:
        by = getattr(reporting, "target_date", None) or \
            add_months(first.start, months) - dt.timedelta(days=1)
    if isinstance(by, str):
        try:
            by = dt.date.fromisoformat(by)
        except ValueError:
            raise OptionError(f"the planner's date is YYYY-MM-DD, got '{by}'") from None
    if by <= first.start:
        raise OptionError(f"the planner's date {by} is not after the start {first.start}")
    return float(target), budget, by, notes


def _run_missing(root: Path, worlds: list[list[Scenario]], names: Sequence[str], seed: int,
                 reps: int, quarters: int | None, executor, progress) -> None:
    """Run every (strategy, future) not complete under ``root``: future ``f`` on the ``f``-th
    seed spawned from ``seed`` for every strategy, so strategies share random numbers."""
    from sim.experiments.executors import execute

    seeds = replication_seeds(seed, len(worlds[0]))
    done = completed(root)
    specs = []
    for s, scenarios in enumerate(worlds):
        for f, world in enumerate(scenarios):
            if (s, f) in done:
                continue
            same = world.replace({"seed": seeds[f]})
            specs += [RunSpec(replica, quarters,
                              {"strategy": names[s], "future": f, "replication": r})
                      for r, replica in enumerate(replicate(same, reps))]
    index = {name: s for s, name in enumerate(names)}
    pending: dict[tuple[int, int], dict[int, RunOutput]] = {}

    def collect(_: int, output: RunOutput) -> None:
        key = (index[output.labels["strategy"]], output.labels["future"])
        pending.setdefault(key, {})[output.labels["replication"]] = output
        if len(pending[key]) == reps:
            runs = pending.pop(key)
            _write_run(root, *key, [runs[r] for r in range(reps)])

    if specs:
        execute(run_one, specs, executor, progress, on_result=collect)


def write_summary(result: Robustness, *, charts: bool = True) -> Path:
    """Write ``root/summary``: the tables, ``summary.json`` (what the report reads) and
    ``charts/*.png``, atomically (replacing an earlier summary of the same runs)."""
    from sim.io.folders import write_folder

    def draw(folder: Path) -> None:
        from sim.analysis import charts as ch

        (folder / "charts").mkdir()
        tables = result.tables()
        options = {"budget": result.budget, "by_months": result.by_months}
        for stem, fn, table, keywords in ch.ROBUST_CHARTS:
            if table not in tables:
                continue
            fig = fn(tables[table], **{k: options[k] for k in keywords})
            fig.savefig(folder / "charts" / f"{stem}.png", dpi=110)
        from sim.io.report import REPORT, render_robust

        (folder / REPORT).write_text(render_robust(folder), encoding="utf-8")

    return write_folder(result.root / "summary", kind="robust-summary", force=True,
                        tables=result.tables(), jsons={"summary": result.summary()},
                        finish=draw if charts else None)
