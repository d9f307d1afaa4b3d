"""The ``greysim`` command: thin wrappers over the Python API.

Every user error (a bad scenario, a bad option, an output folder that would be overwritten)
prints one clear paragraph and exits with code 2; Ctrl-C exits with 130. No traceback.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim import __version__
from sim.engine.result import Result
from sim.experiments.runs import run
from sim.io.cost import ResourceError, check_memory
from sim.io.folders import OutputError, write_run
from sim.model.numeric import NumericError
from sim.scenario import Scenario, ScenarioError, keys, load

app = typer.Typer(
    help="Plan the grey release of an invitation-only credit line.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
)
# Not a terminal (CI, pipes): wide enough for the summary table instead of rich's 80.
# no emoji codes: a message like "file.yaml:100: ..." must not print as "file.yaml💯 ..."
out = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
err = Console(stderr=True, emoji=False)


ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key, e.g. --set rollout.phases.0.batch.share=0.05 "
                 "(repeatable)."),
]


class UserError(Exception):
    """An error the user can fix; shown without a traceback, exit code 2."""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _load(path: Path, overrides: list[str], users: int | None = None,
          seed: int | None = None) -> Scenario:
    """The scenario with its ``--set key=value`` overrides, ``--users`` and ``--seed``."""
    changes = keys.parse_assignments(overrides, str(path))
    if seed is not None:
        changes["seed"] = seed
    return load(path, changes, users, note="set on the command line")


def _share(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def _users(x) -> str:
    return "" if x is None else f"{x / 1e6:,.2f}M"


def _cny(x) -> str:
    return "" if x is None else f"{x / 1e9:,.2f}bn"


#: The two summary tables: (summary key, header, formatter).
COVERAGE_COLUMNS = (
    ("quarter", "Q", str), ("date", "quarter end", str),
    ("eligible_share", "eligible", _share), ("invited_share", "invited", _share),
    ("visible_share", "visible", _share), ("gained_access", "gained", _users),
    ("lost_access", "lost", _users), ("churn_rate", "churn", _share),
)
CREDIT_COLUMNS = (
    ("quarter", "Q", str), ("default_rate_12m", "12m default rate", _share),
    ("lagged_default_rate", "lagged default", _share), ("loss_rate", "loss rate (ann.)", _share),
    ("outstanding", "outstanding CNY", _cny), ("ecl_allowance", "ECL CNY", _cny),
    ("net_income", "net income CNY", _cny), ("capital_bound_months", "capital-bound months", str),
)


def _table(title: str, rows: list[dict], columns) -> Table | None:
    columns = [c for c in columns if rows and c[0] in rows[0]]
    if len(columns) <= 1:
        return None
    table = Table(title=title, title_justify="left")
    for _, header, _ in columns:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*("" if row.get(k) is None else fmt(row[k]) for k, _, fmt in columns))
    return table


def summary_tables(result: Result) -> list[Table]:
    """Coverage and churn per quarter, then the credit figures per quarter (when present)."""
    s = result.summary
    head = (f"{result.scenario.name} ({result.scenario.rollout.name}), seed {result.seed}, "
            f"{s['users']:,} users x {s['weight']:g}")
    tables = [_table(f"{head}: coverage and re-evaluation churn", s["quarters"],
                     COVERAGE_COLUMNS),
              _table("credit", s["quarters"], CREDIT_COLUMNS)]
    return [t for t in tables if t is not None]


def headline(result: Result) -> str:
    s = result.summary
    text = (f"score AUC {s['score_auc']:.3f} over {s['score_auc_horizon_months']} months; "
            f"final coverage: invited {_share(s['final']['invited_share'])}, "
            f"visible {_share(s['final']['visible_share'])}; {s['batches']} batches")
    credit = s.get("credit")
    if credit:
        text += (f"; annualised default rate {_share(credit['annualised_default_rate'])}, "
                 f"loss rate {_share(credit['annualised_loss_rate'])}, net income "
                 f"{_cny(credit['net_income'])} CNY; wrongly blocked "
                 f"{_share(credit['wrongly_blocked_share'])}")
    return text + f"; {result.wall_seconds:.1f}s"


@app.command("run")
def run_command(
    scenario: Annotated[Path | None, typer.Argument(
        help="Scenario YAML file.", show_default=False)] = None,
    users: Annotated[int | None, typer.Option(
        help="Simulated users, standing for the real population (the weight scales).",
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
    no_report: Annotated[bool, typer.Option(
        "--no-report", help="Skip the charts and report.html.")] = False,
    check: Annotated[Path | None, typer.Option(
        "--check", help="Re-run the run recorded in RUN_DIR and report whether every table "
        "reproduces byte for byte (exit 0: yes, 1: no).", metavar="RUN_DIR")] = None,
) -> None:
    """Simulate a scenario and write its tables, summary, manifest, charts and report."""
    if check is not None:
        given = [o for o, v in (("SCENARIO", scenario), ("--users", users), ("--seed", seed),
                                ("--quarters", quarters), ("--set", set_), ("--out", out_dir))
                 if v]
        if given:
            _fail(f"--check re-runs a recorded run as it was; it takes no {', '.join(given)}")
        _check_command(check, quiet)
        return
    if scenario is None:
        _fail("give a SCENARIO file to run, or --check RUN_DIR to re-run a recorded run")
    dest = None
    try:
        sc = _load(scenario, set_ or [], users, seed)
        if quarters is not None and quarters > sc.quarters:
            raise UserError(f"--quarters {quarters} is longer than the scenario's horizon of "
                            f"{sc.quarters} quarters (key 'quarters' in {scenario})")
        if out_dir is not None:
            from sim.io.folders import check_destination

            check_destination(out_dir, force)
        with _no_numpy_warnings():
            check_memory(sc, quarters)
            _warn_large(sc, quarters)
            result = _simulate(sc, quarters, quiet)
        dest = write_run(result, out_dir, force=force,
                         finish=None if no_report else _write_report)
    except (ScenarioError, UserError, OutputError, ResourceError, NumericError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        done = getattr(exc, "dest", None)
        _fail(f"interrupted after writing {done}" if done else
              "interrupted; no run folder was written", 130)
    for table in summary_tables(result):
        out.print(table)
    out.print(headline(result))
    for warning in result.summary.get("warnings", []):
        out.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    out.print(f"wrote {dest}" + ("" if no_report else f" (report: {dest / 'report.html'})"))


def _write_report(folder: Path) -> None:
    from sim.io.report import write_report

    write_report(folder)


def _check_command(run_dir: Path, quiet: bool) -> None:
    from sim.experiments.reproduce import check_run

    try:
        if quiet:
            rep = check_run(run_dir)
        else:
            with err.status(f"re-running {run_dir}"):
                rep = check_run(run_dir)
    except (ScenarioError, OutputError, ResourceError, NumericError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was checked", 130)
    for name, same in rep.files.items():
        note = "reproduces" if same else "DIFFERS"
        if name in rep.same_values:
            note += " (same values, different bytes)" if rep.same_values[name] else ""
        out.print(f"{name}: {note}", highlight=False)
    versions = ("" if rep.recorded_version == rep.current_version else
                f" (recorded with greysim {rep.recorded_version}, checked with "
                f"{rep.current_version})")
    if rep.ok:
        out.print(f"{run_dir}: reproduces byte for byte{versions}", highlight=False)
        return
    out.print(f"{run_dir}: does NOT reproduce: {', '.join(rep.differing)} differ{versions}",
              highlight=False)
    raise typer.Exit(1)


@contextmanager
def _no_numpy_warnings():
    """Overflow is reported by sim.guards with its month and process, not as NumPy warnings."""
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _warn_large(sc: Scenario, quarters: int | None) -> None:
    """Before a large run, say what it will cost (``check_memory`` refuses one that cannot
    fit)."""
    from sim.io.cost import WARN_BYTES, estimate

    users = sc.population.users
    need = estimate(users, 3 * (quarters or sc.quarters))
    if need["bytes"] > WARN_BYTES:
        err.print(f"[yellow]warning:[/] {users:,} simulated users need about "
                  f"{need['bytes'] / 1e9:.1f} GB of memory and {need['seconds']:.0f} s "
                  "(estimate)", highlight=False, soft_wrap=True)


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
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    real = sc.population.users * sc.population.weight
    out.print(f"{scenario}: valid. '{sc.name}', {sc.quarters} quarters from {sc.start} to "
              f"{sc.end}, {sc.population.users:,} users standing for {real:,.0f}, "
              f"strategy '{sc.rollout.name}' with {len(sc.rollout.phases)} phases; "
              f"digest {sc.digest()[:12]}")


@app.command("version")
def version_command() -> None:
    """Print the greysim version."""
    out.print(__version__)


@app.command("report")
def report_command(
    folder: Annotated[Path, typer.Argument(help="A run or comparison folder.",
                                           show_default=False)],
) -> None:
    """Write the charts and one self-contained report.html of a run or comparison folder."""
    from sim.io.report import ReportError, write_report

    try:
        path = write_report(folder)
    except ReportError as exc:
        _fail(str(exc))
    out.print(f"wrote {path}")


def _read_targets(paths: list[Path], share_tol: float, count_tol: float):
    """Targets and default parameters from targets files (.yaml) and observed figures (.csv)."""
    import pandas as pd

    from sim.experiments.calibrate import parse_targets, targets_from_observed
    from sim.scenario import parse_yaml

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
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Fit free scenario parameters to observed figures; write a scenario that extends it."""
    import datetime as dt
    import os

    import yaml

    from sim.experiments.calibrate import TargetError, calibrate, evaluate, nested
    from sim.experiments.parameters import Parameter
    from sim.io.folders import write_text_atomic

    try:
        sc = _load(scenario, [], users, seed)
        goals, defaults = _read_targets(targets, share_tolerance, count_tolerance)
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
        body = yaml.safe_dump({"extends": parent, **nested(fit.changed, fit.scenario)},
                              sort_keys=False)
        write_text_atomic(dest, header + body, force=force)
    except (ScenarioError, UserError, OutputError, TargetError, ResourceError,
            NumericError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    out.print(fit_table(fit.report, f"{sc.name}: {fit.message} after {fit.evaluations} runs, "
                                    f"{fit.seconds:.0f}s"))
    for key, value in fit.params.items():
        side = fit.at_bound.get(key)
        note = f"   (at its {side} bound: widen it with --params if the fit needs more)"
        out.print(f"  {key} = {value:.6g}{note if side else ''}", highlight=False)
    out.print(f"wrote {dest}")


# Commands over many runs live in their own module; importing it registers them on `app`.
from sim.cli import experiment as _experiment  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    # Run through the package module so commands registered on `sim.cli.app` are present.
    from sim.cli.app import main as entry

    entry()
