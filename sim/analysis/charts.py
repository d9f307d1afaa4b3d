"""Charts of a run or a comparison: functions that take the tables and return a Figure.

Every function takes the pandas tables a run writes (``metrics.parquet`` is the monthly table,
``segments.parquet``, ``vintages.parquet``, ``batches.parquet``) or their concatenation over
runs with ``strategy`` and ``replication`` columns, and returns a
:class:`matplotlib.figure.Figure`. They do no I/O and never touch pyplot's global state, so
they work the same in a notebook, a script or the report writer (which renders them with the
non-interactive Agg backend).

Each chart answers one of the planner's questions: how fast coverage grows (``coverage``,
``speed_risk``), who gets access (``segment_heatmap``, ``visibility_by_version``,
``funnel``), what each batch brings and when it shows (``batch_default``,
``vintage_curves``), and what the book earns and needs (``net_income``, ``capital``).

A chart whose columns are absent raises :class:`MissingData` with one sentence saying what it
needs; the report turns that into a note instead of a chart.

With a ``replication`` column, a line is the mean over replications and its band (or error
bar) the 95% t-interval of that mean. With a ``strategy`` (or ``arm``) column, each strategy is
its own colour (the same colour in every chart: :func:`colours`) or panel. Legends sit outside
the data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from sim.analysis.stats import t_half_width
from sim.errors import GreysimError

__all__ = ["MissingData", "batch_default", "capital", "churn", "colours", "coverage",
           "crossings", "funnel", "net_income", "risk_reach", "segment_heatmap", "speed_risk",
           "theme", "vintage_curves", "visibility_by_version", "CHARTS"]

#: One colour per strategy (matplotlib's tab10: ten hues told apart, no two oranges).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
#: Funnel stages and phases: distinct hues, not shades of one.
STAGE_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#c44e52", "#937860"]
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
TARGET_COLOUR = "#c0392b"
#: Months on book before a vintage's default rate is judged (the 12-month default window).
MATURITY_MONTHS = 12


class MissingData(GreysimError, ValueError):
    """The table lacks what a chart needs; ``str()`` is a one-line note for the report."""


def theme() -> dict:
    """The rc parameters every chart is drawn with (light grid, no top/right spines)."""
    return {
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.facecolor": "white", "axes.edgecolor": "#cccccc", "axes.grid": True,
        "axes.axisbelow": True, "grid.color": "#e6e6e6", "grid.linewidth": 0.8,
        "axes.spines.top": False, "axes.spines.right": False,
        "axes.titlelocation": "left", "axes.titleweight": "bold", "axes.titlesize": 12,
        "axes.labelsize": 10, "axes.labelcolor": "#333333",
        "xtick.labelsize": 9, "ytick.labelsize": 9, "xtick.color": "#333333",
        "ytick.color": "#333333", "legend.fontsize": 9, "legend.frameon": False,
        "font.family": "DejaVu Sans", "svg.hashsalt": "greysim", "figure.dpi": 100,
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
    """The column that names the compared series: ``strategy``, or ``arm`` when a run has
    more than one arm (a run without A/B arms labels everything ``all``)."""
    if "strategy" in df.columns:
        return "strategy"
    if "arm" in df.columns and df["arm"].nunique() > 1:
        return "arm"
    return None


def _keys(df: pd.DataFrame) -> list[str]:
    by = _series(df)
    return ([by] if by else []) + (["replication"] if "replication" in df.columns else [])


def _names(df: pd.DataFrame, by: str | None) -> list:
    return list(dict.fromkeys(df[by])) if by else [None]


def colours(names: Sequence) -> dict:
    """The colour of each strategy, by its place in the list (the same in every chart)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


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
    values = np.asarray(values, dtype=float)
    top = float(np.nanmax(np.abs(values))) if values.size and np.isfinite(values).any() else 0.0
    for div, word in ((1e9, "billions"), (1e6, "millions"), (1e3, "thousands")):
        if top >= div:
            return div, f"{unit}, {word}"
    return 1.0, unit


