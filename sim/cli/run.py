"""``greysim run``: simulate a scenario and write its run folder, or re-check a recorded one."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from sim.cli.options import (
    NoReportOpt,
    QuietOpt,
    SetOpt,
    billions,
    collector_paused,
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
    from rich.table import Table

    from sim.engine.result import Result
    from sim.scenario import Scenario

#: The two summary tables: (summary key, header, formatter).
COVERAGE_COLUMNS = (
    ("quarter", "Q", str), ("date", "quarter end", str),
    ("eligible_share", "eligible", share), ("invited_share", "invited", share),
    ("visible_share", "visible", share), ("gained_access", "gained", millions),
    ("lost_access", "lost", millions), ("churn_rate", "churn", share),
)
CREDIT_COLUMNS = (
    ("quarter", "Q", str), ("default_rate_12m", "12m default rate", share),
    ("lagged_default_rate", "lagged default", share), ("loss_rate", "loss rate (ann.)", share),
    ("outstanding", "outstanding CNY", billions), ("ecl_allowance", "ECL CNY", billions),
    ("net_income", "net income CNY", billions),
    ("capital_bound_months", "capital-bound months", str),
)


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
    force: Annotated[bool, typer.Option(help="Replace a --out folder that greysim wrote.")] = False,
    quiet: QuietOpt = False,
    no_report: NoReportOpt = False,
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
            raise OptionError(f"--check re-runs a recorded run as it was; it takes no "
                              f"{', '.join(given)}")
        check_command(check, quiet)
        return
    if scenario is None:
        raise OptionError("give a SCENARIO file to run, or --check RUN_DIR to re-run a "
                          "recorded run")
    when_interrupted("interrupted; no run folder was written")
    with collector_paused():  # the imports of the run's libraries, and the scenario's
        from sim.experiments import runs  # noqa: F401  (imported here for the pause)
        from sim.io.cost import check_memory
        from sim.io.folders import check_destination, write_run

        sc = load_scenario(scenario, set_ or [], users, seed)
    if quarters is not None and quarters > sc.quarters:
        raise OptionError(f"--quarters {quarters} is longer than the scenario's horizon of "
                          f"{sc.quarters} quarters (key 'quarters' in {scenario})")

    if out_dir is not None:
        check_destination(out_dir, force)
    with _no_numpy_warnings():
        _warn_large(check_memory(sc, quarters))
        result = _simulate(sc, quarters, quiet)
    what = "writing the run folder" + ("" if no_report else ", its charts and report.html")
    with _status(what, quiet):
        dest = write_run(result, out_dir, force=force,
                         finish=None if no_report else write_report)
    for table in summary_tables(result):
        out.print(table)
    for line in ab_lines(result):
        out.print(line, soft_wrap=True)
    for table in ab_tables(result):
        out.print(table)
    out.print(headline(result))
    for warning in result.summary.get("warnings", []):
        out.print(Text.assemble(("warning:", "bold yellow"), " ", warning), highlight=False,
                  soft_wrap=True)
    out.print(f"wrote {dest}" + ("" if no_report else f" (report: {dest / 'report.html'})"))


def check_command(run_dir: Path, quiet: bool) -> None:
    """``--check``: re-run a recorded run; exit 1 when a table does not reproduce."""
    from sim.experiments.reproduce import check_run

    when_interrupted("interrupted; nothing was checked")
    if quiet:
        rep = check_run(run_dir)
    else:
        with err.status(f"re-running {run_dir}"):
            rep = check_run(run_dir)
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
    """Overflow is reported by the numeric guards with its month and process, not as NumPy
    warnings."""
    import warnings

    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _warn_large(need) -> None:
    """Before a large run, say what it will cost (``check_memory`` refused one that cannot
    fit, from the same estimate)."""
    from sim.io import cost

    if need.total > cost.WARN_BYTES:
        err.print(Text.assemble(("warning:", "yellow"),
                                f" {need.users:,} simulated users need about "
                                f"{need.total / 1e9:.1f} GB of memory and {need.seconds:.0f} s "
                                "(estimate)"), highlight=False, soft_wrap=True)


@contextmanager
def _status(what: str, quiet: bool):
    """A spinner line on stderr while files are written (nothing with ``--quiet``)."""
    if quiet:
        yield
        return
    with err.status(Text(what), spinner="dots"):
        yield


def _simulate(sc: Scenario, quarters: int | None, quiet: bool) -> Result:
    from sim.experiments.runs import run

    if quiet:
        return run(sc, quarters=quarters)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}", markup=False, style="bold"), BarColumn(),
                  TextColumn("month {task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task(f"simulating {sc.name}", total=3 * (quarters or sc.quarters))
        return run(sc, quarters=quarters,
                   progress=lambda month, total: bar.update(task, completed=month))


def _table(title: str, rows: list[dict], columns) -> Table | None:
    from rich.table import Table

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


def ab_tables(result: Result) -> list[Table]:
    """With A/B arms: one row per arm (users, invited, default rates, holdout with its
    interval), then each arm's differences to the control with their 95% intervals."""
    ab = result.summary.get("ab")
    if not ab:
        return []
    from rich.table import Table

    arms = Table(title="A/B arms (simulated users)", title_justify="left")
    for header in ("arm", "users", "ever invited", "default rate / invited",
                   "defaults / assigned user", "holdout default rate (95% CP)"):
        arms.add_column(header, justify="left" if header == "arm" else "right")
    for name, a in ab["arms"].items():
        h = a["holdout"]
        hold = "" if not h["users"] else (
            f"{h['default_users']}/{h['users']} = {_opt(h['default_rate'])} "
            f"({_opt(h['ci_low'])} to {_opt(h['ci_high'])})")
        arms.add_row(name, f"{a['users']:,}", f"{a['ever_invited_users']:,}",
                     _opt(a["default_rate"]), _opt(a["defaults_per_user"]), hold)
    diffs = Table(title=f"A/B differences to '{ab['control']}' ({ab['level']:.0%} intervals; "
                        f"MDE at alpha {ab['alpha']:g}, power {ab['power']:.0%})",
                  title_justify="left")
    for header in ("arm", "figure", "difference", "interval"):
        diffs.add_column(header, justify="left" if header in ("arm", "figure") else "right")
    labels = {"invited_share": "invited share", "default_rate": "default rate / invited",
              "defaults_per_user": "defaults / assigned user (ITT)",
              "loss_per_invited": "loss CNY / invited"}
    for name, a in ab["arms"].items():
        vs = a.get("vs_control")
        if not vs:
            continue
        for key, label in labels.items():
            d = vs[key]
            money = key == "loss_per_invited"
            f = (lambda x: f"{x:+.2f}") if money else (lambda x: f"{x:+.3%}")
            diffs.add_row(name, label, "" if d["diff"] is None else f(d["diff"]),
                          "" if d["ci_low"] is None else f"{f(d['ci_low'])} to {f(d['ci_high'])}")
        diffs.add_row(name, "detectable default-rate rise (real / simulated arms)",
                      _opt(vs["mde_default_rate"], 4), _opt(vs["mde_default_rate_simulated"], 4))
    return [arms, diffs]


