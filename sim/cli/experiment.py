"""``greysim compare`` and ``greysim sweep``: many runs from the command line.

Thin over :func:`sim.experiments.compare.compare` and :func:`sim.experiments.sweep.sweep`:
parse the options, pick the executor, call the API, write the folder, print the tables.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from sim.cli.options import (
    CoverageOpt,
    DaskLocalOpt,
    NoReportOpt,
    QuartersOpt,
    QuietOpt,
    SchedulerOpt,
    SetOpt,
    UsersOpt,
    WorkersOpt,
    billions,
    check_coverage,
    err,
    load_scenario,
    millions,
    out,
    share,
    when_interrupted,
    write_report,
)
from sim.errors import OptionError

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

    from sim.experiments.sweep import Design

FORMATS = {"default_rate_12m": share, "loss_rate": share, "net_income": billions,
           "peak_outstanding": billions, "quarters_to_target": lambda x: f"{x:.2f}",
           "days_to_target": lambda x: f"{x:.0f}", "capital_bound_months": lambda x: f"{x:.1f}",
           "vintages_12mob": lambda x: f"{x:.0f}", "capital_use_peak": share}


def compare_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Two or more scenario files.")],
    reps: Annotated[int, typer.Option(help="Replications per strategy.", min=1)] = 5,
    users: UsersOpt = None,
    quarters: QuartersOpt = None,
    target: Annotated[float | None, typer.Option(
        help="Coverage target (share of population); default: the first scenario's "
        "reporting.target_coverage, else 0.30.", min=0.0, max=1.0)] = None,
    coverage: CoverageOpt = "invited",
    max_default_rate: Annotated[float | None, typer.Option(
        help="Risk budget: highest acceptable cumulative default at 12 months on book per "
        "opened line (docs/decisions.md); default: reporting.max_default_rate.", min=0.0,
        max=1.0)] = None,
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder to write.")] = None,
    force: Annotated[bool, typer.Option(help="Replace a --out folder that greysim wrote.")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
    independent: Annotated[bool, typer.Option(
        "--independent", help="Give each strategy its own seeds (no common random numbers), "
        "to see how much wider the paired intervals are.")] = False,
) -> None:
    """Compare strategies on common random numbers: intervals, paired differences, verdict."""
    from sim.experiments.compare import compare, strategy_labels
    from sim.io.cost import check_memory
    from sim.io.folders import check_destination, new_run_id, write_folder

    when_interrupted("interrupted; nothing was written")
    check_coverage(coverage)
    if len(scenarios) < 2:
        raise OptionError("compare needs at least two scenario files")
    loaded = [load_scenario(p, set_ or [], users) for p in scenarios]
    strategy_labels(loaded, [str(p) for p in scenarios])  # one label each, before any run
    runs = reps * len(loaded)
    for sc in loaded:  # a run in each worker, and every finished run kept until the end
        check_memory(sc, quarters, runs=runs, workers=_workers(workers, scheduler, dask_local,
                                                               runs))
    if quarters is not None and quarters > min(s.quarters for s in loaded):
        raise OptionError(f"--quarters {quarters} is longer than a scenario's horizon")
    dest = out_dir or Path("outputs") / "compare" / new_run_id()
    check_destination(dest, force)
    executor = _executor(workers, scheduler, dask_local, reps * len(loaded))
    with _running("comparing", quiet, executor) as progress:
        result = compare(loaded, reps, target=target, max_default_rate=max_default_rate,
                         coverage=coverage, quarters=quarters, executor=executor,
                         progress=progress, common_random_numbers=not independent)
    write_folder(dest, kind="comparison", force=force, tables=result.tables(),
                 jsons={"summary": {"scenario": "comparison of " + ", ".join(result.strategies),
                                    "verdict": result.verdict.text,
                                    "decision": result.verdict.to_dict(),
                                    "target": result.target, "coverage": coverage,
                                    "max_default_rate": result.max_default_rate,
                                    "reps": reps, "strategies": result.strategies,
                                    "notes": list(result.notes)},
                        "manifest": _manifest(scenarios, loaded, reps, quarters)},
                 finish=None if no_report else write_report)
    for table in strategy_tables(result.summary):
        out.print(table)
    for table in swap_tables(result.swap_sets, result.strategies[0]):
        out.print(table)
    for note in result.notes:
        out.print(Text.assemble(("note:", "yellow"), " ", note))
    print_verdict(result.verdict)
    out.print(f"wrote {dest}")


def print_verdict(verdict) -> None:
    """The verdict, each strategy's reason and the warnings, as plain text."""
    for warning in verdict.warnings:
        out.print(Text.assemble(("warning:", "bold yellow"), " ", warning), soft_wrap=True)
    for name, reason in verdict.reasons.items():
        role = ("winner" if name == verdict.winner else
                "runner-up" if name == verdict.runner_up else "")
        out.print(Text.assemble(("  " + name, "bold"), f" ({role})" if role else "", ": ",
                                reason), soft_wrap=True)
    out.print(Text.assemble(("verdict:", "bold"), " ", verdict.text), soft_wrap=True)


