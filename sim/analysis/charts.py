"""Charts of a run or a comparison: functions that take the tables and return a Figure.

Every function takes the pandas tables a run writes (``metrics.parquet`` is the monthly table,
``segments.parquet``, ``vintages.parquet``) or their concatenation over runs with ``strategy``
and ``replication`` columns, and returns a :class:`matplotlib.figure.Figure`. They do no I/O and
never touch pyplot's global state, so they work the same in a notebook, a script or the report
writer (which renders them with the non-interactive Agg backend).

A chart whose columns are absent raises :class:`MissingData` with one sentence saying what it
needs; the report turns that into a note instead of a chart.

With a ``replication`` column, a line is the mean over replications and its band (or error
bar) the 95% t-interval of that mean. With a ``strategy`` (or ``arm``) column, each strategy is
its own colour or panel.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from sim.analysis.stats import t_half_width
from sim.errors import GreysimError

__all__ = ["MissingData", "capital", "churn", "coverage", "funnel", "net_income", "risk_reach",
           "segment_heatmap", "theme", "vintage_curves", "CHARTS"]

PALETTE = sns.color_palette("colorblind")
#: Readable names of table columns and segment dimensions, used on axes and legends.
NAMES = {
    "population": "population", "eligible": "eligible", "invited": "invited",
    "visible": "visible (entry shown)", "active": "active", "borrowers": "borrowers",
    "invited_share": "invited", "visible_share": "visible (entry shown)",
    "archetype": "archetype", "region": "region tier", "version": "client version",
    "device_grade": "device grade", "account_class": "account class", "os": "OS",
    "data_sharing": "data sharing",
}
HOLIDAY_COLOUR = "#f2c14e"


class MissingData(GreysimError, ValueError):
    """The table lacks what a chart needs; ``str()`` is a one-line note for the report."""


def theme() -> dict:
    """The rc parameters every chart is drawn with (seaborn whitegrid, colour-blind palette)."""
    return {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.9),
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlelocation": "left",
        "axes.titleweight": "bold",
        "axes.titlesize": 13,
        "legend.frameon": False,
        "font.family": "DejaVu Sans",
        "svg.hashsalt": "greysim",
        "figure.dpi": 100,
    }


def _themed(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(theme()):
            return fn(*args, **kwargs)
    return wrapper


# --------------------------------------------------------------------------- helpers


def _need(df: pd.DataFrame | None, columns: Iterable[str], table: str, why: str = "") -> None:
    if df is None or df.empty:
        raise MissingData(f"no {table} table{why}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise MissingData(f"the {table} table has no {', '.join(missing)} column"
                          f"{'s' if len(missing) > 1 else ''}{why}")


def _series(df: pd.DataFrame) -> str | None:
    """The column that names the compared series: ``strategy`` or ``arm``, if any."""
    return next((c for c in ("strategy", "arm") if c in df.columns), None)


def _keys(df: pd.DataFrame) -> list[str]:
    return [c for c in ("strategy", "arm", "replication") if c in df.columns]


def _names(df: pd.DataFrame, by: str | None) -> list:
    return list(dict.fromkeys(df[by])) if by else [None]


def _mean_ci(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Mean of ``value`` over replications per ``by`` group, with its 95% t-interval."""
    g = df.groupby(by, sort=False)[value]
    out = g.agg(mean="mean", sd="std", n="count").reset_index()
    # a single replication draws its line without a band
    half = np.nan_to_num(t_half_width(out["sd"].fillna(0), out["n"]), nan=0.0)
    out["lo"], out["hi"] = out["mean"] - half, out["mean"] + half
    return out


def _quarters(monthly: pd.DataFrame, flows: Sequence[str] = (),
              stocks: Sequence[str] = ()) -> pd.DataFrame:
    """Per quarter (and run): the sum of ``flows`` and the quarter-end value of ``stocks``."""
    keys = _keys(monthly) + ["quarter"]
    g = monthly.groupby(keys, sort=False)
    out = g[list(flows)].sum() if flows else g[[]].sum()
    last = g.tail(1).set_index(keys)
    out = out.join(last[["date", *stocks]]).reset_index()
    out["label"] = [f"Q{q}\n{pd.Timestamp(d):%b %Y}" for q, d in zip(out.quarter, out.date,
                                                                       strict=True)]
    return out


