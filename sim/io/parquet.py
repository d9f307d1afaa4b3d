"""A run's tables as Parquet without pandas: the bytes pandas' ``to_parquet`` writes.

``DataFrame.to_parquet(index=False, engine="pyarrow")`` converts the frame with
``pyarrow.Table.from_pandas`` (one Arrow column per column, NaN as null, the pandas schema in
the file's ``pandas`` metadata) and writes it with ``pyarrow.parquet``. :func:`arrow_table`
makes the same Arrow table from a recorded :class:`~sim.engine.tables.Table`'s columns, the
type of each inferred as ``pd.DataFrame(rows)`` infers it, so the file is the same, byte for
byte, and reads back into the same DataFrame; importing pandas, a quarter of a second, is
left to the readers. A column of values outside those rules (:class:`Unsupported`) is left
to pandas.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache

import numpy as np
import pyarrow as pa

from sim.engine.tables import Table


class Unsupported(ValueError):
    """A column whose pandas type is not inferred here (the frame is written by pandas)."""


#: Arrow type and the pandas metadata's ``pandas_type`` and ``numpy_type`` of each kind of
#: column, as ``pyarrow.Table.from_pandas`` records them for the frame's dtypes.
KINDS = {
    "float64": (pa.float64(), "float64", "float64"),
    "int64": (pa.int64(), "int64", "int64"),
    "bool": (pa.bool_(), "bool", "bool"),
    "str": (pa.large_string(), "object", "str"),  # pandas' default ``str`` dtype
    "datetime": (pa.timestamp("s"), "datetime", "datetime64[s]"),  # from datetime.date
    "empty": (pa.null(), "empty", "object"),  # a column of no rows
}


def kind_of(values: list, date: bool = False) -> str:
    """The kind of column (:data:`KINDS`) pandas makes of ``values``: dates (a column made
    datetime64) at second resolution; only booleans, bool; only integers, int64; numbers
    with at least one float, float64; only text, str; no values, empty (object)."""
    if date:
        if not all(type(v) is dt.date for v in values):
            raise Unsupported("a date column holds values that are not dates")
        return "datetime"
    if not values:
        return "empty"
    types = {type(v) for v in values}
    if types <= {bool, np.bool_}:
        return "bool"
    if types <= {str}:
        return "str"
    if any(issubclass(t, bool | np.bool_) for t in types):
        raise Unsupported("booleans mixed with other values")
    # NumPy's narrower numbers keep their own dtype in a DataFrame: pandas writes those
    if types <= {int, np.int64}:
        return "int64"
    if types <= {int, float, np.int64, np.float64}:
        return "float64"
    raise Unsupported(f"values of types {sorted(t.__name__ for t in types)}")


def arrow_column(values: list, kind: str) -> pa.Array:
    """The Arrow array ``from_pandas`` makes of the column (NaN in a float column: null).

    Made from its buffers: ``pa.array`` asks pyarrow's pandas shim whether its input is a
    pandas object, and that imports pandas."""
    n, arrow_type = len(values), KINDS[kind][0]
    if kind == "empty":
        return pa.nulls(0)
    if kind == "str":
        try:
            data = [v.encode("utf-8") for v in values]
        except UnicodeEncodeError as exc:
            raise Unsupported("text that is not UTF-8") from exc
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(b) for b in data], out=offsets[1:])
        return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(b"".join(data))])
    if kind == "bool":
        bits = np.packbits(np.array(values, dtype=np.bool_), bitorder="little")
        return pa.Array.from_buffers(arrow_type, n, [None, pa.py_buffer(bits)])
    if kind == "datetime":
        array = seconds_since_epoch(values)
    else:
        array = np.array(values, dtype=np.float64 if kind == "float64" else np.int64)
    valid, nulls = None, 0
    if kind == "float64":
        missing = np.isnan(array)
        nulls = int(np.count_nonzero(missing))
        if nulls:
            valid = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, n, [valid, pa.py_buffer(array)],
                                 null_count=nulls)


#: The ordinal of 1970-01-01 (:meth:`datetime.date.toordinal`).
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def seconds_since_epoch(dates: list[dt.date]) -> np.ndarray:
    """The int64 seconds ``np.array(dates, dtype="datetime64[s]")`` holds (each date's
    midnight), from the dates' ordinals: NumPy converts date objects one by one at about
    1.2 us each (2 ms for a column of the vintage table)."""
    return (np.array([d.toordinal() for d in dates], dtype=np.int64) - EPOCH_ORDINAL) * 86_400


def arrow_table(table: Table) -> pa.Table:
    """The Arrow table ``pa.Table.from_pandas(table.frame, preserve_index=False)`` gives,
    made from the table's columns."""
    if table.columns is None:
        raise Unsupported("a table made from a DataFrame")
    if int(pandas_version().split(".")[0]) < 3:  # str and datetime64[s] are pandas 3's
        raise Unsupported(f"the types pandas {pandas_version()} infers")
    arrays, described = [], []
    for name, values in table.columns.items():
        kind = kind_of(values, name in table.dates)
        if kind == "int64" and not all(-2**63 <= int(v) < 2**63 for v in values):
            raise Unsupported("integers beyond int64")
        arrays.append(arrow_column(values, kind))
        _, pandas_type, numpy_type = KINDS[kind]
        described.append({"name": name, "field_name": name, "pandas_type": pandas_type,
                          "numpy_type": numpy_type, "metadata": None})
    schema = pa.schema([pa.field(name, array.type)
                        for name, array in zip(table.columns, arrays, strict=True)],
                       metadata={b"pandas": pandas_metadata(described)})
    return pa.Table.from_arrays(arrays, schema=schema)


def pandas_metadata(columns: list[dict]) -> bytes:
    """The ``pandas`` schema metadata pyarrow writes for a frame without its index (what
    ``pd.read_parquet`` reads back the dtypes from)."""
    return json.dumps({
        "index_columns": [], "column_indexes": [], "columns": columns, "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": pandas_version(),
    }).encode("utf8")


@cache
def pandas_version() -> str:
    """The installed pandas' version, read without importing pandas."""
    from importlib.metadata import version

    return version("pandas")


def parquet_bytes(table: pa.Table, compression: str = "zstd") -> bytes:
    """``table`` as Parquet, written as pandas writes it (``pyarrow.parquet.write_table``)."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue().to_pybytes()