def _figure(width: float = 10, height: float = 4.6, rows: int = 1, cols: int = 1,
            **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes.ravel()


def _panels(n: int, width: float = 10, row_height: float = 3.4, max_cols: int = 3):
    """A grid of ``n`` panels sharing their axes, at most ``max_cols`` a row."""
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig, axes = _figure(width, row_height * rows + 0.6, rows=rows, cols=cols, sharex=True,
                        sharey=True)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _legend_right(fig: Figure, handles=None, labels=None, **kw) -> None:
    """The legend outside the axes, to the right of the figure."""
    if handles is None:
        handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", **kw)


def _legend_top(fig: Figure, handles=None, labels=None, ncols: int | None = None) -> None:
    """The legend outside the axes, above them."""
    if handles is None:
        handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper left", ncols=ncols or len(labels))


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
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    ax.grid(axis="x", visible=False)


def _pct(ax, axis: str = "y", decimals: int | None = None) -> None:
    fmt = PercentFormatter(1.0, decimals=decimals)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _pretty(label) -> str:
    return str(label).replace("_", " ")


def crossings(monthly: pd.DataFrame, target: float,
              share: str = "invited_share") -> pd.DataFrame:
    """When each run's coverage first reaches ``target``: one row per series and replication
    with ``month`` (months from the start; NaN if never) and ``date``."""
    _need(monthly, ["month", "date", share], "monthly")
    keys = _keys(monthly)
    rows = []
    groups = monthly.groupby(keys, sort=False) if keys else [((), monthly)]
    for key, run in groups:
        key = key if isinstance(key, tuple) else (key,)
        hit = run[run[share] >= target]
        first = hit.iloc[0] if not hit.empty else None
        rows.append({**dict(zip(keys, key, strict=True)),
                     "month": np.nan if first is None else float(first["month"]),
                     "date": pd.NaT if first is None else pd.Timestamp(first["date"]),
                     "horizon": float(run["month"].max())})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- charts


@_themed
def coverage(monthly: pd.DataFrame, *, target: float | None = None, holidays=(),
             shares: Sequence[str] = ("invited_share", "visible_share")) -> Figure:
    """Invited and visible share of the population per month; one colour per strategy.

    ``target`` draws the coverage target and marks when each strategy first reaches it (with
    the range over replications); ``holidays`` (pairs of dates, or the scenario's
    ``calendar.holidays``) shades the holiday windows that widen the samples.
    """
    _need(monthly, ["date", *shares], "monthly")
    by = _series(monthly)
    names = _names(monthly, by)
    colour = colours(names)
    fig, (ax,) = _figure(10, 4.6)
    dates = pd.to_datetime(monthly["date"])
    first, last = dates.min(), dates.max()
    shaded = False
    for start, end in _holiday_windows(holidays):
        if end >= first and start <= last:  # clipped: a window may reach far outside
            ax.axvspan(max(start, first), min(end, last), color=HOLIDAY_COLOUR, alpha=0.35,
                       lw=0, zorder=0)
            shaded = True
    styles = ("-", "--", ":", "-.")
    for name in names:
        sub = monthly if by is None else monthly[monthly[by] == name]
        c = colour[name] if by else PALETTE[0]
        for share, style in zip(shares, styles, strict=False):
            m = _mean_ci(sub, ["date"], share)
            label = NAMES.get(share, share) if by is None else f"{name}: {NAMES.get(share, share)}"
            x = pd.to_datetime(m["date"])
            ax.plot(x, m["mean"], style, color=c, lw=2, label=label)
            if (m["hi"] > m["lo"]).any():
                ax.fill_between(x, m["lo"], m["hi"], color=c, alpha=0.18, lw=0)
    handles, labels = [], []
    if by is None:
        handles, labels = ax.get_legend_handles_labels()
    else:
        handles = [Line2D([], [], color=colour[n], lw=3) for n in names]
        labels = [str(n) for n in names]
        handles += [Line2D([], [], color="#555555", ls=s, lw=2) for s in styles[:len(shares)]]
        labels += [NAMES.get(s, s) for s in shares]
    if target is not None:
        ax.axhline(target, color=TARGET_COLOUR, lw=1.2, ls=(0, (4, 3)),
                   label=f"target {100 * target:.0f}%")
        handles.append(Line2D([], [], color=TARGET_COLOUR, lw=1.2, ls=(0, (4, 3))))
        labels.append(f"target {100 * target:.0f}%")
        if "month" in monthly.columns:
            _mark_crossings(ax, monthly, target, shares[0], by, names, colour)
            handles.append(Line2D([], [], marker="o", color="#333333", ls="", ms=6))
            labels.append(f"reaches the target ({NAMES.get(shares[0], shares[0])})")
    if shaded:
        handles.append(Patch(color=HOLIDAY_COLOUR, alpha=0.35))
        labels.append("holiday window")
    if "replication" in monthly.columns and monthly["replication"].nunique() > 1:
        handles.append(Patch(color="grey", alpha=0.18))
        labels.append("95% interval over replications")
    _legend_right(fig, handles, labels)
    _pct(ax)
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    ax.set_xlabel("month end")
    ax.set_ylabel("share of the population (%)")
    ax.set_title("Coverage growth")
    return fig


def _mark_crossings(ax, monthly, target, share, by, names, colour) -> None:
    """A dot where each strategy's mean first reaches the target, with the range of the
    replications' crossing dates as a horizontal bar."""
    hits = crossings(monthly, target, share)
    for name in names:
        h = hits if by is None else hits[hits[by] == name]
        dates = h["date"].dropna()
        if dates.empty:
            continue
        c = colour[name] if by else PALETTE[0]
        mid = dates.sort_values().iloc[len(dates) // 2]
        lo, hi = dates.min(), dates.max()
        ax.errorbar([mid], [target], xerr=[[mid - lo], [hi - mid]], fmt="o", ms=6, color=c,
                    mec="white", capsize=3, lw=1.5, zorder=5, label="_crossing")
        if by is None:
            ax.annotate(f"reached {mid:%b %Y}", (mid, target), xytext=(6, 8),
                        textcoords="offset points", fontsize=9, color="#333333")


FUNNEL = ("eligible", "invited", "visible", "active", "borrowers")


@_themed
def funnel(monthly: pd.DataFrame) -> Figure:
    """Users at each stage at every quarter's end: eligible (preconditions and score),
    invited, shown the entry, and with the credit model active and borrowers (stages absent
    from the table are left out; the population is stated in the title, not drawn)."""
    _need(monthly, ["date", "quarter", "population", "eligible", "invited"], "monthly")
    stages = [s for s in FUNNEL if s in monthly.columns]
    by = _series(monthly)
    names = _names(monthly, by)
    q = _quarters(monthly, stocks=[*stages, "population"])
    div, unit = _scale(q[stages].to_numpy().ravel(), "real users")
    pdiv, punit = _scale(q["population"].to_numpy(), "real users")
    fig, axes = _figure(10, 3.6 * len(names) ** 0.8 + 0.8, rows=len(names), sharey=True)
    for ax, name in zip(axes, names, strict=True):
        sub = q if by is None else q[q[by] == name]
        labels = list(dict.fromkeys(sub["label"]))
        width = 0.8 / len(stages)
        x = np.arange(len(labels))
        for i, stage in enumerate(stages):
            m = _mean_ci(sub, ["label"], stage).set_index("label").loc[labels]
            ax.bar(x + (i - (len(stages) - 1) / 2) * width, m["mean"] / div, width,
                   color=STAGE_COLOURS[i % len(STAGE_COLOURS)], label=NAMES.get(stage, stage))
        ax.set_xticks(x, labels, fontsize=8)
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(unit)
        ax.set_xlabel("quarter (end month)")
        pop = float(sub["population"].iloc[-1]) / pdiv
        word = punit.split(", ")[-1].removesuffix("s") if pdiv > 1 else "real users"
        ax.set_title("Funnel per quarter" + (f": {name}" if name is not None else "")
                     + f" (population {pop:,.3g} {word})", fontsize=12)
    _legend_top(fig)
    return fig


def _vintage_groups(vintages: pd.DataFrame, batches: pd.DataFrame | None) -> pd.Series:
    """Each vintage row's group: its batch's phase when the batches table has one, else the
    year of its invite date."""
    if batches is not None and {"vintage", "phase"} <= set(batches.columns):
        keys = [k for k in ("arm", "vintage") if k in batches.columns and k in vintages.columns]
        phase = batches.drop_duplicates(keys).set_index(keys)["phase"]
        idx = pd.MultiIndex.from_frame(vintages[keys]) if len(keys) > 1 else vintages[keys[0]]
        found = phase.reindex(idx).to_numpy()
        if not pd.isna(found).all():
            return pd.Series(found, index=vintages.index).fillna("other").astype(str)
    if "vintage_date" in vintages:
        return "batches of " + pd.to_datetime(vintages["vintage_date"]).dt.year.astype(str)
    return pd.Series("all batches", index=vintages.index)


@_themed
def vintage_curves(vintages: pd.DataFrame, batches: pd.DataFrame | None = None,
                   rate: str = "dpd90_cum_rate") -> Figure:
    """Cumulative 90+ rate by months on book, one line per phase (the batches' phases when
    ``batches`` is given, else the invite year): the accounts-weighted mean over its batches,
    with a band over the middle half of the batches, drawn where at least three batches (or
    all of them) holding a quarter of the phase's accounts have reached that month on book.
    Dashed: months on book where most of the phase's weight is younger than the 12-month
    default window, so the rate still rises."""
    _need(vintages, ["vintage", "mob", rate], "vintage", " (it comes with the credit model)")
    by = _series(vintages)
    names = _names(vintages, by)
    v = vintages.assign(group=_vintage_groups(vintages, batches))
    weight = v["accounts"] if "accounts" in v else pd.Series(1.0, index=v.index)
    v = v.assign(w=weight.fillna(0.0), wr=weight.fillna(0.0) * v[rate])
    groups = list(dict.fromkeys(v["group"]))
    gcolour = {g: STAGE_COLOURS[i % len(STAGE_COLOURS)] for i, g in enumerate(groups)}
    by_year = all(str(g).startswith("batches of ") for g in groups)
    title = "Vintage curves by invite year" if by_year else "Vintage curves by phase"
    fig, axes = _panels(len(names), row_height=3.8 if len(names) == 1 else 3.0)
    for ax, name in zip(axes, names, strict=True):
        sub = v if by is None else v[v[by] == name]
        for g in groups:
            cells = sub[sub["group"] == g]
            if cells.empty:
                continue
            g_mob = cells.groupby("mob")
            agg = g_mob.agg(w=("w", "sum"), wr=("wr", "sum"), n=("vintage", "nunique"))
            agg["lo"], agg["hi"] = g_mob[rate].quantile(0.25), g_mob[rate].quantile(0.75)
            # months on book reached by only a few early batches say little about the phase
            agg = agg[(agg["n"] >= min(3, agg["n"].max()))
                      & (agg["w"] >= 0.25 * agg["w"].max())]
            agg["mean"] = agg["wr"] / agg["w"].where(agg["w"] > 0)
            mob = agg.index.to_numpy()
            ax.fill_between(mob, agg["lo"], agg["hi"], color=gcolour[g], alpha=0.15, lw=0)
            seasoned = mob >= MATURITY_MONTHS if "immature" in cells else np.ones_like(mob, bool)
            if "immature" in cells:  # a cell is seasoned once most of its weight is mature
                mature = cells[~cells["immature"].astype(bool)].groupby("mob")["w"].sum()
                seasoned = (mature.reindex(mob).fillna(0) >= 0.5 * agg["w"]).to_numpy()
            ax.plot(mob, agg["mean"].where(~seasoned), color=gcolour[g], lw=1.6, ls="--",
                    label="_young")
            ax.plot(mob, agg["mean"].where(seasoned), color=gcolour[g], lw=1.6, label=str(g))
        _pct(ax, decimals=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_xlim(left=0)
        ax.set_title(str(name) if name is not None else title, fontsize=11 if name else 12)
    if len(names) > 1:
        fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
        fig.supxlabel("months on book", fontsize=10)
        fig.supylabel("cumulative 90+ days past due (% of invited accounts)", fontsize=10)
    else:
        axes[0].set_xlabel("months on book")
        axes[0].set_ylabel("cumulative 90+ days past due\n(% of invited accounts)")
    handles = [Line2D([], [], color=gcolour[g], lw=2) for g in groups]
    labels = [str(g) for g in groups]
    handles += [Line2D([], [], color="grey", lw=1.6), Line2D([], [], color="grey", ls="--"),
                Patch(color="grey", alpha=0.15)]
    labels += ["seasoned (12+ months on book)", "younger than the default window",
               "middle half of the batches"]
    _legend_right(fig, handles, labels)
    return fig


def batch_rates(vintages: pd.DataFrame, batches: pd.DataFrame | None = None,
                rate: str = "dpd90_cum_rate") -> tuple[pd.DataFrame, str]:
    """Each batch's latest cumulative default rate and the denominator it is per: per
    opened line when the vintage table has ``opened`` (defaults over lines opened), else
    per invited user. One row per batch (and series, replication)."""
    keys = _keys(vintages)
    last = vintages.sort_values("mob").groupby([*keys, "vintage"], sort=False).tail(1).copy()
    if {"opened", "accounts"} <= set(last.columns):
        opened = last["opened"].where(last["opened"] > 0)
        last["rate"] = last[rate] * last["accounts"] / opened
        last["_den"] = last["opened"]
        per = "per opened line"
    else:
        last["rate"] = last[rate]
        last["_den"] = last.get("accounts", 1.0)
        per = "per invited user"
    last["group"] = _vintage_groups(last, batches)
    last["seasoned"] = (last["mob"] >= MATURITY_MONTHS) if "immature" not in last else \
        ~last["immature"].astype(bool)
    return last.sort_values([*keys, "vintage"]).reset_index(drop=True), per


@_themed
def batch_default(vintages: pd.DataFrame, batches: pd.DataFrame | None = None,
                  rate: str = "dpd90_cum_rate") -> Figure:
    """Default rate of each invite batch so far, by invite date: a dot per batch coloured by
    phase (or strategy), hollow while the batch is younger than the default window, and the
    phase's mean as a bar of its seasoned batches. The axis says the denominator."""
    _need(vintages, ["vintage", "mob", rate], "vintage", " (it comes with the credit model)")
    rows, per = batch_rates(vintages, batches, rate)
    by = _series(rows)
    fig, (ax,) = _figure(10, 4.4)
    if by is not None:  # a comparison: one colour per strategy, pooled per invite quarter
        names = _names(vintages, by)
        colour = colours(names)
        rows = rows.assign(quarter=pd.to_datetime(rows["vintage_date"]).dt.to_period("Q")
                           .dt.end_time.dt.normalize(), num=rows["rate"] * rows["_den"])
        for name in names:
            sub = rows[rows[by] == name]
            m = sub.groupby("quarter").agg(num=("num", "sum"), den=("_den", "sum"),
                                           seasoned=("seasoned", "all"))
            m["rate"] = m["num"] / m["den"].where(m["den"] > 0)
            x = pd.to_datetime(m.index)
            s = m["seasoned"].to_numpy()
            ax.plot(x, m["rate"], "-", color=colour[name], lw=1.2, alpha=0.6, label="_line")
            ax.scatter(x[s], m["rate"][s], s=28, color=colour[name], label=name, zorder=3)
            ax.scatter(x[~s], m["rate"][~s], s=28, facecolor="white", edgecolor=colour[name],
                       label="_young", zorder=3)
    else:
        groups = list(dict.fromkeys(rows["group"]))
        for i, g in enumerate(groups):
            sub = rows[rows["group"] == g]
            c = STAGE_COLOURS[i % len(STAGE_COLOURS)]
            x = pd.to_datetime(sub["vintage_date"])
            s = sub["seasoned"].to_numpy()
            ax.scatter(x[s], sub["rate"][s], s=24, color=c, label=str(g))
            ax.scatter(x[~s], sub["rate"][~s], s=24, facecolor="white", edgecolor=c,
                       label="_young")
            if s.any():
                mean = float(np.average(sub["rate"][s].fillna(0), weights=sub.get(
                    "opened", sub.get("accounts", pd.Series(1.0, index=sub.index)))[s]))
                ax.hlines(mean, x[s].min(), x[s].max(), color=c, lw=2.5, alpha=0.6,
                          label="_mean")
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], marker="o", ls="", color="grey"),
                Line2D([], [], marker="o", ls="", mfc="white", mec="grey")]
    labels += ["seasoned (12+ months on book)", "younger: still rising"]
    if by is None:
        handles.append(Line2D([], [], color="grey", lw=2.5, alpha=0.6))
        labels.append("phase mean of seasoned batches")
    _legend_right(fig, handles, labels)
    _pct(ax, decimals=1)
    ax.set_ylim(bottom=0)
    _date_axis(ax)
    ax.set_xlabel("invite date of the batch" + (" (pooled by quarter)" if by else ""))
    ax.set_ylabel(f"defaulted (90+ days), {per}")
    ax.set_title("Default rate by batch so far")
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