def ab_lines(result: Result) -> list[Text]:
    """The sample-ratio checks, one line each; a mismatch in red."""
    ab = result.summary.get("ab")
    if not ab:
        return []
    srm = ab["srm"]
    lines = []
    checks = [("assignment", srm["assignment"]), *srm["exposure"].items()]
    for kind, entry in checks:
        p = entry["p_value"]
        flag = ("SRM MISMATCH", "bold red") if entry["mismatch"] else ("ok", "green")
        lines.append(Text.assemble("sample ratio (", kind, f"): {entry['counts']} against "
                                   f"{srm['shares']}, p = ",
                                   "n/a" if p is None else f"{p:.3g}", " ", flag))
    return lines


def _opt(x, digits: int = 2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}%"


def headline(result: Result) -> str:
    """One line: score quality, final coverage, credit figures and wall time."""
    s = result.summary
    text = (f"score AUC {s['score_auc']:.3f} over {s['score_auc_horizon_months']} months; "
            f"final coverage: invited {share(s['final']['invited_share'])}, "
            f"visible {share(s['final']['visible_share'])}; {s['batches']} batches")
    credit = s.get("credit")
    if credit:
        text += (f"; annualised default rate {share(credit['annualised_default_rate'])}, "
                 f"loss rate {share(credit['annualised_loss_rate'])}, net income "
                 f"{billions(credit['net_income'])} CNY; wrongly blocked "
                 f"{share(credit['wrongly_blocked_share'])}")
    return text + f"; {result.wall_seconds:.1f}s"
