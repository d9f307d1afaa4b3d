"""The ``greysim`` command: thin wrappers over the Python API.

Every user error (a bad scenario, a bad option, an output folder that would be overwritten)
prints one clear paragraph and exits with code 2; Ctrl-C exits with 130. No traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .engine import Result, run
from .output import OutputError, default_destination, write_run
from .scenario import Scenario, ScenarioError, load

app = typer.Typer(
    help="Plan the grey release of an invitation-only credit line.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)
# Not a terminal (CI, pipes): wide enough for the summary table instead of rich's 80.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

HEADERS = {"quarter": "Q", "date": "end", "eligible_share": "eligible", "invited_share": "invited",
           "visible_share": "visible", "gained_access": "gained", "lost_access": "lost",
           "gained_rate": "gained %", "lost_rate": "lost %", "churn_rate": "churn %"}

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key, e.g. --set rollout.phases.0.batch.share=0.05 "
                 "(repeatable)."),
]


class UserError(Exception):
    """An error the user can fix; shown without a traceback, exit code 2."""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(path: Path, overrides: list[str], users: int | None = None,
          seed: int | None = None) -> Scenario:
    extra = list(overrides)
    if users is not None:
        extra.append(f"population.users={users}")
    if seed is not None:
        extra.append(f"seed={seed}")
    return load(path, extra)


def _share(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def _count(x) -> str:
    return "" if x is None else f"{x / 1e6:,.2f}M"


def _format(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if key.endswith(("share", "rate", "_pct")) or key.startswith("default_rate"):
        return _share(value)
    if isinstance(value, float) and abs(value) >= 1e4:
        return _count(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(result: Result) -> Table:
    """Coverage and churn per quarter, and whatever else the summary reports per quarter."""
    rows = result.summary["quarters"]
    table = Table(title=f"{result.scenario.name}: {result.scenario.rollout.name}, "
                        f"seed {result.seed}, {result.summary['users']:,} users "
                        f"x {result.summary['weight']:g}")
    keys = list(rows[0]) if rows else []
    for key in keys:
        table.add_column(HEADERS.get(key, key.replace("_", " ")), justify="right")
    for row in rows:
        table.add_row(*(_format(k, row.get(k)) for k in keys))
    return table


@app.command("run")
def run_command(
    scenario: ScenarioArg,
    users: Annotated[int | None, typer.Option(help="Simulated users (overrides the file).",
                                              min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the file).",
                                             min=0)] = None,
    quarters: Annotated[int | None, typer.Option(
        help="Simulate only the first Q quarters of the scenario.", min=1)] = None,
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Run folder to write (default: outputs/<scenario>/<run-id>).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Simulate a scenario and write its tables, summary and manifest."""
    try:
        sc = _load(scenario, set_ or [], users, seed)
        if quarters is not None and quarters > sc.quarters:
            raise UserError(f"--quarters {quarters} is longer than the scenario's horizon of "
                            f"{sc.quarters} quarters (key 'quarters' in {scenario})")
        if out_dir is not None:
            from .output import check_destination

            check_destination(out_dir, force)
        result = _simulate(sc, quarters, quiet)
        dest = write_run(result, out_dir or default_destination(result), force=force)
    except (ScenarioError, UserError, OutputError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    out.print(summary_table(result))
    s = result.summary
    out.print(f"score AUC {s['score_auc']:.3f} over {s['score_auc_horizon_months']} months; "
              f"final coverage: invited {_share(s['final']['invited_share'])}, "
              f"visible {_share(s['final']['visible_share'])}; "
              f"{s['batches']} batches; {result.wall_seconds:.1f}s")
    out.print(f"wrote {dest}")


def _simulate(sc: Scenario, quarters: int | None, quiet: bool) -> Result:
    if quiet:
        return run(sc, quarters=quarters)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("month {task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(f"simulating {sc.name}", total=3 * (quarters or sc.quarters))
        return run(sc, quarters=quarters,
                   progress=lambda month, total: bar.update(task, completed=month))


@app.command("validate")
def validate_command(scenario: ScenarioArg, set_: SetOpt = None) -> None:
    """Check a scenario file without running it."""
    try:
        sc = _load(scenario, set_ or [])
    except ScenarioError as exc:
        _fail(str(exc))
    real = sc.population.users * sc.population.weight
    out.print(f"{scenario}: valid. '{sc.name}', {sc.quarters} quarters from {sc.start} to "
              f"{sc.end}, {sc.population.users:,} users standing for {real:,.0f}, "
              f"strategy '{sc.rollout.name}' with {len(sc.rollout.phases)} phases; "
              f"digest {sc.digest()[:12]}")


@app.command("version")
def version_command() -> None:
    """Print the greysim version."""
    out.print(__version__)


def _read_targets(paths: list[Path], share_tol: float, count_tol: float):
    """Targets and default parameters from targets files (.yaml) and observed figures (.csv)."""
    import pandas as pd

    from .calibrate import parse_targets, targets_from_observed
    from .scenario import parse_yaml

    targets, params = [], []
    for path in paths:
        if not path.is_file():
            raise UserError(f"targets file '{path}' does not exist")
        try:
            if path.suffix.lower() == ".csv":
                observed = pd.read_csv(path)
                targets += targets_from_observed(observed, share_tolerance=share_tol,
                                                 count_tolerance=count_tol, source=str(path))
            else:
                more, defaults = parse_targets(parse_yaml(path.read_text(encoding="utf-8")),
                                               str(path))
                targets += more
                params += defaults
        except (ValueError, UnicodeDecodeError) as exc:  # yaml, csv and pydantic errors
            raise UserError(f"{path}: cannot read targets: {exc}") from None
    return targets, params


def fit_table(report, title: str) -> Table:
    """Target / fitted / error per target."""
    table = Table(title=title)
    for name in ("target", "observed", "fitted", "error", "tolerance", ""):
        table.add_column(name, justify="left" if name == "target" else "right")
    for r in report.itertuples():
        table.add_row(r.target, f"{r.observed:.4g}", f"{r.simulated:.4g}", f"{r.error:+.3g}",
                      f"{r.tolerance:.3g}",
                      "ok" if r.within else ("known gap" if r.unmet else "[red]off[/]"))
    return table


@app.command("calibrate")
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
        help="Simulated users per evaluation (overrides the file).", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every evaluation.", min=0)] = None,
    share_tolerance: Annotated[float, typer.Option(
        help="Tolerance of observed shares from a CSV (absolute).", min=0.0001)] = 0.02,
    count_tolerance: Annotated[float, typer.Option(
        help="Tolerance of observed counts from a CSV (relative).", min=0.0001)] = 0.05,
    check: Annotated[bool, typer.Option(
        help="Only compare the scenario with the targets (exit 1 if any is off); fit "
        "nothing.")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Fit free scenario parameters to observed figures; write a scenario that extends it."""
    import datetime as dt
    import os

    import yaml

    from .calibrate import Parameter, TargetError, calibrate, evaluate, nested
    from .output import write_text_atomic

    try:
        sc = _load(scenario, [], users, seed)
        goals, defaults = _read_targets(targets, share_tolerance, count_tolerance)
        free = {p.key: p for p in defaults}
        free.update({p.key: p for p in map(Parameter.parse, params or [])})
        dest = out_file or scenario.with_name(f"{scenario.stem}.calibrated.yaml")
        if check:
            report = evaluate(sc, goals)
            out.print(fit_table(report, f"{scenario} against {len(goals)} targets"))
            for r in report[~report.within & (report.unmet != "")].itertuples():
                out.print(f"known gap, {r.target}: {r.unmet}", highlight=False)
            raise typer.Exit(0 if (report.within | (report.unmet != "")).all() else 1)
        if dest.exists() and not force:
            raise OutputError(f"{dest} already exists; choose another --out, or pass --force")
        budget = budget_evals if budget_evals is not None else (None if budget_minutes else 200)
        seconds = None if budget_minutes is None else 60 * budget_minutes
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} runs, best {task.fields[best]}"),
                      TimeElapsedColumn(), console=err, transient=True,
                      disable=quiet) as bar:
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
        body = yaml.safe_dump({"extends": parent, **nested(fit.changed)}, sort_keys=False)
        write_text_atomic(dest, header + body, force=force)
    except (ScenarioError, UserError, OutputError, TargetError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    out.print(fit_table(fit.report, f"{sc.name}: {fit.message} after {fit.evaluations} runs, "
                                    f"{fit.seconds:.0f}s"))
    for key, value in fit.params.items():
        out.print(f"  {key} = {value:.6g}", highlight=False)
    out.print(f"wrote {dest}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