def sweep_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", help="key=v1,v2,... (repeatable; the full factorial is run).")] = None,
    sample: Annotated[str | None, typer.Option(
        help="lhs:N for a Latin hypercube of N points over the --range keys, or sobol:N "
             "for Saltelli's sample of N base samples (a power of two, at least 16).")
    ] = None,
    ranges: Annotated[list[str] | None, typer.Option(
        "--range", help="key=lo:hi for --sample (repeatable).")] = None,
    reps: Annotated[int, typer.Option(help="Replications per point.", min=1)] = 1,
    users: UsersOpt = None,
    quarters: QuartersOpt = None,
    target: Annotated[float, typer.Option(help="Coverage target for quarters-to-target.",
                                          min=0.0, max=1.0)] = 0.30,
    coverage: CoverageOpt = "invited",
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Sweep folder (default: derived from the sweep, so a rerun resumes).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Discard a sweep folder that greysim wrote.")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
) -> None:
    """Run a scenario over a grid or a Latin hypercube; resume an interrupted sweep."""
    from sim.experiments import sweep
    from sim.io.cost import check_memory
    from sim.io.folders import claim_folder, write_folder
    from sim.scenario import keys

    when_interrupted("interrupted; nothing was written")
    check_coverage(coverage)
    base = load_scenario(scenario, set_ or [], users)
    design = _design(grid, sample, ranges, base.seed)
    runs = len(design.points) * reps
    check_memory(base, quarters, runs=runs, workers=_workers(workers, scheduler, dask_local,
                                                             runs))
    if len(design.points) > 100 and not quiet:
        err.print(f"checking the scenario of each of {len(design.points):,} points ...")
    overrides = keys.parse_assignments(set_ or [], str(scenario))
    if users:
        overrides.update({"population.users": users,
                          "population.weight": base.population.weight})
    root = out_dir or sweep.sweep_root(base, design, reps, quarters, target, coverage)
    claim_folder(root, "sweep", force=force)  # --force discards only a greysim sweep
    done = len(sweep.completed_points(root))
    if done:
        err.print(f"resuming {root}: {done} of {len(design.points)} points already complete")
    when_interrupted(f"interrupted; the points already complete are kept in {root}; "
                     "run the same command again to resume")
    executor = _executor(workers, scheduler, dask_local, (len(design.points) - done) * reps)
    with _running("sweeping", quiet, executor) as progress:
        result = sweep.sweep(scenario, design, root=root, reps=reps, quarters=quarters,
                             overrides=overrides, target=target, coverage=coverage,
                             executor=executor, progress=progress)
    write_folder(root / "summary", kind="sweep-summary", force=True, tables=result.tables(),
                 jsons={"summary": {"scenario": f"sweep of {base.name} over "
                                               f"{', '.join(design.keys)}",
                                    "points": len(design.points), "reps": reps,
                                    "design": design.kind, "keys": design.keys,
                                    "target": target},
                        "manifest": {"scenario": base.model_dump(mode="json")}},
                 finish=None if no_report else write_report)
    out.print(point_table(result.results, design))
    if not result.sensitivity.empty:
        out.print(_sensitivity_table(result.sensitivity))
    if reps > 1 and not result.variance.empty:
        out.print(_variance_table(result.variance))
    report = "" if no_report else f" (report: {root / 'summary' / 'report.html'})"
    out.print(f"{len(design.points)} points x {reps} replications; wrote {root}{report}")


def _workers(workers, scheduler, dask_local, runs: int) -> int:
    """Worker processes on this machine the options ask for (a remote cluster: none)."""
    import os

    if scheduler is not None:
        return 1
    if runs <= 1 and workers is None and dask_local is None:
        return 1
    return dask_local or workers or os.cpu_count() or 1


