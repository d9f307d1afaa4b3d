"""A run's tables as the engine records them: columns of Python and NumPy values, made into
pandas DataFrames only when they are asked for.

Importing pandas takes about a quarter of a second, as long as a month of a million-user
run; a run written without its report never needs it. So the engine keeps each table as the
rows it recorded (:class:`Table`): the summary reads their columns, the run folder's writer
(:mod:`sim.io.parquet`) writes them, and the DataFrame is built, by the same code as always,
the first time anyone asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: A missing value in a column; pandas fills a key missing from a row with NaN too.
MISSING = float("nan")


class Table:
    """One table of a run: its ``columns`` (name -> values, in table order), and its
    DataFrame, built by ``make()`` on first use and kept.

    ``dates`` names the columns that hold ``datetime.date`` values, which the DataFrame
    holds as ``datetime64`` (``pd.to_datetime``). A table made from a DataFrame
    (:meth:`of_frame`) has no ``columns``: it is only its frame.
    """

    def __init__(self, columns: dict[str, list] | None, make: Callable[[], pd.DataFrame],
                 dates: Sequence[str] = (), rows: int | None = None):
        self.columns = columns
        self.dates = tuple(dates)
        self._make = make
        self._frame: pd.DataFrame | None = None
        self._rows = rows

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> Table:
        """A table that is the DataFrame ``frame`` (a result made from frames)."""
        table = cls(None, lambda: frame, rows=len(frame))
        table._frame = frame
        return table

    @property
    def frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame, built on first use (pandas is imported then)."""
        if self._frame is None:
            self._frame = self._make()
        return self._frame

    @property
    def built(self) -> bool:
        """Whether the DataFrame has been made (its reader may have changed it since)."""
        return self._frame is not None

    def __len__(self) -> int:
        if self._rows is None:
            self._rows = (len(next(iter(self.columns.values()), ())) if self.columns is not None
                          else len(self.frame))
        return self._rows

    def __reduce__(self):
        # the frame travels, not the code that makes it (a closure over the recorder)
        return Table.of_frame, (self.frame,)


def columns_of(rows: list[dict], names: Sequence[str]) -> dict[str, list]:
    """The columns ``names`` of ``rows`` (a value missing from a row is :data:`MISSING`, as
    in ``pd.DataFrame(rows, columns=names)``)."""
    return {name: [row.get(name, MISSING) for row in rows] for name in names}


def rows_table(rows: list[dict], names: Sequence[str], dates: Sequence[str] = ()) -> Table:
    """The table of ``rows`` with the columns ``names``, its ``dates`` columns as datetime64
    in the frame: ``pd.DataFrame(rows, columns=names)`` then ``pd.to_datetime`` on each."""
    names, dates = list(names), tuple(dates)
    return Table(columns_of(rows, names), lambda: rows_frame(rows, names, dates), dates,
                 rows=len(rows))


def rows_frame(rows: list[dict], names: list[str], dates: tuple[str, ...]) -> pd.DataFrame:
    """``pd.DataFrame(rows, columns=names)`` with its ``dates`` columns made datetime64."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=names)
    for name in dates:
        df[name] = pd.to_datetime(df[name])
    return df