def _scale(values, unit: str) -> tuple[float, str]:
    """A divisor and axis unit so the largest value reads in ones to hundreds."""
    top = float(np.nanmax(np.abs(np.asarray(values, dtype=float)))) if len(values) else 0.0
    for div, word in ((1e9, "billions"), (1e6, "millions"), (1e3, "thousands")):
        if top >= div:
            return div, f"{unit}, {word}"
    return 1.0, unit


def _figure(width: float = 10, height: float = 4.8, rows: int = 1, cols: int = 1,
            **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes.ravel()


def _holiday_windows(holidays) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    out = []
    for h in holidays or ():
        if isinstance(h, dict):
            start, end = h["start"], h["end"]
        elif hasattr(h, "start"):
            start, end = h.start, h.end
        else:
            start, end = h[-2], h[-1]
        out.append((pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1)))
    return out


def _date_axis(ax) -> None:
    locator = mpl.dates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mpl.dates.DateFormatter("%b %Y"))
    ax.grid(axis="x", visible=False)


def _pretty(label) -> str:
    return str(label).replace("_", " ")


# --------------------------------------------------------------------------- charts


@_themed
def coverage(monthly: pd.DataFrame, *, target: float | None = None, holidays=(),
             shares: Sequence[str] = ("invited_share", "visible_share")) -> Figure:
    """Invited and visible share of the population per month; one colour per strategy.

    ``target`` draws the coverage target; ``holidays`` (pairs of dates, or the scenario's
    ``calendar.holidays``) shades the holiday windows that widen the samples.
    """
    _need(monthly, ["date", *shares], "monthly")
    by = _series(monthly)
    fig, (ax,) = _figure()
    dates = pd.to_datetime(monthly["date"])
    first, last = dates.min(), dates.max()
    for start, end in _holiday_windows(holidays):
        if end >= first and start <= last:  # clipped: a window may reach far outside
            ax.axvspan(max(start, first), min(end, last), color=HOLIDAY_COLOUR, alpha=0.35,
                       lw=0, zorder=0)
    styles = ("-", "--", ":", "-.")
    for i, name in enumerate(_names(monthly, by)):
        sub = monthly if by is None else monthly[monthly[by] == name]
        colour = PALETTE[i % len(PALETTE)]
        for share, style in zip(shares, styles, strict=False):
            m = _mean_ci(sub, ["date"], share)
            label = NAMES.get(share, share) if by is None else f"{name}: {NAMES.get(share, share)}"
            x = pd.to_datetime(m["date"])
            ax.plot(x, m["mean"], style, color=colour, lw=2, label=label, marker="o", ms=3)
            if (m["hi"] > m["lo"]).any():
                ax.fill_between(x, m["lo"], m["hi"], color=colour, alpha=0.18, lw=0)
    if target is not None:
        ax.axhline(target, color="#c0392b", lw=1.2, ls=(0, (4, 3)),
                   label=f"target {100 * target:.0f}%")
    handles, labels = ax.get_legend_handles_labels()
    if holidays and _holiday_windows(holidays):
        handles.append(Patch(color=HOLIDAY_COLOUR, alpha=0.35))
        labels.append("holiday window")
    if "replication" in monthly.columns and monthly["replication"].nunique() > 1:
        handles.append(Patch(color="grey", alpha=0.18))
        labels.append("95% interval over replications")
    ax.legend(handles, labels, loc="upper left", fontsize=9)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    ax.set_xlabel("month end")
    ax.set_ylabel("share of the population (%)")
    ax.set_title("Coverage growth")
    return fig


FUNNEL = ("population", "eligible", "invited", "visible", "active", "borrowers")


