"""``greysim compare`` and ``greysim sweep``: many runs from the command line.

Registered on the main app by :mod:`sim.cli`; thin over :mod:`sim.experiment` and
:mod:`sim.sweep`.
"""

from __future__ import annotations

import hashlib
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.cli.app import SetOpt, UserError, _cny, _fail, _load, _share, _users, app, err, out
from sim.experiments import runs as experiment
from sim.experiments import sweep
from sim.io.cost import ResourceError, check_memory
from sim.io.folders import OutputError, check_destination, new_run_id, write_folder
from sim.model.numeric import NumericError
from sim.scenario import ScenarioError, keys

WorkersOpt = Annotated[int | None, typer.Option(
    help="Worker processes (default: the machine's cores; 1 runs in this process).", min=1)]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://host:8786, to run on a cluster.")]
DaskLocalOpt = Annotated[int | None, typer.Option(
    "--dask-local", help="Start a local Dask cluster with this many workers.", min=1)]
CoverageOpt = Annotated[str, typer.Option(
    help="Coverage the target applies to: invited or visible.")]
QuietOpt = Annotated[bool, typer.Option(help="No progress bar.")]
UsersOpt = Annotated[int | None, typer.Option(
    help="Simulated users, standing for the real population (the weight scales).", min=1)]
QuartersOpt = Annotated[int | None, typer.Option(help="Simulate the first Q quarters.", min=1)]
NoReportOpt = Annotated[bool, typer.Option("--no-report",
                                           help="Skip the charts and report.html.")]


def _executor(workers, scheduler, dask_local, runs: int):
    if scheduler is None and dask_local is None and workers is None and runs <= 1:
        return experiment.InProcess()
    try:
        return experiment.make_executor(workers, scheduler, dask_local)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(
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
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn(),
                       console=err, transient=True)
        task = bar.add_task(label, total=None)
        bar.start()
        yield lambda done, total: bar.update(task, completed=done, total=total)
    finally:
        if bar is not None:
            bar.stop()
        executor.close()


def _check_coverage(coverage: str) -> None:
    if coverage not in ("invited", "visible"):
        raise UserError(f"--coverage must be 'invited' or 'visible', got '{coverage}'")


FORMATS = {"default_rate_12m": _share, "loss_rate": _share, "net_income": _cny,
           "peak_outstanding": _cny, "quarters_to_target": lambda x: f"{x:.2f}"}