def _executor(workers, scheduler, dask_local, runs: int):
    from sim.experiments.executors import InProcess, make_executor

    if scheduler is None and dask_local is None and workers is None and runs <= 1:
        return InProcess()
    try:
        return make_executor(workers, scheduler, dask_local)
    except (OSError, TimeoutError, ValueError) as exc:
        raise OptionError(
            f"cannot start the executor ({exc}); check --scheduler/--dask-local") from None


@contextmanager
def _running(label: str, quiet: bool, executor):
    """Yield a progress callback over runs (a rich bar unless ``quiet``); close the executor
    at the end whatever happens."""
    bar = None
    try:
        if quiet:
            yield None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(TextColumn("{task.description}", markup=False, style="bold"), BarColumn(),
                       MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn(),
                       console=err, transient=True)
        task = bar.add_task(label, total=None)
        bar.start()
        yield lambda done, total: bar.update(task, completed=done, total=total)
    finally:
        if bar is not None:
            bar.stop()
        executor.close()


def _design(grid, sample, ranges, seed) -> Design:
    """The sweep design the options ask for; option names in the messages."""
    from sim.experiments import sweep

    if bool(grid) == bool(sample):
        raise OptionError("give either --grid key=v1,v2,... or --sample lhs:N with --range")
    if grid:
        return sweep.design_of(grid_specs=grid)
    kind, _, n = sample.partition(":")
    if kind not in ("lhs", "sobol") or not n.isdigit() or int(n) < 2:
        raise OptionError(f"--sample takes lhs:N or sobol:N with N >= 2, got '{sample}'")
    design = sweep.design_of(ranges=ranges or [], samples=int(n), seed=seed, method=kind)
    sweep.check_points(design)
    return design


def _manifest(paths, scenarios, reps, quarters) -> dict:
    from sim import __version__

    return {"greysim_version": __version__, "reps": reps, "quarters": quarters,
            "scenario": scenarios[0].model_dump(mode="json"),
            "scenarios": [{"file": str(p), "name": s.name, "strategy": s.rollout.name,
                           "digest": s.digest(), "seed": s.seed,
                           "scenario": s.model_dump(mode="json")}
                          for p, s in zip(paths, scenarios, strict=True)]}