@_themed
def funnel(monthly: pd.DataFrame) -> Figure:
    """Users at each stage at every quarter's end: population, eligible, invited, visible, and
    with the credit model active and borrowers (stages absent from the table are left out)."""
    _need(monthly, ["date", "quarter", "population", "eligible", "invited"], "monthly")
    stages = [s for s in FUNNEL if s in monthly.columns]
    by = _series(monthly)
    names = _names(monthly, by)
    q = _quarters(monthly, stocks=stages)
    div, unit = _scale(q[stages].to_numpy().ravel(), "real users")
    fig, axes = _figure(10, 4.2 * len(names) ** 0.8 + 0.6, rows=len(names), sharey=True)
    colours = sns.color_palette("crest", len(stages))
    for ax, name in zip(axes, names, strict=True):
        sub = q if by is None else q[q[by] == name]
        labels = list(dict.fromkeys(sub["label"]))
        width = 0.8 / len(stages)
        x = np.arange(len(labels))
        for i, stage in enumerate(stages):
            m = _mean_ci(sub, ["label"], stage).set_index("label").loc[labels]
            ax.bar(x + (i - (len(stages) - 1) / 2) * width, m["mean"] / div, width,
                   color=colours[i], label=NAMES.get(stage, stage))
        ax.set_xticks(x, labels, fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(unit)
        ax.set_xlabel("quarter (end month)")
        ax.set_title("Funnel per quarter" + (f": {name}" if name is not None else ""))
    axes[0].legend(ncols=len(stages), loc="upper left", fontsize=9)
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.12)  # room for the legend above the bars
    return fig


@_themed
def vintage_curves(vintages: pd.DataFrame, rate: str = "dpd90_cum_rate") -> Figure:
    """Cumulative 90+ rate by months on book, one line per vintage (invite batch), coloured by
    the vintage's date; cells younger than the default window are drawn faded."""
    _need(vintages, ["vintage", "mob", rate], "vintage", " (it comes with the credit model)")
    by = _series(vintages)
    names = _names(vintages, by)
    fig, axes = _figure(10, 4.6 * len(names) ** 0.8, rows=len(names), sharey=True)
    dates = pd.to_datetime(vintages["vintage_date"]) if "vintage_date" in vintages else None
    order = dates if dates is not None else vintages["vintage"]
    norm = mpl.colors.Normalize(mpl.dates.date2num(order.min()) if dates is not None
                                else order.min(),
                                mpl.dates.date2num(order.max()) if dates is not None
                                else order.max())
    cmap = sns.color_palette("viridis", as_cmap=True)
    for ax, name in zip(axes, names, strict=True):
        sub = vintages if by is None else vintages[vintages[by] == name]
        group = ["vintage", "mob"] + (["immature"] if "immature" in sub else [])
        m = _mean_ci(sub, group, rate)
        first = sub.groupby("vintage")[dates.name if dates is not None else "vintage"].first()
        for vintage, cells in m.groupby("vintage", sort=True):
            when = first.loc[vintage]
            colour = cmap(norm(mpl.dates.date2num(when) if dates is not None else when))
            cells = cells.sort_values("mob")
            ax.plot(cells["mob"], cells["mean"], color=colour, lw=0.9, alpha=0.45,
                    label="_vintage")
            if "immature" in cells:
                mature = cells[~cells["immature"].astype(bool)]
                if not mature.empty:
                    ax.plot(mature["mob"], mature["mean"], color=colour, lw=1.8,
                            label=f"vintage {vintage}")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("months on book")
        ax.set_ylabel("cumulative 90+ days past due (% of accounts)")
        ax.set_title("Vintage curves" + (f": {name}" if name is not None else ""))
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    bar = fig.colorbar(sm, ax=list(axes), shrink=0.9, pad=0.01)
    bar.set_label("vintage (invite date)" if dates is not None else "vintage")
    if dates is not None:
        bar.ax.yaxis.set_major_formatter(mpl.dates.DateFormatter("%b %Y"))
    if "immature" in vintages:
        axes[0].legend([Line2D([], [], color="grey", lw=1.8),
                        Line2D([], [], color="grey", lw=0.9, alpha=0.45)],
                       ["seasoned", "immature (younger than the default window)"],
                       loc="upper left", fontsize=9)
    return fig


