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
           "peak_outstanding": billions, "quarters_to_target": lambda x: f"{x:.2f}"}


def compare_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Two or more scenario files.")],
    reps: Annotated[int, typer.Option(help="Replications per strategy.", min=1)] = 5,
    users: UsersOpt = None,
    quarters: QuartersOpt = None,
    target: Annotated[float, typer.Option(help="Coverage target (share of population).",
                                          min=0.0, max=1.0)] = 0.30,
    coverage: CoverageOpt = "invited",
    max_default_rate: Annotated[float | None, typer.Option(
        help="Default budget: highest acceptable 12-month default rate.", min=0.0,
        max=1.0)] = None,
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder to write.")] = None,
    force: Annotated[bool, typer.Option(help="Replace a --out folder that greysim wrote.")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
) -> None:
    """Compare strategies on common random numbers: intervals, paired differences, verdict."""
    from sim.experiments.compare import compare
    from sim.io.cost import check_memory
    from sim.io.folders import check_destination, new_run_id, write_folder

    when_interrupted("interrupted; nothing was written")
    check_coverage(coverage)
    if len(scenarios) < 2:
        raise OptionError("compare needs at least two scenario files")
    loaded = [load_scenario(p, set_ or [], users) for p in scenarios]
    for sc in loaded:  # each run must fit (a worker holds one run at a time)
        check_memory(sc, quarters)
    if quarters is not None and quarters > min(s.quarters for s in loaded):
        raise OptionError(f"--quarters {quarters} is longer than a scenario's horizon")
    dest = out_dir or Path("outputs") / "compare" / new_run_id()
    check_destination(dest, force)
    executor = _executor(workers, scheduler, dask_local, reps * len(loaded))
    with _running("comparing", quiet, executor) as progress:
        result = compare(loaded, reps, target=target, max_default_rate=max_default_rate,
                         coverage=coverage, quarters=quarters, executor=executor,
                         progress=progress)
    write_folder(dest, kind="comparison", force=force, tables=result.tables(),
                 jsons={"summary": {"scenario": "comparison of " + ", ".join(result.strategies),
                                    "verdict": result.verdict, "target": target,
                                    "coverage": coverage, "max_default_rate": max_default_rate,
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
    out.print(Text.assemble(("verdict:", "bold"), " ", result.verdict))
    out.print(f"wrote {dest}")


def sweep_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", help="key=v1,v2,... (repeatable; the full factorial is run).")] = None,
    sample: Annotated[str | None, typer.Option(
        help="lhs:N for a Latin hypercube of N points over the --range keys.")] = None,
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

    check_coverage(coverage)
    base = load_scenario(scenario, set_ or [], users)
    check_memory(base, quarters)
    design = _design(grid, sample, ranges, base.seed)
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
    out.print(_sensitivity_table(result.sensitivity))
    report = "" if no_report else f" (report: {root / 'summary' / 'report.html'})"
    out.print(f"{len(design.points)} points x {reps} replications; wrote {root}{report}")


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
    if kind != "lhs" or not n.isdigit() or int(n) < 2:
        raise OptionError(f"--sample takes lhs:N with N >= 2, got '{sample}'")
    return sweep.design_of(ranges=ranges or [], samples=int(n), seed=seed)


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


def _span(metric: str, low: float, high: float) -> str:
    lo, hi = _fmt(metric, low), _fmt(metric, high)
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
                       f"difference to '{first}'", "95% interval"):
            table.add_column(header, justify="right" if header != "metric" else "left")
        for r in rows.itertuples():
            table.add_row(r.metric.replace("_", " "), _fmt(r.metric, r.mean),
                          _span(r.metric, r.ci_low, r.ci_high),
                          "" if name == first else _fmt(r.metric, r.diff),
                          "" if name == first else _span(r.metric, r.diff_ci_low, r.diff_ci_high))
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

    view = Table(title="sensitivity: which assumptions move each output (first-order share "
                       "of variance; Spearman sign)", title_justify="left")
    for header in ("output", "parameter", "first order", "spearman"):
        view.add_column(header, justify="left" if header in ("output", "parameter") else "right")
    for r in table.itertuples():
        view.add_row(r.output, r.parameter,
                     "" if math.isnan(r.first_order) else f"{r.first_order:.2f}",
                     f"{r.spearman:+.2f}")
    return view
