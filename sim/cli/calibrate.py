"""``greysim calibrate``: fit free scenario parameters to observed figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from sim.cli.options import ScenarioArg, err, load_scenario, out, when_interrupted

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


def calibrate_command(
    scenario: ScenarioArg,
    targets: Annotated[list[Path], typer.Option(
        "--targets", help="Targets file (.yaml) or observed monthly figures (.csv, the columns "
        "of metrics.parquet); repeatable.")],
    params: Annotated[list[str] | None, typer.Option(
        "--params", help="Free parameter key=lo:hi (repeatable; default: the targets file's "
        "'params').")] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="Calibrated scenario to write (default: <scenario>.calibrated.yaml "
        "beside the scenario).")] = None,
    budget_evals: Annotated[int | None, typer.Option(
        help="Stop after this many simulation runs.", min=1)] = None,
    budget_minutes: Annotated[float | None, typer.Option(
        help="Stop after this many minutes.", min=0.01)] = None,
    users: Annotated[int | None, typer.Option(
        help="Simulated users per evaluation, standing for the real population.",
        min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every evaluation.", min=0)] = None,
    share_tolerance: Annotated[float, typer.Option(
        help="Tolerance of observed shares from a CSV (absolute).", min=0.0001)] = 0.02,
    count_tolerance: Annotated[float, typer.Option(
        help="Tolerance of observed counts from a CSV (relative).", min=0.0001)] = 0.05,
    check: Annotated[bool, typer.Option(
        help="Only compare the scenario with the targets (exit 1 if any is off); fit "
        "nothing.")] = False,
    validate: Annotated[int | None, typer.Option(
        "--validate", min=1, help="Out-of-sample check: fit on all targets but K at a time "
                                  "and report each left-out target's error (writes nothing).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Fit free scenario parameters to observed figures; write a scenario that extends it."""
    import datetime as dt
    import os

    import yaml
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sim import __version__
    from sim.experiments.calibrate import calibrate, evaluate, nested
    from sim.experiments.calibrate import validate as leave_out
    from sim.experiments.parameters import Parameter
    from sim.io.folders import OutputError, write_text_atomic

    when_interrupted("interrupted; nothing was written")
    sc = load_scenario(scenario, [], users, seed)
    goals, defaults = _read_targets(targets, share_tolerance, count_tolerance, sc)
    free = {p.key: p for p in defaults}
    free.update({p.key: p for p in (Parameter.parse_range(t, str(scenario))
                                    for t in params or [])})
    dest = out_file or scenario.with_name(f"{scenario.stem}.calibrated.yaml")
    if check:
        report = evaluate(sc, goals)
        out.print(fit_table(report, f"{scenario} against {len(goals)} targets"))
        for r in report[~report.within & (report.unmet != "")].itertuples():
            out.print(f"known gap, {r.target}: {r.unmet}", highlight=False)
        raise typer.Exit(0 if (report.within | (report.unmet != "")).all() else 1)
    if validate is not None:
        budget = budget_evals if budget_evals is not None else 200
        table = leave_out(sc, goals, list(free.values()), validate, budget_evals=budget,
                          budget_seconds=None if budget_minutes is None
                          else 60 * budget_minutes)
        # in sample: the scenario as given, fitted to every target (e.g. the shipped baseline)
        inside = evaluate(sc, goals).set_index("target")
        for r in table.itertuples():
            ins = inside.loc[r.target]
            out.print(f"{r.target}: observed {r.observed:.6g}, in sample {ins.simulated:.6g} "
                      f"(error {ins.error:+.3g}), predicted out of sample {r.predicted:.6g} "
                      f"(error {r.error:+.3g}, tolerance {r.tolerance:.3g}"
                      f"{'' if r.within else ', OUTSIDE'})", highlight=False)
        raise typer.Exit(0 if table.within.all() else 1)
    if dest.exists() and not force:
        raise OutputError(f"{dest} already exists; choose another --out, or pass --force")
    budget = budget_evals if budget_evals is not None else (None if budget_minutes else 200)
    seconds = None if budget_minutes is None else 60 * budget_minutes
    with Progress(TextColumn("{task.description}", markup=False, style="bold"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} runs, best {task.fields[best]}"),
                  TimeElapsedColumn(), console=err, transient=True, disable=quiet) as bar:
        task = bar.add_task(f"calibrating {sc.name}", total=budget, best="-")
        fit = calibrate(sc, goals, list(free.values()), budget_evals=budget,
                        budget_seconds=seconds,
                        progress=lambda n, _t, cost: bar.update(task, completed=n,
                                                                best=f"{cost:.4g}"))
    parent = os.path.relpath(scenario.resolve(), dest.resolve().parent)
    within = int(fit.report.within.sum())
    header = (f"# Calibrated by greysim {__version__} on {dt.date.today()}: "
              f"{within} of {len(goals)} targets within tolerance,\n"
              f"# weighted squared distance {fit.cost:.4g} after {fit.evaluations} runs "
              f"of {sc.population.users} users (seed {sc.seed}).\n"
              f"# targets: {', '.join(map(str, targets))}\n")
    body = yaml.safe_dump({"extends": parent, **nested(fit.changed, fit.scenario)},
                          sort_keys=False)
    write_text_atomic(dest, header + body, force=force)
    out.print(fit_table(fit.report, f"{sc.name}: {fit.message} after {fit.evaluations} runs, "
                                    f"{fit.seconds:.0f}s"))
    for key, value in fit.params.items():
        side = fit.at_bound.get(key)
        note = f"   (at its {side} bound: widen it with --params if the fit needs more)"
        out.print(f"  {key} = {value:.6g}{note if side else ''}", highlight=False)
    out.print(f"wrote {dest}")


def _read_targets(paths: list[Path], share_tol: float, count_tol: float, scenario):
    """Targets and default parameters from targets files (.yaml) and observed figures (.csv),
    each file checked against what a run of ``scenario`` can read."""
    import pandas as pd

    from sim.experiments.calibrate import (
        TargetError,
        check_reads,
        last_read,
        parse_targets,
        targets_from_observed,
    )
    from sim.scenario import parse_yaml

    files, params = [], []
    for path in paths:
        if not path.is_file():
            raise TargetError(f"targets file '{path}' does not exist")
        try:
            if path.suffix.lower() == ".csv":
                observed = pd.read_csv(path)
                files.append((path, targets_from_observed(
                    observed, share_tolerance=share_tol, count_tolerance=count_tol,
                    source=str(path))))
            else:
                more, defaults = parse_targets(parse_yaml(path.read_text(encoding="utf-8")),
                                               str(path))
                files.append((path, more))
                params += defaults
        except TargetError:
            raise
        except (ValueError, UnicodeDecodeError) as exc:  # yaml, csv and pydantic errors
            raise TargetError(f"{path}: cannot read targets: {exc}") from None
    targets = [t for _, more in files for t in more]
    if targets:  # each file against the run all of them make: it lasts as the latest needs
        last = last_read(scenario, targets)
        for path, more in files:
            check_reads(scenario, more, str(path), last)
    return targets, params


def fit_table(report: pd.DataFrame, title: str) -> Table:
    """Target / fitted / error per target."""
    from rich.table import Table

    table = Table(title=title)
    for name in ("target", "observed", "fitted", "error", "tolerance", ""):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in report.itertuples():
        table.add_row(r.target, f"{r.observed:.4g}", f"{r.simulated:.4g}", f"{r.error:+.3g}",
                      f"{r.tolerance:.3g}",
                      "ok" if r.within else ("known gap" if r.unmet else Text("off", style="red")))
    return table