def frontier(points: pd.DataFrame, x: str = "risk", y: str = "reach") -> pd.DataFrame:
    """The efficient strategies: no other has at most their risk and more reach."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best = -np.inf
    keep = []
    for idx, value in ordered[y].items():
        if value > best:
            keep.append(idx)
            best = value
    return ordered.loc[keep]


@_themed
def risk_reach(table: pd.DataFrame, *, reach: str = "invited_share",
               risk: str = "default_rate_12m") -> Figure:
    """Each strategy's coverage at the horizon against its 12-month default rate, with 95%
    intervals over replications, and the efficient frontier.

    ``table`` is the comparison's monthly table (its last month is the horizon) or one row per
    strategy and replication.
    """
    if table is not None and "strategy" not in table.columns:
        raise MissingData("a single run has no strategies to set against each other "
                          "(it is drawn for a comparison of strategies)")
    _need(table, ["strategy", reach, risk], "monthly", " (it comes with the credit model)")
    rows = table
    if "month" in table.columns:
        rows = table[table["month"] == table.groupby("strategy")["month"].transform("max")]
    r = _mean_ci(rows, ["strategy"], risk).set_index("strategy")
    c = _mean_ci(rows, ["strategy"], reach).set_index("strategy")
    points = pd.DataFrame({"risk": r["mean"], "reach": c["mean"]})
    fig, (ax,) = _figure(9, 5.6)
    edge = frontier(points)
    ax.plot(edge["risk"], edge["reach"], "-", color="#7f8c8d", lw=1.5, zorder=1,
            label="efficient frontier")
    for i, name in enumerate(points.index):
        colour = PALETTE[i % len(PALETTE)]
        ax.errorbar(points.loc[name, "risk"], points.loc[name, "reach"],
                    xerr=[[r.loc[name, "mean"] - r.loc[name, "lo"]],
                          [r.loc[name, "hi"] - r.loc[name, "mean"]]],
                    yerr=[[c.loc[name, "mean"] - c.loc[name, "lo"]],
                          [c.loc[name, "hi"] - c.loc[name, "mean"]]],
                    fmt="o", ms=8, color=colour, capsize=3, lw=1.2, zorder=3, label=name)
        ax.annotate(name, (points.loc[name, "risk"], points.loc[name, "reach"]),
                    xytext=(7, 6), textcoords="offset points", fontsize=9)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    ax.set_xlabel("12-month default rate (%)")
    ax.set_ylabel(f"coverage at the horizon ({NAMES.get(reach, reach)}, % of population)")
    ax.set_title("Risk against reach")
    ax.legend(loc="lower right", fontsize=9)
    ax.margins(0.15)
    return fig


@_themed
def segment_heatmap(segments: pd.DataFrame, rows: str = "archetype", cols: str = "region",
                    *, value: str = "access_rate", month: int | None = None) -> Figure:
    """Access rate of every ``rows`` x ``cols`` cell at ``month`` (default: the last), from the
    segment table's crossed dimension ``"rows x cols"`` (scenario ``reporting.crosses``)."""
    _need(segments, ["dimension", "value", "month", value], "segment")
    dim = f"{rows} x {cols}"
    cells = segments[segments["dimension"] == dim]
    if cells.empty:
        raise MissingData(f"the segment table has no '{dim}' cross "
                          f"(add [{rows}, {cols}] to the scenario's reporting.crosses)")
    month = int(cells["month"].max()) if month is None else month
    cells = cells[cells["month"] == month]
    by = _series(cells)
    names = _names(cells, by)
    split = cells["value"].str.split(" x ", n=1, expand=True)
    cells = cells.assign(row=split[0].map(_pretty), col=split[1].map(_pretty))
    row_order = list(dict.fromkeys(cells["row"]))
    col_order = list(dict.fromkeys(cells["col"]))
    fig, axes = _figure(min(4.5 + 1.3 * len(col_order), 10) * len(names) ** 0.7,
                        1.2 + 0.55 * len(row_order), cols=len(names), sharey=True)
    date = pd.Timestamp(cells["date"].iloc[0]) if "date" in cells else None
    vmax = float(np.nanmax(cells[value])) if cells[value].notna().any() else 1.0
    for i, (ax, name) in enumerate(zip(axes, names, strict=True)):
        sub = cells if by is None else cells[cells[by] == name]
        grid = (sub.groupby(["row", "col"], sort=False)[value].mean().unstack("col")
                .reindex(index=row_order, columns=col_order)
                .dropna(how="all").dropna(axis=1, how="all"))  # segments with nobody in them
        sns.heatmap(grid, ax=ax, annot=True, fmt=".0%", cmap="YlGnBu", vmin=0, vmax=vmax,
                    linewidths=0.5, linecolor="white", annot_kws={"fontsize": 9},
                    cbar=i == len(names) - 1,
                    cbar_kws={"label": f"{value.replace('_', ' ')} (%)",
                              "format": PercentFormatter(1.0, decimals=None)})
        ax.set_xlabel(NAMES.get(cols, cols))
        ax.set_ylabel(NAMES.get(rows, rows) if i == 0 else "")
        ax.tick_params(axis="y", rotation=0)
        title = f"Access rate by {NAMES.get(rows, rows)} and {NAMES.get(cols, cols)}"
        if name is not None:
            title = f"{name}"
        elif date is not None:
            title += f", {date:%b %Y}"
        ax.set_title(title, fontsize=12)
    return fig