def _horizon_rows(table: pd.DataFrame) -> pd.DataFrame:
    if "month" not in table.columns:
        return table
    return table[table["month"] == table.groupby("strategy")["month"].transform("max")]


@_themed
def risk_reach(table: pd.DataFrame, *, reach: str = "invited_share",
               risk: str = "default_rate_12m") -> Figure:
    """Each strategy's coverage at the horizon against its 12-month default rate, with 95%
    intervals over replications, and the efficient frontier (when it joins two or more).

    ``table`` is the comparison's monthly table (its last month is the horizon) or one row per
    strategy and replication. Both axes start at 0, so small differences look small.
    """
    if table is not None and "strategy" not in table.columns:
        raise MissingData("a single run has no strategies to set against each other "
                          "(it is drawn for a comparison of strategies)")
    _need(table, ["strategy", reach, risk], "monthly", " (it comes with the credit model)")
    rows = _horizon_rows(table)
    r = _mean_ci(rows, ["strategy"], risk).set_index("strategy")
    c = _mean_ci(rows, ["strategy"], reach).set_index("strategy")
    points = pd.DataFrame({"risk": r["mean"], "reach": c["mean"]})
    colour = colours(points.index)
    fig, (ax,) = _figure(9, 5.0)
    edge = frontier(points)
    if len(edge) > 1:
        ax.plot(edge["risk"], edge["reach"], "-", color="#7f8c8d", lw=1.5, zorder=1,
                label="efficient frontier")
    for name in points.index:
        ax.errorbar(points.loc[name, "risk"], points.loc[name, "reach"],
                    xerr=[[r.loc[name, "mean"] - r.loc[name, "lo"]],
                          [r.loc[name, "hi"] - r.loc[name, "mean"]]],
                    yerr=[[c.loc[name, "mean"] - c.loc[name, "lo"]],
                          [c.loc[name, "hi"] - c.loc[name, "mean"]]],
                    fmt="o", ms=7, color=colour[name], capsize=3, lw=1.2, zorder=3, label=name)
        ax.annotate(name, (points.loc[name, "risk"], points.loc[name, "reach"]),
                    xytext=(7, 6), textcoords="offset points", fontsize=9)
    _pct(ax, "x", decimals=1)
    _pct(ax, "y", decimals=0)
    ax.set_xlim(0, max(float(r["hi"].max()), 1e-4) * 1.2)
    ax.set_ylim(0, max(float(c["hi"].max()), 1e-4) * 1.15)
    ax.set_xlabel("12-month default rate (%)")
    ax.set_ylabel(f"coverage at the horizon ({NAMES.get(reach, reach)}, % of population)")
    ax.set_title("Risk against reach")
    if len(edge) > 1:
        _legend_right(fig, [Line2D([], [], color="#7f8c8d", lw=1.5)], ["efficient frontier"])
    return fig


