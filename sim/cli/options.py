"""What every command shares: the consoles, option types, scenario loading and formatters.

Light on purpose: typer and rich's console. The scenario package (pydantic, yaml) is imported
when a scenario is loaded and the numerical libraries inside the commands that need them, so
``greysim --help``, ``version`` and ``validate`` start fast.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from sim.errors import OptionError

if TYPE_CHECKING:
    from sim.scenario import Scenario

# Not a terminal (CI, pipes): wide enough for the summary table instead of rich's 80.
# no emoji codes: a message like "file.yaml:100: ..." must not print as "file.yaml💯 ..."
# markup off: names, paths and messages are user text and print literally ("[/]x", "[red]")
out = Console(width=None if sys.stdout.isatty() else 160, emoji=False, markup=False)
err = Console(stderr=True, emoji=False, markup=False)

#: The line Ctrl-C prints in the running command (set by :func:`when_interrupted`).
interrupted_line: ContextVar[str] = ContextVar("interrupted_line", default="interrupted")

ScenarioArg = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key, e.g. --set rollout.phases.0.batch.share=0.05 "
                 "(repeatable)."),
]
UsersOpt = Annotated[int | None, typer.Option(
    help="Simulated users, standing for the real population (the weight scales).", min=1)]
QuartersOpt = Annotated[int | None, typer.Option(help="Simulate the first Q quarters.", min=1)]
QuietOpt = Annotated[bool, typer.Option(help="No progress bar.")]
NoReportOpt = Annotated[bool, typer.Option("--no-report",
                                           help="Skip the charts and report.html.")]
WorkersOpt = Annotated[int | None, typer.Option(
    help="Worker processes (default: the machine's cores; 1 runs in this process).", min=1)]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="Dask scheduler address, e.g. tcp://host:8786, to run on a cluster.")]
DaskLocalOpt = Annotated[int | None, typer.Option(
    "--dask-local", help="Start a local Dask cluster with this many workers.", min=1)]
CoverageOpt = Annotated[str, typer.Option(
    help="Coverage the target applies to: invited or visible.")]


def load_scenario(path: Path, overrides: list[str], users: int | None = None,
                  seed: int | None = None) -> Scenario:
    """The scenario file with ``--set`` overrides, ``--users`` and ``--seed`` applied."""
    from sim.scenario import keys, load  # pydantic builds the schema on import: not for --help

    changes = keys.parse_assignments(overrides, str(path))
    if seed is not None:
        changes["seed"] = seed
    return load(path, changes, users, note="set on the command line")


#: Whether the running command froze the objects alive at its start (:func:`collector_running`).
_frozen = False


@contextmanager
def collector_running() -> Iterator[None]:
    """The cyclic garbage collector on while a command runs, over the objects made since it
    started: those alive then (typer, rich, pydantic: long-lived, no garbage) are frozen
    first, or the collector's first pass would walk every object made while it was paused
    (~15 ms) and its passes of the older generations again later. They are unfrozen when the
    command ends, so an in-process caller keeps a working collector; a caller that froze
    objects itself keeps its freeze (nothing is frozen or unfrozen then)."""
    global _frozen
    freezing = not _frozen and gc.get_freeze_count() == 0
    if freezing:
        gc.freeze()
        _frozen = True
    gc.enable()
    try:
        yield
    finally:
        if freezing:
            _frozen = False
            gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block of imports: the numerical libraries and
    the scenario's models make some 500k objects and no garbage, and the collector's passes
    over them took about 40 ms of a command's start. In a command that froze the objects
    alive at its start (:func:`collector_running`) the block's are frozen too, for the same
    reason (10-15 ms)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if _frozen:
                gc.freeze()
            gc.enable()


def when_interrupted(message: str) -> None:
    """The one line Ctrl-C prints from now on in this command (what was kept, what was not)."""
    interrupted_line.set(message)


def check_coverage(coverage: str) -> None:
    if coverage not in ("invited", "visible"):
        raise OptionError(f"--coverage must be 'invited' or 'visible', got '{coverage}'")


def write_report(folder: Path) -> None:
    """Charts and report.html of a folder just written (imports matplotlib only now)."""
    from sim.io.report import write_report as write

    write(folder)


def share(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def millions(x) -> str:
    return "" if x is None else f"{x / 1e6:,.2f}M"


def billions(x) -> str:
    return "" if x is None else f"{x / 1e9:,.2f}bn"
