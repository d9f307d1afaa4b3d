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
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .engine import Result, run
from .guards import NumericError, ResourceError, check_memory
from .output import OutputError, write_run
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
    scenario: Annotated[Path | None, typer.Argument(
        help="Scenario YAML file.", show_default=False)] = None,
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
    check: Annotated[Path | None, typer.Option(
        "--check", help="Re-run the run recorded in RUN_DIR and report whether every table "
        "reproduces byte for byte (exit 0: yes, 1: no).", metavar="RUN_DIR")] = None,
) -> None:
    """Simulate a scenario and write its tables, summary and manifest."""
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
            from .output import check_destination

            check_destination(out_dir, force)
        with _no_numpy_warnings():
            check_memory(sc, quarters)
            result = _simulate(sc, quarters, quiet)
        dest = write_run(result, out_dir, force=force)
    except (ScenarioError, UserError, OutputError, ResourceError, NumericError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt as exc:
        done = getattr(exc, "dest", None)
        _fail(f"interrupted after writing {done}" if done else
              "interrupted; no run folder was written", 130)
    out.print(summary_table(result))
    s = result.summary
    out.print(f"score AUC {s['score_auc']:.3f} over {s['score_auc_horizon_months']} months; "
              f"final coverage: invited {_share(s['final']['invited_share'])}, "
              f"visible {_share(s['final']['visible_share'])}; "
              f"{s['batches']} batches; {result.wall_seconds:.1f}s")
    out.print(f"wrote {dest}")


def _check_command(run_dir: Path, quiet: bool) -> None:
    from .reproduce import check_run

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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