#: The verdict's risk measure in a comparison's per-run table (sim.analysis.metrics).
MATURED_RISK = "default_12mob_opened_peak"


@_themed
def speed_risk(monthly: pd.DataFrame, *, target: float | None = None,
               share: str = "invited_share", risk: str = "default_rate_12m",
               budget: float | None = None, runs: pd.DataFrame | None = None) -> Figure:
    """How soon each strategy reaches the coverage target (x: months, mean and range over
    replications) against its risk (y, 95% interval), the default budget as a line, and the
    frontier of strategies no other beats on both (drawn when it joins two or more). A
    strategy that never reaches the target sits at the right edge, marked "never".

    The risk is the verdict's maturity-matched measure when the comparison's per-run table
    (``runs``) has it (default by 12 months on book per opened line, its peak along the
    path), so the chart and the verdict judge the same figure; otherwise the monthly
    table's ``risk`` column at the horizon."""
    if monthly is not None and "strategy" not in monthly.columns:
        raise MissingData("a single run has no strategies to set against each other "
                          "(it is drawn for a comparison of strategies)")
    _need(monthly, ["strategy", "month", "date", share, risk], "monthly",
          " (it comes with the credit model)")
    if target is None:
        raise MissingData("no coverage target (summary.json 'target' or the scenario's "
                          "reporting.target_coverage)")
    hits = crossings(monthly, target, share)
    matured = runs is not None and MATURED_RISK in runs.columns
    if matured:
        r = _mean_ci(runs, ["strategy"], MATURED_RISK).set_index("strategy")
    else:
        r = _mean_ci(_horizon_rows(monthly), ["strategy"], risk).set_index("strategy")
    names = list(r.index)
    colour = colours(names)
    horizon = float(hits["horizon"].max())
    never_x = horizon + 2
    fig, (ax,) = _figure(10, 4.8)
    points = {}
    for name in names:
        h = hits[hits["strategy"] == name]["month"]
        reached = h.dropna()
        y, lo, hi = r.loc[name, "mean"], r.loc[name, "lo"], r.loc[name, "hi"]
        if len(reached) < len(h) / 2:  # most replications never get there
            x, xerr = never_x, None
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt=">", ms=9, color=colour[name],
                        capsize=3, lw=1.2, zorder=3, label=name)
            ax.annotate(f"{name} (never)", (x, y), xytext=(-8, 8), textcoords="offset points",
                        fontsize=9, ha="right")
            continue
        x = float(reached.mean())
        xerr = [[x - reached.min()], [reached.max() - x]]
        ax.errorbar([x], [y], xerr=xerr, yerr=[[y - lo], [hi - y]], fmt="o", ms=8,
                    color=colour[name], capsize=3, lw=1.2, zorder=3, label=name)
        ax.annotate(name, (x, y), xytext=(7, 6), textcoords="offset points", fontsize=9)
        points[name] = (x, y)
    handles, labels = ax.get_legend_handles_labels()
    if budget is not None:
        ax.axhline(budget, color=TARGET_COLOUR, ls=(0, (4, 3)), lw=1.2)
        handles.append(Line2D([], [], color=TARGET_COLOUR, ls=(0, (4, 3)), lw=1.2))
        labels.append(f"default budget {100 * budget:.1f}%")
    if len(points) > 1:
        pts = pd.DataFrame(points, index=["months", "risk"]).T
        # faster (fewer months) and safer (lower risk) is better
        edge = frontier(pts.assign(reach=-pts["months"]), x="risk", y="reach")
        if len(edge) > 1:
            edge = edge.sort_values("months")
            ax.plot(edge["months"], edge["risk"], "-", color="#7f8c8d", lw=1.5, zorder=1)
            handles.append(Line2D([], [], color="#7f8c8d", lw=1.5))
            labels.append("frontier: none faster for less risk")
    ax.axvline(horizon, color="#999999", lw=0.8, ls=":")
    ax.set_xlim(0, never_x + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top = max(float(r["hi"].max()), budget or 0.0, 1e-4)
    ax.set_ylim(0, top * 1.2)
    _pct(ax, decimals=2 if top * 1.2 < 0.03 else 1)  # 0.25% steps must not print as 0.2%
    ax.set_xlabel(f"months to reach {100 * target:.0f}% {NAMES.get(share, share)} coverage "
                  "(mean, range over replications; right of the dotted line: never)")
    ax.set_ylabel("default by 12 months on book\n(per opened line, 95% interval)" if matured
                  else "12-month default rate at the horizon\n(per borrower, 95% interval)")
    ax.set_title("Speed against risk")
    _legend_right(fig, handles, labels)
    return fig


def _ratio_cells(cells: pd.DataFrame, value: str) -> pd.Series:
    if value == "visibility":  # the entry shown among invited users
        return cells["visible"] / cells["invited"].where(cells["invited"] > 0)
    return cells[value]


VALUE_NAMES = {"access_rate": "access rate", "visibility": "entry visible among invited",
               "visible_rate": "visible rate"}


@_themed
def segment_heatmap(segments: pd.DataFrame, rows: str = "archetype", cols: str = "region",
                    *, value: str = "access_rate", month: int | None = None) -> Figure:
    """``value`` of every ``rows`` x ``cols`` cell at ``month`` (default: the last), from the
    segment table's crossed dimension ``"rows x cols"`` (scenario ``reporting.crosses``); one
    panel per strategy. ``value="visibility"`` is visible over invited users."""
    _need(segments, ["dimension", "value", "month",
                     *(("visible", "invited") if value == "visibility" else (value,))],
          "segment")
    dim = f"{rows} x {cols}"
    cells = segments[segments["dimension"] == dim]
    if cells.empty:
        raise MissingData(f"the segment table has no '{dim}' cross "
                          f"(add [{rows}, {cols}] to the scenario's reporting.crosses)")
    month = int(cells["month"].max()) if month is None else month
    cells = cells[cells["month"] == month]
    cells = cells.assign(v=_ratio_cells(cells, value))
    by = _series(cells)
    names = _names(cells, by)
    split = cells["value"].str.split(" x ", n=1, expand=True)
    cells = cells.assign(row=split[0].map(_pretty), col=split[1].map(_pretty))
    row_order = list(dict.fromkeys(cells["row"]))
    col_order = list(dict.fromkeys(cells["col"]))
    per_row = min(len(names), 3)
    n_rows = -(-len(names) // per_row)
    width = min(3.2 + 1.25 * len(col_order), 10) if len(names) == 1 else 10
    fig, axes = _figure(width, (1.0 + 0.5 * len(row_order)) * n_rows + 0.4, rows=n_rows,
                        cols=per_row, sharey=True)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    date = pd.Timestamp(cells["date"].iloc[0]) if "date" in cells else None
    vmax = float(np.nanmax(cells["v"])) if cells["v"].notna().any() else 1.0
    cmap = mpl.colormaps["YlGnBu"]
    image = None
    for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
        sub = cells if by is None else cells[cells[by] == name]
        grid = (sub.groupby(["row", "col"], sort=False)["v"].mean().unstack("col")
                .reindex(index=row_order, columns=col_order)
                .dropna(how="all").dropna(axis=1, how="all"))  # segments with nobody in them
        data = grid.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=0, vmax=vmax or 1.0,
                          aspect="auto")
        for (r, c), v in np.ndenumerate(data):
            if not np.isnan(v):
                ax.text(c, r, f"{v:.0%}", ha="center", va="center", fontsize=9,
                        color="white" if v > 0.6 * (vmax or 1.0) else "#1f2d3a")
        ax.set_xticks(range(len(grid.columns)),
                      [str(c).replace(" ", "\n") if len(names) > 1 else c for c in grid.columns])
        ax.set_yticks(range(len(grid.index)), list(grid.index))
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(NAMES.get(cols, cols))
        ax.set_ylabel(NAMES.get(rows, rows) if i % per_row == 0 else "")
        title = f"{VALUE_NAMES.get(value, value).capitalize()} by {NAMES.get(rows, rows)} " \
                f"and {NAMES.get(cols, cols)}"
        if name is not None:
            title = f"{name}"
        elif date is not None:
            title += f", {date:%b %Y}"
        ax.set_title(title, fontsize=11 if name is not None else 12)
    bar = fig.colorbar(image, ax=list(axes[:len(names)]), shrink=0.9, pad=0.01,
                       format=PercentFormatter(1.0, decimals=None))
    bar.set_label(f"{VALUE_NAMES.get(value, value)} (%)")
    return fig


@_themed
def visibility_by_version(segments: pd.DataFrame, month: int | None = None) -> Figure:
    """Per client version at ``month`` (default: the last): the share of invited users who
    can see the entry (the point of version grey: 89% / 57% / 12% / 0% in the brief), beside
    the share of the version's users invited; grouped by strategy in a comparison."""
    _need(segments, ["dimension", "value", "month", "invited", "visible", "population"],
          "segment")
    cells = segments[segments["dimension"] == "version"]
    if cells.empty:
        raise MissingData("the segment table has no 'version' dimension")
    month = int(cells["month"].max()) if month is None else month
    cells = cells[cells["month"] == month]
    by = _series(cells)
    names = _names(cells, by)
    colour = colours(names)
    versions = list(dict.fromkeys(cells["value"]))
    fig, axes = _figure(10, 3.8, cols=2)
    width = 0.8 / len(names)
    x = np.arange(len(versions))
    for i, name in enumerate(names):
        sub = cells if by is None else cells[cells[by] == name]
        g = sub.groupby("value", sort=False)[["visible", "invited", "population"]].sum()
        g = g.reindex(versions)
        seen = g["visible"] / g["invited"].where(g["invited"] > 0)
        invited = g["invited"] / g["population"].where(g["population"] > 0)
        c = colour[name] if by else PALETTE[0]
        off = (i - (len(names) - 1) / 2) * width
        label = str(name) if by else "_"
        bars = axes[0].bar(x + off, seen, width, color=c, label=label)
        axes[1].bar(x + off, invited, width, color=c if by else PALETTE[1], label="_")
        if len(names) <= 2:
            axes[0].bar_label(bars, [("" if np.isnan(v) else f"{v:.0%}") for v in seen],
                              fontsize=8, padding=2)
    for ax, title, ylabel in (
            (axes[0], "Entry visible, by client version", "visible among invited users (%)"),
            (axes[1], "Invited, by client version", "invited among the version's users (%)")):
        ax.set_xticks(x, versions)
        ax.set_xlabel("client version")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=12)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
        _pct(ax)
    if by:
        _legend_right(fig)
    return fig


