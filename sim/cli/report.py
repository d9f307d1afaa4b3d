"""``greysim report``: the charts and report.html of a run, comparison or sweep folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.options import err, out


def report_command(
    folder: Annotated[Path, typer.Argument(help="A run or comparison folder.",
                                           show_default=False)],
) -> None:
    """Write the charts and one self-contained report.html of a run or comparison folder."""
    from rich.text import Text

    with err.status(Text(f"reading {folder} and drawing its charts"), spinner="dots"):
        from sim.io.report import write_report

        page = write_report(folder)
    out.print(f"wrote {page}")