@_themed
def churn(monthly: pd.DataFrame) -> Figure:
    """Access gained and lost at each quarter's re-evaluation, in real users."""
    _need(monthly, ["date", "quarter", "gained_access", "lost_access"], "monthly")
    q = _quarters(monthly, flows=["gained_access", "lost_access"])
    by = _series(q)
    names = _names(q, by)
    labels = list(dict.fromkeys(q["label"]))
    div, unit = _scale(q[["gained_access", "lost_access"]].to_numpy().ravel(), "real users")
    fig, (ax,) = _figure()
    x = np.arange(len(labels))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        sub = q if by is None else q[q[by] == name]
        offset = (i - (len(names) - 1) / 2) * width
        gained = _mean_ci(sub, ["label"], "gained_access").set_index("label").loc[labels]
        lost = _mean_ci(sub, ["label"], "lost_access").set_index("label").loc[labels]
        colour = PALETTE[i % len(PALETTE)] if by else PALETTE[2]
        prefix = "" if name is None else f"{name}: "
        ax.bar(x + offset, gained["mean"] / div, width, color=colour, label=f"{prefix}gained")
        ax.bar(x + offset, -lost["mean"] / div, width,
               color=colour if by else PALETTE[3], alpha=0.55 if by else 1.0,
               hatch="//" if by else None, label=f"{prefix}lost")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    ax.set_xlabel("quarter (end month)")
    ax.set_ylabel(f"access gained (up) / lost (down) ({unit})")
    ax.set_title("Re-evaluation churn per quarter")
    ax.legend(loc="upper left", fontsize=9, ncols=2)
    return fig


@_themed
def capital(monthly: pd.DataFrame) -> Figure:
    """Outstanding balance per month against the capital limit; months where it bound shaded."""
    _need(monthly, ["date", "outstanding"], "monthly", " (it comes with the credit model)")
    by = _series(monthly)
    cols = ["outstanding"] + (["capital_limit"] if "capital_limit" in monthly else [])
    div, unit = _scale(monthly[cols].to_numpy().ravel(), "CNY")
    fig, (ax,) = _figure()
    bound_label = "capital limit binding"
    for i, name in enumerate(_names(monthly, by)):
        sub = monthly if by is None else monthly[monthly[by] == name]
        colour = PALETTE[i % len(PALETTE)]
        m = _mean_ci(sub, ["date"], "outstanding")
        x = pd.to_datetime(m["date"])
        ax.plot(x, m["mean"] / div, color=colour, lw=2, marker="o", ms=3,
                label="outstanding balance" if name is None else f"{name}: outstanding")
        if (m["hi"] > m["lo"]).any():
            ax.fill_between(x, m["lo"] / div, m["hi"] / div, color=colour, alpha=0.18, lw=0)
        if "capital_bound" in sub and by is None:
            for d in pd.to_datetime(sub.loc[sub["capital_bound"].astype(bool), "date"].unique()):
                ax.axvspan(d - pd.offsets.MonthEnd(1), d, color="#e74c3c", alpha=0.12, lw=0,
                           label=bound_label)
                bound_label = "_bound"
    if "capital_limit" in monthly:
        lim = monthly.groupby("date", sort=True)["capital_limit"].first()
        ax.plot(pd.to_datetime(lim.index), lim / div, color="#c0392b", ls="--", lw=1.5,
                drawstyle="steps-post", label="capital limit")
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    ax.set_xlabel("month end")
    ax.set_ylabel(f"balance ({unit})")
    ax.set_title("Outstanding balance against the capital limit")
    ax.legend(loc="center left", fontsize=9)  # clear of the limit line and the rising balance
    return fig