@_themed
def churn(monthly: pd.DataFrame) -> Figure:
    """Access gained and lost at each quarter's re-evaluation, in real users."""
    _need(monthly, ["date", "quarter", "gained_access", "lost_access"], "monthly")
    q = _quarters(monthly, flows=["gained_access", "lost_access"])
    by = _series(q)
    names = _names(q, by)
    colour = colours(names)
    labels = list(dict.fromkeys(q["label"]))
    div, unit = _scale(q[["gained_access", "lost_access"]].to_numpy().ravel(), "real users")
    fig, (ax,) = _figure(10, 4.4)
    x = np.arange(len(labels))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        sub = q if by is None else q[q[by] == name]
        offset = (i - (len(names) - 1) / 2) * width
        gained = _mean_ci(sub, ["label"], "gained_access").set_index("label").loc[labels]
        lost = _mean_ci(sub, ["label"], "lost_access").set_index("label").loc[labels]
        c = colour[name] if by else PALETTE[2]
        prefix = "" if name is None else f"{name}: "
        ax.bar(x + offset, gained["mean"] / div, width, color=c, label=f"{prefix}gained")
        ax.bar(x + offset, -lost["mean"] / div, width,
               color=c if by else PALETTE[3], alpha=0.55 if by else 1.0,
               hatch="//" if by else None, label=f"{prefix}lost")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.grid(axis="x", visible=False)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    ax.set_xlabel("quarter (end month)")
    ax.set_ylabel(f"{unit}: gained (up), lost (down)")
    ax.set_title("Re-evaluation churn per quarter")
    if by:
        handles = [Patch(color=colour[n]) for n in names]
        handles += [Patch(facecolor="#999999"), Patch(facecolor="#999999", alpha=0.55,
                                                      hatch="//")]
        _legend_right(fig, handles, [str(n) for n in names] + ["gained", "lost"])
    else:
        _legend_top(fig)
    return fig