def _fmt(metric: str, x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "never"
    return FORMATS.get(metric, share)(x)


def _is_share(metric: str) -> bool:
    return FORMATS.get(metric, share) is share


def _diff(metric: str, x: float) -> str:
    """A paired difference: percentage points for shares and rates, the unit otherwise."""
    if not _is_share(metric) or x is None or not math.isfinite(x):
        return _fmt(metric, x)
    return f"{100 * x:+.2f} pp"


def _span(metric: str, low: float, high: float, fmt=_fmt) -> str:
    lo, hi = fmt(metric, low), fmt(metric, high)
    return f"{lo} to {hi}" if lo and hi else ""


def strategy_tables(summary: pd.DataFrame) -> list[Table]:
    """One table per strategy: each metric's mean, 95% interval and paired difference."""
    from rich.table import Table

    tables = []
    first = summary.strategy.iloc[0]
    quarters = sorted({int(m.rsplit("_q", 1)[1]) for m in summary.metric if "_share_q" in m})
    shown = {q for q in quarters if q % 4 == 0} | {quarters[-1]} if quarters else set()
    keep = [m for m in dict.fromkeys(summary.metric)
            if "_share_q" not in m or int(m.rsplit("_q", 1)[1]) in shown]
    summary = summary[summary.metric.isin(keep)]
    for name, rows in summary.groupby("strategy", sort=False):
        table = Table(title=f"strategy '{name}'", title_justify="left")
        for header in ("metric", "mean", "95% interval",
                       f"difference to '{first}'", "95% interval", "significant (Holm)"):
            table.add_column(header, justify="right" if header != "metric" else "left")
        for r in rows.itertuples():
            table.add_row(r.metric.replace("_", " "), _fmt(r.metric, r.mean),
                          _span(r.metric, r.ci_low, r.ci_high),
                          "" if name == first else _diff(r.metric, r.diff),
                          "" if name == first else _span(r.metric, r.diff_ci_low,
                                                         r.diff_ci_high, _diff),
                          "yes" if getattr(r, "significant", False) else "")
        tables.append(table)
    return tables


def swap_tables(swaps: pd.DataFrame, champion: str) -> list[Table]:
    """The swap set of each challenger against the champion (mean over replications)."""
    from rich.table import Table

    tables = []
    if swaps.empty:
        return tables
    names = {"both": "invited by both", "champion_only": "champion only",
             "challenger_only": "challenger only", "neither": "invited by neither"}
    for name, rows in swaps.groupby("challenger", sort=False):
        table = Table(title=f"swap set: '{champion}' (champion) vs '{name}' (challenger)",
                      title_justify="left")
        for header in ("users", "accounts", "default rate, champion's run",
                       "default rate, challenger's run", "latent 12-month PD"):
            table.add_column(header, justify="right")
        table.columns[0].header = "cell"
        table.columns[0].justify = "left"
        for r in rows.itertuples():
            table.add_row(names.get(r.cell, r.cell), millions(r.accounts),
                          _fmt("default_rate_12m", r.default_rate_champion),
                          _fmt("default_rate_12m", r.default_rate_challenger),
                          _fmt("default_rate_12m", r.latent_pd_12m))
        tables.append(table)
    return tables


#: The sweep's per-point outcomes: (results column, header, formatter).
POINT_COLUMNS = (
    ("invited_share_final", "invited at horizon", share),
    ("visible_share_final", "visible at horizon", share),
    ("quarters_to_target", "quarters to target", lambda x: "never" if math.isinf(x) else
     f"{x:.1f}"),
    ("default_rate_12m", "12m default rate", lambda x: f"{100 * x:.2f}%"),
    ("loss_rate", "loss rate (ann.)", lambda x: f"{100 * x:.2f}%"),
    ("net_income", "net income CNY", billions),
)


def point_table(results: pd.DataFrame, design) -> Table:
    """One row per sweep point: its parameter values and the mean over replications of the
    key outcomes (coverage, quarters to target, default and loss rates, net income)."""
    from rich.table import Table

    reps = int(results.groupby("point").size().max()) if not results.empty else 0
    view = Table(title=f"per point (mean over {reps} replication{'s' if reps != 1 else ''})",
                 title_justify="left")
    cols = [c for c in POINT_COLUMNS if c[0] in results]
    view.add_column("point", justify="right")
    for key in design.keys:
        view.add_column(key.rsplit(".", 1)[-1] if key.count(".") > 1 else key, justify="right")
    for _, header, _ in cols:
        view.add_column(header, justify="right")
    if results.empty:
        return view
    means = results.groupby("point", sort=True)[[c[0] for c in cols]].mean()
    for point, row in means.iterrows():
        params = design.points.iloc[int(point)]
        values = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in params[design.keys]]
        view.add_row(str(point), *values, *("" if math.isnan(row[k]) else fmt(row[k])
                                           for k, _, fmt in cols))
    return view


def _sensitivity_table(table: pd.DataFrame) -> Table:
    from rich.table import Table

    view = Table(title="sensitivity: which assumptions move each output (first-order index "
                       "[95% interval] against a dummy parameter's noise floor; Spearman sign)",
                 title_justify="left")
    for header in ("output", "parameter", "first order", "95% interval", "total",
                   "noise floor", "verdict", "spearman"):
        view.add_column(header, justify="left" if header in ("output", "parameter", "verdict")
                        else "right")

    def num(x) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"

    for r in table.to_dict("records"):
        if r.get("parameter") == "dummy" and r.get("verdict") != "noise floor":
            continue
        lo, hi = num(r.get("first_order_low")), num(r.get("first_order_high"))
        spearman = r.get("spearman", float("nan"))
        view.add_row(r["output"], r["parameter"], num(r.get("first_order")),
                     f"{lo} to {hi}" if lo and hi else "", num(r.get("total")),
                     num(r.get("noise_floor")), r.get("verdict", ""),
                     "" if spearman is None or math.isnan(spearman) else f"{spearman:+.2f}")
    return view


def _variance_table(table: pd.DataFrame) -> Table:
    from rich.table import Table

    view = Table(title="simulation noise: variance between points and between a point's "
                       "replications", title_justify="left")
    for header in ("output", "between points", "within a point", "noise share"):
        view.add_column(header, justify="left" if header == "output" else "right")
    for r in table.itertuples():
        view.add_row(r.output, f"{r.between_point_variance:.4g}",
                     f"{r.within_point_variance:.4g}",
                     "" if math.isnan(r.noise_share) else f"{r.noise_share:.0%}")
    return view