def _fmt(metric: str, x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "never"
    return FORMATS.get(metric, _share)(x)


def _span(metric: str, low: float, high: float) -> str:
    lo, hi = _fmt(metric, low), _fmt(metric, high)
    return f"{lo} to {hi}" if lo and hi else ""


def strategy_tables(summary: pd.DataFrame) -> list[Table]:
    """One table per strategy: each metric's mean, 95% interval and paired difference."""
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


@app.command("compare")
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
    force: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
) -> None:
    """Compare strategies on common random numbers: intervals, paired differences, verdict."""
    try:
        _check_coverage(coverage)
        if len(scenarios) < 2:
            raise UserError("compare needs at least two scenario files")
        loaded = [_load(p, set_ or [], users) for p in scenarios]
        for sc in loaded:  # each run must fit (a worker holds one run at a time)
            check_memory(sc, quarters)
        if quarters is not None and quarters > min(s.quarters for s in loaded):
            raise UserError(f"--quarters {quarters} is longer than a scenario's horizon")
        dest = out_dir or Path("outputs") / "compare" / new_run_id()
        check_destination(dest, force)
        executor = _executor(workers, scheduler, dask_local, reps * len(loaded))
        with _running("comparing", quiet, executor) as progress:
            outputs, per_run, summary, verdict = experiment.compare(
                loaded, reps, target=target, max_default_rate=max_default_rate,
                coverage=coverage, quarters=quarters, executor=executor, progress=progress)
        swaps = experiment.swap_sets(outputs)
        write_folder(dest, force=force, tables={
            "runs": per_run, "comparison": summary, "swap_set": swaps,
            "metrics": experiment.concat(outputs, "metrics"),
            **({"vintages": experiment.concat(outputs, "vintages")}
               if "vintages" in outputs[0].tables else {}),
        }, jsons={"summary": {"scenario": "comparison of " + ", ".join(
                                  dict.fromkeys(per_run.strategy)),
                              "verdict": verdict, "target": target, "coverage": coverage,
                              "max_default_rate": max_default_rate, "reps": reps,
                              "strategies": list(dict.fromkeys(per_run.strategy))},
                  "manifest": _manifest(scenarios, loaded, reps, quarters)},
                     finish=None if no_report else _write_report)
    except (ScenarioError, UserError, OutputError, ResourceError, NumericError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    for table in strategy_tables(summary):
        out.print(table)
    for table in swap_tables(swaps, summary.strategy.iloc[0]):
        out.print(table)
    out.print(f"[bold]verdict:[/] {verdict}")
    out.print(f"wrote {dest}")


def swap_tables(swaps: pd.DataFrame, champion: str) -> list[Table]:
    """The swap set of each challenger against the champion (mean over replications)."""
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
            table.add_row(names.get(r.cell, r.cell), _users(r.accounts),
                          _fmt("default_rate_12m", r.default_rate_champion),
                          _fmt("default_rate_12m", r.default_rate_challenger),
                          _fmt("default_rate_12m", r.latent_pd_12m))
        tables.append(table)
    return tables


def _write_report(folder: Path) -> None:
    from sim.io.report import write_report

    write_report(folder)


def _manifest(paths, scenarios, reps, quarters) -> dict:
    from sim import __version__

    return {"greysim_version": __version__, "reps": reps, "quarters": quarters,
            "scenario": scenarios[0].model_dump(mode="json"),
            "scenarios": [{"file": str(p), "name": s.name, "strategy": s.rollout.name,
                           "digest": s.digest(), "seed": s.seed,
                           "scenario": s.model_dump(mode="json")}
                          for p, s in zip(paths, scenarios, strict=True)]}


@app.command("sweep")
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
    force: Annotated[bool, typer.Option(help="Discard an existing sweep folder.")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
) -> None:
    """Run a scenario over a grid or a Latin hypercube; resume an interrupted sweep."""
    try:
        _check_coverage(coverage)
        base = _load(scenario, set_ or [], users)
        check_memory(base, quarters)
        design = _design(grid, sample, ranges, base.seed)
        overrides = keys.parse_assignments(set_ or [], str(scenario))
        if users:
            overrides.update({"population.users": users,
                              "population.weight": base.population.weight})
        key = hashlib.sha256(f"{base.digest()}:{design.digest()}:{reps}:{quarters}:"
                             f"{target}:{coverage}".encode()).hexdigest()[:12]
        root = out_dir or Path("outputs") / base.name / f"sweep-{key}"
        if force and root.exists():
            import shutil

            shutil.rmtree(root)
        done = len(sweep.completed_points(root))
        if done:
            err.print(f"resuming {root}: {done} of {len(design.points)} points already complete")
        runs = (len(design.points) - done) * reps
        executor = _executor(workers, scheduler, dask_local, runs)
        with _running("sweeping", quiet, executor) as progress:
            results = sweep.run_sweep(scenario, design, root, reps=reps, quarters=quarters,
                                      overrides=overrides, target=target, coverage=coverage,
                                      executor=executor, progress=progress)
        table = sweep.sensitivity(results, design)
        write_folder(root / "summary", force=True,
                     tables={"results": results, "sensitivity": table,
                             "comparison": table,  # shown as the report's table
                             "metrics": sweep.load_metrics(root, design)},
                     jsons={"summary": {"scenario": f"sweep of {base.name} over "
                                                   f"{', '.join(design.keys)}",
                                        "points": len(design.points), "reps": reps,
                                        "design": design.kind, "keys": design.keys,
                                        "target": target},
                            "manifest": {"scenario": base.model_dump(mode="json")}},
                     finish=None if no_report else _write_report)
    except (ScenarioError, UserError, OutputError, ResourceError, NumericError) as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(f"{scenario}: {exc}")
    except KeyboardInterrupt:
        _fail(f"interrupted; the points already complete are kept in {root}; "
              "run the same command again to resume", 130)
    out.print(_sensitivity_table(table))
    report = "" if no_report else f" (report: {root / 'summary' / 'report.html'})"
    out.print(f"{len(design.points)} points x {reps} replications; wrote {root}{report}")


def _design(grid, sample, ranges, seed) -> sweep.Design:
    if bool(grid) == bool(sample):
        raise UserError("give either --grid key=v1,v2,... or --sample lhs:N with --range")
    if grid:
        return sweep.grid(grid)
    kind, _, n = sample.partition(":")
    if kind != "lhs" or not n.isdigit() or int(n) < 2:
        raise UserError(f"--sample takes lhs:N with N >= 2, got '{sample}'")
    return sweep.latin_hypercube(ranges or [], int(n), seed)


def _sensitivity_table(table: pd.DataFrame) -> Table:
    view = Table(title="sensitivity: which assumptions move each output (first-order share "
                       "of variance; Spearman sign)", title_justify="left")
    for header in ("output", "parameter", "first order", "spearman"):
        view.add_column(header, justify="left" if header in ("output", "parameter") else "right")
    for r in table.itertuples():
        view.add_row(r.output, r.parameter,
                     "" if math.isnan(r.first_order) else f"{r.first_order:.2f}",
                     f"{r.spearman:+.2f}")
    return view