@_themed
def capital(monthly: pd.DataFrame) -> Figure:
    """Outstanding balance per month against the capital limit; the months where the limit
    bound are shaded (a run) or marked under each strategy's line (a comparison)."""
    _need(monthly, ["date", "outstanding"], "monthly", " (it comes with the credit model)")
    by = _series(monthly)
    names = _names(monthly, by)
    colour = colours(names)
    cols = ["outstanding"] + (["capital_limit"] if "capital_limit" in monthly else [])
    div, unit = _scale(monthly[cols].to_numpy().ravel(), "CNY")
    fig, (ax,) = _figure(10, 4.4)
    bound_label = "capital limit binding"
    limits = {}
    for k, name in enumerate(names):
        sub = monthly if by is None else monthly[monthly[by] == name]
        c = colour[name] if by else PALETTE[0]
        m = _mean_ci(sub, ["date"], "outstanding")
        x = pd.to_datetime(m["date"])
        ax.plot(x, m["mean"] / div, color=c, lw=2,
                label="outstanding balance" if name is None else f"{name}")
        if (m["hi"] > m["lo"]).any():
            ax.fill_between(x, m["lo"] / div, m["hi"] / div, color=c, alpha=0.18, lw=0)
        if "capital_limit" in sub:
            limits[name] = sub.groupby("date", sort=True)["capital_limit"].first()
        if "capital_bound" not in sub:
            continue
        share = sub.groupby("date", sort=True)["capital_bound"].mean()
        for d, s in share[share > 0].items():
            d = pd.Timestamp(d)
            if by is None:
                ax.axvspan(d - pd.offsets.MonthEnd(1), d, color="#e74c3c", alpha=0.12, lw=0,
                           label=bound_label)
                bound_label = "_bound"
            else:  # a strip per strategy along the top, as dark as the share of runs bound
                ax.plot([d - pd.offsets.MonthEnd(1), d], [1 - 0.03 * (k + 1)] * 2,
                        transform=ax.get_xaxis_transform(), color=colour[name], lw=4,
                        alpha=0.3 + 0.7 * float(s), solid_capstyle="butt", label="_bound")
    distinct = {tuple(v.fillna(-1).round(0)) for v in limits.values()}
    for name, lim in limits.items():
        if lim.notna().any():
            one = len(distinct) == 1
            ax.plot(pd.to_datetime(lim.index), lim / div,
                    color="#c0392b" if one or by is None else colour[name], ls="--", lw=1.5,
                    drawstyle="steps-post",
                    label="capital limit" if one or by is None else f"{name}: capital limit")
            if one:
                break
    ax.set_ylim(bottom=0)
    if by:  # head room for the strips of bound months
        ax.set_ylim(top=ax.get_ylim()[1] * (1 + 0.04 * (len(names) + 1)))
    _date_axis(ax)
    ax.set_xlabel("month end" + ("\n(strips along the top: months the limit bound, darker = "
                                 "in more replications)" if by else ""))
    ax.set_ylabel(f"balance ({unit})")
    ax.set_title("Outstanding balance against the capital limit")
    _legend_right(fig)
    return fig