@_themed
def net_income(monthly: pd.DataFrame) -> Figure:
    """Net income per quarter; for one run also interest revenue and charge-off loss."""
    _need(monthly, ["date", "quarter", "net_income"], "monthly",
          " (it comes with the credit model)")
    by = _series(monthly)
    parts = ["net_income"]
    if by is None:
        parts = [c for c in ("interest_revenue", "charge_off_loss") if c in monthly] + parts
    q = _quarters(monthly, flows=parts)
    if "charge_off_loss" in q:
        q["charge_off_loss"] = -q["charge_off_loss"].abs()
    labels = list(dict.fromkeys(q["label"]))
    div, unit = _scale(q[parts].to_numpy().ravel(), "CNY")
    fig, (ax,) = _figure()
    x = np.arange(len(labels))
    series = [(p, None) for p in parts] if by is None else [("net_income", n)
                                                            for n in _names(q, by)]
    width = 0.8 / len(series)
    colours = {"interest_revenue": PALETTE[0], "charge_off_loss": PALETTE[3],
               "net_income": "#2c3e50"}
    for i, (col, name) in enumerate(series):
        sub = q if name is None else q[q[by] == name]
        m = _mean_ci(sub, ["label"], col).set_index("label").loc[labels]
        label = {"interest_revenue": "interest revenue", "charge_off_loss": "charge-off loss",
                 "net_income": "net income"}[col] if name is None else name
        colour = colours[col] if name is None else PALETTE[i % len(PALETTE)]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, m["mean"] / div, width, color=colour,
               label=label, yerr=(m["hi"] - m["lo"]) / 2 / div if (m["n"] > 1).any() else None,
               capsize=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("quarter (end month)")
    ax.set_ylabel(f"per quarter ({unit})")
    ax.set_title("Net income per quarter" + (" by strategy" if by else ""))
    ax.legend(loc="upper left", fontsize=9, ncols=3)
    return fig


#: Every chart the report draws: (file stem, title, function, table it reads, keywords).
CHARTS = (
    ("coverage", "Coverage growth", coverage, "monthly", {}),
    ("funnel", "Funnel per quarter", funnel, "monthly", {}),
    ("vintages", "Vintage curves", vintage_curves, "vintages", {}),
    ("risk_reach", "Risk against reach", risk_reach, "monthly", {}),
    ("access_archetype_region", "Access rate: archetype x region tier", segment_heatmap,
     "segments", {"rows": "archetype", "cols": "region"}),
    ("access_version_device", "Access rate: client version x device grade", segment_heatmap,
     "segments", {"rows": "version", "cols": "device_grade"}),
    ("churn", "Re-evaluation churn", churn, "monthly", {}),
    ("capital", "Outstanding balance and capital limit", capital, "monthly", {}),
    ("net_income", "Net income", net_income, "monthly", {}),
)


# --------------------------------------------------------------------------- robustness
# Charts of a robust comparison (sim.experiments.robust): the ranking, outcomes per
# (strategy, future) and PRIM's peeling trajectory, each a table in and a Figure out.


@_themed
def robust_satisficing(ranking: pd.DataFrame) -> Figure:
    """Each strategy's satisficing share (futures in which it meets the target by the
    planner's date within the risk budget and capital limit) with its 95% Wilson interval."""
    _need(ranking, ["strategy", "satisficing_share", "satisficing_low", "satisficing_high"],
          "ranking")
    t = ranking.iloc[::-1]
    fig, (ax,) = _figure(8, 0.6 * len(t) + 1.6)
    y = np.arange(len(t))
    err = np.clip(np.vstack([t["satisficing_share"] - t["satisficing_low"],
                             t["satisficing_high"] - t["satisficing_share"]]), 0, None)
    ax.barh(y, t["satisficing_share"], color=PALETTE[0], xerr=err, capsize=3)
    ax.set_yticks(y, t["strategy"])
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of futures in which the plan satisfices (95% Wilson interval)")
    ax.set_title("Satisficing share by strategy")
    return fig


