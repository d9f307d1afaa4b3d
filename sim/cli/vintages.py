"""``greysim vintages``: the age-period-cohort decomposition of a vintage triangle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sim.cli.options import out
from sim.errors import GreysimError


class VintagesInputError(GreysimError, ValueError):
    """The input is neither a run folder with vintages.parquet nor a triangle CSV."""


def vintages_command(
    source: Annotated[Path, typer.Argument(
        help="A run folder (its vintages.parquet) or an observed CSV with columns vintage "
             "(cohort month, integer), mob, defaults, exposure.", show_default=False)],
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the curves (CSV) and the chart (default: <source>-apc "
                      "beside the source).")] = None,
    pool: Annotated[int, typer.Option(
        "--pool", min=1, max=24, help="Months of invitations pooled into one vintage (run "
                                      "folders only).")] = 3,
    constraint: Annotated[str, typer.Option(
        "--constraint", help="The curve without a linear trend (the identification "
                             "constraint): quality or environment.")] = "quality",
) -> None:
    """Split default rates into lifecycle, environment and vintage quality (with intervals)."""
    import pandas as pd

    from sim.analysis import vintages

    if source.is_dir():
        table = source / "vintages.parquet"
        if not table.is_file():
            raise VintagesInputError(f"{source}: no vintages.parquet in this folder (give a "
                                     "run folder or a triangle CSV)")
        from sim.io.reading import read_summary

        weight = float(read_summary(source / "summary.json").get("weight", 1.0) or 1.0)
        triangle = vintages.triangle_from_vintages(pd.read_parquet(table), weight, pool)
    elif source.suffix.lower() == ".csv" and source.is_file():
        try:
            frame = pd.read_csv(source)
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
            raise VintagesInputError(f"{source}: cannot be read as a CSV table ({exc})") from None
        try:
            triangle = vintages.triangle_from_csv(frame)
        except vintages.TriangleError as exc:
            raise VintagesInputError(f"{source}: {exc}") from None
    else:
        raise VintagesInputError(f"{source}: not a run folder or a .csv file")
    dec = vintages.decompose(triangle, constraint)
    target = out_dir or source.parent / f"{source.stem if source.is_file() else source.name}-apc"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("lifecycle", "environment", "quality"):
        getattr(dec, name).to_csv(target / f"{name}.csv", index=False)
    fig = vintages.figure(dec)
    fig.savefig(target / "decomposition.png", dpi=110)
    out.print(repr(dec))
    out.print(f"wrote {target}")