#: The parts of net income, with the sign each takes: net = revenue - loss - cost.
INCOME_PARTS = (("interest_revenue", "interest revenue", 1), ("charge_off_loss",
                "charge-off loss", -1), ("funding_cost", "funding cost", -1))


@_themed
def net_income(monthly: pd.DataFrame) -> Figure:
    """Net income per quarter. For one run, stacked bars of its parts (interest revenue up;
    charge-off loss and funding cost down, so the bars add up to the net income marked on
    them); for a comparison, each strategy's net income with its 95% interval."""
    _need(monthly, ["date", "quarter", "net_income"], "monthly",
          " (it comes with the credit model)")
    by = _series(monthly)
    parts = [p for p in INCOME_PARTS if p[0] in monthly] if by is None else []
    cols = [p[0] for p in parts] + ["net_income"]
    q = _quarters(monthly, flows=cols)
    labels = list(dict.fromkeys(q["label"]))
    div, unit = _scale(q[cols].to_numpy().ravel(), "CNY")
    fig, (ax,) = _figure(10, 4.4)
    x = np.arange(len(labels))
    if by is None:
        m = q.groupby("label", sort=False)[cols].mean().loc[labels] / div
        up = np.zeros(len(labels))
        down = np.zeros(len(labels))
        colour = {"interest_revenue": PALETTE[0], "charge_off_loss": PALETTE[3],
                  "funding_cost": PALETTE[1]}
        for col, label, sign in parts:
            v = m[col].abs().to_numpy() * sign
            base = up if sign > 0 else down
            ax.bar(x, v, 0.6, bottom=base, color=colour[col], label=label)
            if sign > 0:
                up = up + v
            else:
                down = down + v
        ax.plot(x, m["net_income"], "D", color="#2c3e50", ms=7, label="net income")
    else:
        names = _names(q, by)
        colour = colours(names)
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            m = _mean_ci(q[q[by] == name], ["label"], "net_income").set_index("label").loc[labels]
            ax.bar(x + (i - (len(names) - 1) / 2) * width, m["mean"] / div, width,
                   color=colour[name], label=name,
                   yerr=(m["hi"] - m["lo"]) / 2 / div if (m["n"] > 1).any() else None,
                   capsize=2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("quarter (end month)")
    ax.set_ylabel(f"per quarter ({unit})")
    ax.set_title("Net income per quarter" + (" by strategy" if by else ""))
    _legend_right(fig)
    return fig


#: Every chart the report draws: (file stem, title, function, table it reads, keywords).
#: A function that also takes ``batches``, ``target``, ``holidays`` or ``budget`` gets them
#: from the folder.
CHARTS = (
    ("coverage", "Coverage growth", coverage, "monthly", {}),
    ("speed_risk", "Speed against risk", speed_risk, "monthly", {}),
    ("access_archetype_region", "Access rate: archetype x region tier", segment_heatmap,
     "segments", {"rows": "archetype", "cols": "region"}),
    ("visibility_version", "Entry visibility by client version", visibility_by_version,
     "segments", {}),
    ("funnel", "Funnel per quarter", funnel, "monthly", {}),
    ("churn", "Re-evaluation churn", churn, "monthly", {}),
    ("batch_default", "Default rate by batch", batch_default, "vintages", {}),
    ("vintages", "Vintage curves by phase", vintage_curves, "vintages", {}),
    ("net_income", "Net income", net_income, "monthly", {}),
    ("capital", "Outstanding balance and capital limit", capital, "monthly", {}),
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
    _need(outcomes, ["strategy", "time_to_target_months", "default_12mob_opened",
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
        ax.scatter(x[ok], mine["default_12mob_opened"][ok], s=18, color=PALETTE[2],
                   label="satisfices")
        ax.scatter(x[~ok], mine["default_12mob_opened"][~ok], s=18, color=PALETTE[3],
                   marker="x", label="fails")
        if budget is not None:
            ax.axhline(budget, color="grey", ls="--", lw=1)
        if by_months is not None:
            ax.axvline(by_months, color="grey", ls=":", lw=1)
        ax.axvline(edge, color="lightgrey", lw=4, alpha=0.5)
        ax.set_title(name, fontsize=11)
        ax.set_xlabel("months to target (right edge: never)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
    axes[0].set_ylabel("default at 12 months on book\n(per opened line)")
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
