"""``greysim robust``: every strategy across sampled futures, and where the best one fails.

Thin over :func:`sim.experiments.robust.robust`: parse the options, pick the executor, call
the API, write the summary folder, print the ranking and the failing box.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from sim.cli.options import (
    CoverageOpt,
    DaskLocalOpt,
    QuartersOpt,
    QuietOpt,
    SchedulerOpt,
    SetOpt,
    UsersOpt,
    WorkersOpt,
    check_coverage,
    err,
    load_scenario,
    out,
    when_interrupted,
)
from sim.errors import OptionError


def robust_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Strategy scenario files.")],
    uncertainties: Annotated[Path, typer.Option(
        help="Uncertainties file: scenario keys with ranges (scenarios/uncertainties/).")],
    futures: Annotated[int, typer.Option(help="Futures to sample (Latin hypercube).",
                                         min=2)] = 40,
    reps: Annotated[int, typer.Option(help="Replications per strategy and future.",
                                      min=1)] = 1,
    users: UsersOpt = None,
    quarters: QuartersOpt = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of the futures (default: the first scenario's seed).")] = None,
    target: Annotated[float | None, typer.Option(
        help="Coverage target (default: reporting.target_coverage, else 0.30).",
        min=0.0, max=1.0)] = None,
    budget: Annotated[float | None, typer.Option(
        help="Risk budget: highest acceptable default at 12 months on book per opened line, "
             "the verdict's measure (default: none).", min=0.0, max=1.0)] = None,
    by: Annotated[str | None, typer.Option(
        help="Planner's date YYYY-MM-DD by which the target must be met (default: the end "
             "of the simulated horizon).")] = None,
    capital_share: Annotated[float, typer.Option(
        help="Highest acceptable peak outstanding as a share of the capital limit.",
        min=0.0)] = 1.0,
    coverage: CoverageOpt = "invited",
    set_: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder (default: derived from the inputs, so a rerun resumes).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Discard a robust folder that greysim wrote.")
                     ] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    dask_local: DaskLocalOpt = None,
    quiet: QuietOpt = False,
    no_charts: Annotated[bool, typer.Option("--no-charts", help="Skip the charts.")] = False,
) -> None:
    """Run strategies across sampled futures: satisficing share, regret, where the best fails."""
    from sim.cli.experiment import _executor, _running
    from sim.experiments import robust as rb
    from sim.io.cost import check_memory

    check_coverage(coverage)
    loaded = [load_scenario(p, set_ or [], users) for p in scenarios]
    for sc in loaded:
        check_memory(sc, quarters)
    if quarters is not None and quarters > min(s.quarters for s in loaded):
        raise OptionError(f"--quarters {quarters} is longer than a strategy's horizon")
    when_interrupted("interrupted; the runs already complete are kept; run the same command "
                     "again to resume")
    executor = _executor(workers, scheduler, dask_local, futures * reps * len(loaded))
    with _running("running futures", quiet, executor) as progress:
        result = rb.robust(loaded, uncertainties, futures, reps=reps, quarters=quarters,
                           seed=seed, target=target, budget=budget, by=by,
                           capital_share=capital_share, coverage=coverage, root=out_dir,
                           force=force, executor=executor, progress=progress)
    folder = rb.write_summary(result, charts=not no_charts)
    out.print(_ranking_table(result))
    _print_discovery(result)
    for note in result.notes:
        out.print(Text.assemble(("note:", "yellow"), " ", note))
    top = result.ranking.iloc[0]
    out.print(Text.assemble(("recommended:", "bold"), " ",
                            f"{result.recommended}: satisfices in {top.satisficing_share:.0%} "
                            f"of {len(result.futures)} futures (95% interval "
                            f"{top.satisficing_low:.0%} to {top.satisficing_high:.0%})"))
    err.print(f"wrote {folder}")


def _months(x: float) -> str:
    return "never" if math.isinf(x) else "" if math.isnan(x) else f"{x:.1f}"


def _ranking_table(result):
    from rich.table import Table

    budget = "" if result.budget is None else f", risk budget {result.budget:.2%}"
    view = Table(title=f"robustness over {len(result.futures)} futures: target "
                       f"{result.target:.0%} {result.coverage} by {result.by}{budget}",
                 title_justify="left")
    for header in ("rank", "strategy", "satisficing", "95% interval", "late", "over budget",
                   "over capital", "regret p90", "regret max", "worst months to target",
                   "worst 12m default"):
        view.add_column(header, justify="left" if header == "strategy" else "right")
    for r in result.ranking.itertuples():
        worst = r.worst_default_12mob_opened
        view.add_row(str(r.rank), r.strategy, f"{r.satisficing_share:.0%}",
                     f"{r.satisficing_low:.0%} to {r.satisficing_high:.0%}", str(r.late),
                     str(r.over_budget), str(r.over_capital), _months(r.regret_p90),
                     _months(r.regret_max), _months(r.worst_time_to_target_months),
                     "" if math.isnan(worst) else f"{worst:.3%}")
    return view


def _print_discovery(result) -> None:
    d = result.discovery
    if getattr(d, "note", ""):
        out.print(f"where '{result.recommended}' fails: {d.note}")
        return
    out.print(f"where '{result.recommended}' fails ({d.of_interest} of {d.cases} futures), "
              f"PRIM box with coverage {d.coverage:.2f} and density {d.density:.2f}:")
    qp = d.box.set_index("key")["qp_value"]
    for rule in d.rules:
        key = rule.split(" ", 1)[0]
        out.print(f"  {rule}  (qp {qp.get(key, float('nan')):.2g})")
    if d.caution:
        out.print(Text.assemble(("caution:", "yellow"), " ", d.caution))