@_themed
def robust_regret(outcomes: pd.DataFrame) -> Figure:
    """Regret (months behind the best plan in the same future) of each strategy over the
    futures: one dot per future, the 90th percentile marked."""
    _need(outcomes, ["strategy", "future", "regret_months"], "outcomes")
    names = list(dict.fromkeys(outcomes["strategy"]))
    fig, (ax,) = _figure(8, 0.7 * len(names) + 1.6)
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for i, name in enumerate(names[::-1]):
        r = outcomes.loc[outcomes.strategy == name, "regret_months"].to_numpy(dtype=float)
        ax.scatter(r, i + rng.uniform(-0.2, 0.2, r.size), s=14, alpha=0.6,
                   color=PALETTE[(len(names) - 1 - i) % len(PALETTE)])
        p90 = np.quantile(r, 0.9)
        ax.plot([p90, p90], [i - 0.3, i + 0.3], color="black", lw=2)
    ax.set_yticks(range(len(names)), names[::-1])
    ax.set_xlabel("regret: months behind the best plan in the same future (bar: 90th "
                  "percentile)")
    ax.set_title("Regret over the futures")
    return fig


@_themed
def robust_tradeoff(outcomes: pd.DataFrame, *, budget: float | None = None,
                    by_months: float | None = None) -> Figure:
    """Time to target against the risk measure, one dot per future, a panel per strategy,
    coloured by whether the plan satisfices; a plan that never reaches the target is drawn at
    the right edge."""
    _need(outcomes, ["strategy", "time_to_target_months", "default_12m_per_invited",
                     "satisficing"], "outcomes")
    names = list(dict.fromkeys(outcomes["strategy"]))
    fig, axes = _figure(4 * len(names), 4, 1, len(names), sharey=True)
    t = outcomes["time_to_target_months"].to_numpy(dtype=float)
    finite = t[np.isfinite(t)]
    edge = max(finite.max() if finite.size else 12.0, by_months or 0.0) * 1.08
    for ax, name in zip(axes, names, strict=True):
        mine = outcomes[outcomes.strategy == name]
        x = mine["time_to_target_months"].to_numpy(dtype=float)
        x = np.where(np.isfinite(x), x, edge)
        ok = mine["satisficing"].to_numpy(dtype=bool)
        ax.scatter(x[ok], mine["default_12m_per_invited"][ok], s=18, color=PALETTE[2],
                   label="satisfices")
        ax.scatter(x[~ok], mine["default_12m_per_invited"][~ok], s=18, color=PALETTE[3],
                   marker="x", label="fails")
        if budget is not None:
            ax.axhline(budget, color="grey", ls="--", lw=1)
        if by_months is not None:
            ax.axvline(by_months, color="grey", ls=":", lw=1)
        ax.axvline(edge, color="lightgrey", lw=4, alpha=0.5)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("months to target (right edge: never)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
    axes[0].set_ylabel("90+ default at 12 months on book\n(per invited user)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Time to target against risk, by future", x=0.01, ha="left",
                 fontweight="bold")
    return fig


@_themed
def robust_peeling(trajectory: pd.DataFrame) -> Figure:
    """PRIM's peeling trajectory: coverage against density of each box, coloured by the
    number of restricted uncertainties; the box reported is ringed."""
    _need(trajectory, ["coverage", "density", "res_dim"], "peeling")
    fig, (ax,) = _figure(6.5, 4.8)
    dims = trajectory["res_dim"].to_numpy(dtype=int)
    points = ax.scatter(trajectory["coverage"], trajectory["density"], c=dims, cmap="viridis",
                        s=24)
    fig.colorbar(points, ax=ax, label="restricted uncertainties",
                 ticks=range(int(dims.max()) + 1) if dims.size else None)
    if "chosen" in trajectory:
        pick = trajectory[trajectory["chosen"].astype(bool)]
        ax.scatter(pick["coverage"], pick["density"], s=160, facecolors="none",
                   edgecolors="black", lw=1.5, label="box reported")
        ax.legend(loc="lower left", fontsize=9)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share of failing futures inside the box)")
    ax.set_ylabel("density (share of futures in the box that fail)")
    ax.set_title("Where the plan fails: PRIM peeling trajectory")
    return fig


#: The charts of a robust comparison's folder: (file stem, function, table, keywords).
ROBUST_CHARTS = (
    ("satisficing", robust_satisficing, "ranking", ()),
    ("regret", robust_regret, "outcomes", ()),
    ("tradeoff", robust_tradeoff, "outcomes", ("budget", "by_months")),
    ("peeling", robust_peeling, "peeling", ()),
)
