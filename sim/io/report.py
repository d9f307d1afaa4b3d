"""The report: one self-contained ``report.html`` of a run or comparison folder.

The report reads only the folder's files, so ``greysim report DIR`` gives the same page as the
one ``greysim run`` writes: ``metrics.parquet`` (the monthly table), ``segments.parquet``,
``batches.parquet`` and ``vintages.parquet`` when present, ``summary.json`` and
``manifest.json``. A comparison folder holds the same tables with ``strategy`` (and
``replication``) columns, and may add ``comparison.parquet`` (one row per strategy, shown as a
table) and, in ``summary.json``, a ``verdict`` sentence and the ``target`` coverage.

Charts are rendered with the non-interactive Agg backend and embedded as base64 PNG; they are
also written to ``charts/<name>.png`` and ``.svg``. The page loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl
import pandas as pd
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sim.analysis import charts
from sim.errors import GreysimError

REPORT = "report.html"
CHARTS_DIR = "charts"
#: Table name -> file stem in a run folder.
TABLES = {"monthly": "metrics", "segments": "segments", "batches": "batches",
          "vintages": "vintages", "comparison": "comparison"}


class ReportError(GreysimError, RuntimeError):
    """A folder the report cannot be made from; ``str()`` is the message users see."""


@dataclass
class Folder:
    """What a run or comparison folder holds."""

    path: Path
    tables: dict[str, pd.DataFrame]
    summary: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)

    @property
    def scenario(self) -> dict:
        """The resolved scenario (the first one of a comparison)."""
        if "scenario" in self.manifest:
            return self.manifest["scenario"]
        scenarios = self.manifest.get("scenarios") or {}
        return next(iter(scenarios.values()), {}) if isinstance(scenarios, dict) else {}

    @property
    def target(self) -> float | None:
        if self.summary.get("target") is not None:
            return float(self.summary["target"])
        return (self.scenario.get("reporting") or {}).get("target_coverage")

    @property
    def holidays(self) -> list[dict]:
        return (self.scenario.get("calendar") or {}).get("holidays") or []


@dataclass
class Chart:
    """One chart of the report: a figure, or the note saying why it was not drawn."""

    name: str
    title: str
    figure: Figure | None = None
    note: str = ""
    caption: str = ""
    _png: bytes | None = None

    @property
    def png(self) -> bytes:
        """The figure as PNG, rendered once for both the page and ``charts/``."""
        if self._png is None:
            self._png = png(self.figure)
        return self._png


def load_folder(path: Path) -> Folder:
    """Read a run or comparison folder; :class:`ReportError` if it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path} is not a folder; give a run folder written by "
                          f"'greysim run' (outputs/<scenario>/<run-id>) or a comparison folder")
    if not (path / "metrics.parquet").exists():
        raise ReportError(f"{path} holds no metrics.parquet, so it is not a greysim run or "
                          f"comparison folder")
    tables = {}
    for name, stem in TABLES.items():
        file = path / f"{stem}.parquet"
        if file.exists():
            try:
                tables[name] = pd.read_parquet(file)
            except Exception as exc:  # a truncated or foreign file: say which
                raise ReportError(f"{file} cannot be read as Parquet ({exc})") from None
    from sim.io.reading import read_manifest, read_summary

    return Folder(path, tables, read_summary(path / "summary.json"),
                  read_manifest(path / "manifest.json"))


def _json(file: Path) -> dict:
    if not file.exists():
        return {}
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{file} is not valid JSON ({exc})") from None


#: What each chart shows, in the planner's words, under the chart.
CAPTIONS = {
    "coverage": "Share of the whole population invited (solid) and able to see the entry "
                "(dashed) at each month end. Shaded: holiday windows, when batches widen. "
                "Dashed red: the coverage target (reporting.target_coverage).",
    "funnel": "How many real users reach each stage at each quarter's end: the population, "
              "those eligible (preconditions and score), invited, and shown the entry; with the "
              "credit model also active and borrowing.",
    "vintages": "Each invite batch (vintage) is a line: the share of its accounts that reached "
                "90+ days past due by months on book. Faded: months too young to judge.",
    "risk_reach": "Each strategy's coverage at the horizon against its 12-month default rate, "
                  "with 95% intervals over replications. Strategies on the grey line are "
                  "efficient: none other reaches more users for no more risk.",
    "access_archetype_region": "Share of each archetype and region tier with access at the "
                               "last month. Closed regions stay at 0%.",
    "access_version_device": "Share of users with access by client version and device grade "
                             "at the last month. Batches skip clients below the phase's minimum "
                             "version.",
    "churn": "At each quarter's re-evaluation everyone is re-scored: users who now pass gain "
             "access (up), users who fail lose it (down).",
    "capital": "Outstanding balance against the capital limit; shaded months are those in "
               "which the limit bound and new invitations stopped.",
    "net_income": "Interest revenue, charge-off loss and net income of each quarter.",
}


def draw(folder: Folder) -> list[Chart]:
    """Every chart of :data:`sim.analysis.charts.CHARTS` the folder's tables allow."""
    out = []
    for name, title, fn, table, kwargs in charts.CHARTS:
        kw = dict(kwargs)
        if fn is charts.coverage:
            kw.update(target=folder.target, holidays=folder.holidays)
        chart = Chart(name, title, caption=CAPTIONS.get(name, ""))
        try:
            chart.figure = fn(folder.tables.get(table), **kw)
            chart._png = png(chart.figure)  # render now: some failures show only when drawn
        except charts.MissingData as exc:
            chart.figure, chart.note = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a chart bug must not cost the run
            chart.figure = None
            chart.note = f"could not be drawn ({type(exc).__name__}: {exc}); please report this"
        out.append(chart)
    return out


def png(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot is set to
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def svg(fig: Figure) -> bytes:
    """The figure as SVG, byte-identical for an identical figure.

    matplotlib draws its clip-path ids from ``svg.hashsalt`` when saving, random unless set,
    so it is fixed here (the chart theme's rc context is gone by the time charts are saved).
    """
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    with mpl.rc_context({"svg.hashsalt": "greysim"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML

CSS = """
:root { --ink:#1f2d3a; --muted:#5d6d7e; --line:#d5dbe1; --accent:#0173b2; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0; background: #f5f7f9; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 36px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 18px; }
.verdict { border-left: 5px solid #029e73; background: #eaf7f2; padding: 12px 16px;
           font-size: 1.1rem; margin: 16px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
         gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .v { font-size: 1.45rem; font-weight: 600; }
.card .k { color: var(--muted); font-size: 0.85rem; }
figure { margin: 18px 0 26px; }
figure img { width: 100%; height: auto; border: 1px solid #eef1f4; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
.notes { color: var(--muted); font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 8px 0 12px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; }
th { background: #eef2f6; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
details pre { background: #f7f9fb; border: 1px solid var(--line); padding: 12px;
              font-size: 0.8rem; overflow: auto; max-height: 600px; }
footer { color: var(--muted); font-size: 0.8rem; margin-top: 40px; }
"""

QUARTER_COLUMNS = ("quarter", "date", "eligible_share", "invited_share", "visible_share",
                   "gained_access", "lost_access", "gained_rate", "lost_rate", "churn_rate")
LABELS = {"eligible_share": "eligible", "invited_share": "invited",
          "visible_share": "visible (entry shown)", "gained_access": "access gained",
          "lost_access": "access lost", "gained_rate": "gained %", "lost_rate": "lost %",
          "churn_rate": "churn %", "score_auc": "score AUC", "batches": "invite batches",
          "mean_monthly_hazard": "mean monthly default hazard",
          "population": "population (real users)",
          "default_rate_12m": "12-month default rate"}


def fmt(key: str, value) -> str:
    """A table cell: shares and rates in %, real-user counts and money in millions."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | float) and any(w in key for w in ("share", "rate", "pct",
                                                                   "hazard")):
        return f"{100 * value:.{2 if abs(value) < 0.01 else 1}f}%"
    if isinstance(value, float) and (abs(value) >= 1e3 or value == 0):
        if abs(value) >= 1e9:
            return f"{value / 1e9:,.2f} bn"
        return "0" if value == 0 else f"{value / 1e6:,.2f} M"
    if isinstance(value, float):
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _table(rows: list[dict] | pd.DataFrame, caption: str = "") -> str:
    df = pd.DataFrame(rows)
    if df.empty:
        return ""
    head = "".join(f"<th>{html.escape(_label(str(c)))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt(str(c), _py(v)))}</td>"
                         for c, v in zip(df.columns, row, strict=True)) + "</tr>"
        for row in df.itertuples(index=False)
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


#: Metrics of `greysim compare`'s long table shown in the report (the file has them all).
HEADLINE_METRICS = ("quarters_to_target", "default_rate_12m", "loss_rate", "net_income",
                    "peak_outstanding")


def comparison_view(table: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """One row per strategy from the long ``comparison.parquet`` (strategy x metric rows):
    final coverage and the headline metrics as 'value [low, high]', where value is the mean
    (``column="mean"``) or the paired difference to the first strategy (``"diff"``)."""
    if "metric" not in table.columns:
        return table
    finals = [m for m in dict.fromkeys(table.metric) if "_share_q" in m]
    last = max((int(m.rsplit("_q", 1)[1]) for m in finals), default=None)
    keep = [m for m in (f"invited_share_q{last}", f"visible_share_q{last}", *HEADLINE_METRICS)
            if m in set(table.metric)]
    low, high = ("ci_low", "ci_high") if column == "mean" else ("diff_ci_low", "diff_ci_high")
    strategies = list(dict.fromkeys(table.strategy))
    rows = []
    for name in strategies if column == "mean" else strategies[1:]:
        sub = table[table.strategy == name].set_index("metric")
        row = {"strategy": name}
        for m in keep:
            r = sub.loc[m]
            value, lo, hi = (fmt(m, _py(r[c])) for c in (column, low, high))
            row[m] = value if lo in ("", "nan") else f"{value} [{lo}, {hi}]"
        rows.append(row)
    return pd.DataFrame(rows)


def _py(v):
    if isinstance(v, pd.Timestamp):
        return str(v.date())
    return v.item() if hasattr(v, "item") else v


def _cards(summary: dict) -> str:
    items = [(k, summary.get("final", {}).get(k)) for k in
             ("invited_share", "visible_share", "eligible_share")]
    items += [(k, v) for k, v in summary.items()
              if k not in ("final", "quarters", "seed", "users", "weight", "months",
                           "score_auc_horizon_months", "verdict", "target")
              and isinstance(v, int | float) and not isinstance(v, bool)]
    cells = [f'<div class="card"><div class="v">{html.escape(fmt(k, v))}</div>'
             f'<div class="k">{html.escape(_label(k))}</div></div>'
             for k, v in items if v is not None]
    return f'<div class="cards">{"".join(cells)}</div>'


def render(folder: Folder, drawn: list[Chart]) -> str:
    """The report page as one HTML string (images inline)."""
    s, m = folder.summary, folder.manifest
    name = s.get("scenario") or m.get("scenario_name") or folder.path.name
    facts = [f"strategy {s['strategy']}" if s.get("strategy") else "",
             f"seed {s['seed']}" if "seed" in s else "",
             f"{s['users']:,} simulated users x {s['weight']:g} = "
             f"{s['users'] * s['weight'] / 1e6:,.0f} M real users"
             if "users" in s and "weight" in s else "",
             f"{s['months']} months" if "months" in s else "",
             f"made {m['created_utc'].replace('T', ' ').replace('+00:00', ' UTC')}"
             if "created_utc" in m else ""]
    parts = [f"<h1>greysim report: {html.escape(str(name))}</h1>",
             f'<p class="sub">{html.escape(" · ".join(f for f in facts if f))}</p>']
    if s.get("verdict"):
        parts.append(f'<div class="verdict"><b>Verdict:</b> {html.escape(str(s["verdict"]))}'
                     "</div>")
    if "</div></div>" in (cards := _cards(s)):
        parts += ["<h2>Headline figures</h2>", cards]
    if "comparison" in folder.tables:
        comparison = folder.tables["comparison"]
        if "parameter" in comparison.columns:  # a sweep: its sensitivity summary
            parts += ["<h2>Sensitivity: which assumptions move each output</h2>",
                      _table(comparison, "first-order share of the output's variance "
                             "explained by the parameter; Spearman rank correlation for the "
                             "sign")]
        else:
            parts += ["<h2>Strategies compared</h2>",
                      _table(comparison_view(comparison),
                             "mean over replications [95% interval]")]
        if "metric" in comparison.columns and comparison.strategy.nunique() > 1:
            first = comparison.strategy.iloc[0]
            parts.append(_table(comparison_view(comparison, "diff"),
                                f"difference to '{first}', paired replication by replication "
                                "on common random numbers [95% interval]"))
    parts.append("<h2>Charts</h2>")
    for c in drawn:
        if c.figure is None:
            continue
        data = base64.b64encode(c.png).decode("ascii")
        parts.append(f'<figure id="{c.name}"><img alt="{html.escape(c.title)}" '
                     f'src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(c.caption)}</figcaption></figure>")
    skipped = [c for c in drawn if c.figure is None]
    if skipped:
        parts.append('<div class="notes"><p>Not drawn:</p><ul>' + "".join(
            f"<li><b>{html.escape(c.title)}</b>: {html.escape(c.note)}</li>" for c in skipped)
            + "</ul></div>")
    if s.get("quarters"):
        quarters = pd.DataFrame(s["quarters"])
        first = [c for c in QUARTER_COLUMNS if c in quarters]
        quarters = quarters[first + [c for c in quarters if c not in first]]
        parts += ["<h2>Per quarter</h2>",
                  "<p>Shares are of the whole population at the quarter's end; gained and lost "
                  "are counted at the quarter's re-evaluation, as a share of those with access "
                  "before it.</p>", _table(quarters)]
    if s.get("not_eligible_at_start"):
        reasons = sorted(({"reason": k.replace("_", " "), "real users": v}
                          for k, v in s["not_eligible_at_start"].items()),
                         key=lambda r: -r["real users"])
        parts += ["<h2>Why users were not eligible at the start</h2>",
                  "<p>A user can fail several preconditions; each is counted.</p>",
                  _table(reasons)]
    if folder.scenario:
        text = yaml.safe_dump(folder.scenario, sort_keys=False, allow_unicode=True)
        digest = m.get("scenario_digest", "")
        parts += ["<h2>Scenario as resolved</h2>",
                  f"<details><summary>{html.escape(str(name))} "
                  f"(SHA-256 {html.escape(digest[:12])}…, after <code>extends</code> and "
                  f"<code>--set</code>); click to open</summary>"
                  f"<pre>{html.escape(text)}</pre></details>"]
    foot = " · ".join(f"{k} {m[k]}" for k in ("greysim_version", "python", "numpy", "pandas")
                      if k in m)
    command = " ".join(str(a) for a in m.get("command", []))
    parts.append(f"<footer>{html.escape(foot)}<br>{html.escape(command)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>greysim report: {html.escape(str(name))}</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(parts)}</main></body></html>\n")


def write_report(path: Path, *, chart_files: bool = True) -> Path:
    """Write ``report.html`` (and ``charts/*.png``, ``*.svg``) into a run or comparison folder.

    Each is written beside its destination and renamed into place, so a reader never sees a
    half-written report. Returns the report's path.
    """
    from sim.io.folders import mapped_os_errors

    folder = load_folder(path)
    drawn = draw(folder)
    path = Path(path)
    with mapped_os_errors(path, "report.html was not written or replaced"):
        if chart_files:
            _write_charts(path, drawn)
        tmp_file = path / f".{REPORT}.partial-{uuid.uuid4().hex[:8]}"
        try:
            tmp_file.write_text(render(folder, drawn), encoding="utf-8")
            os.replace(tmp_file, path / REPORT)
        except BaseException:
            tmp_file.unlink(missing_ok=True)
            raise
    return path / REPORT


def _write_charts(path: Path, drawn: list[Chart]) -> None:
    """Replace ``charts/`` as a whole; refuse one holding files other than charts."""
    from sim.io.folders import OutputError

    charts = path / CHARTS_DIR
    if charts.is_symlink() or charts.exists() and (not charts.is_dir() or any(
            p.suffix not in (".png", ".svg") or not p.is_file() for p in charts.iterdir())):
        raise OutputError(f"{charts} holds files that are not greysim charts, so the report "
                          "will not replace it; move or remove it yourself, then run again")
    tmp = path / f".{CHARTS_DIR}.partial-{uuid.uuid4().hex[:8]}"
    old = path / f".{CHARTS_DIR}.old-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for c in drawn:
            if c.figure is not None:
                (tmp / f"{c.name}.png").write_bytes(c.png)
                (tmp / f"{c.name}.svg").write_bytes(svg(c.figure))
        if charts.exists():
            os.replace(charts, old)
        os.replace(tmp, charts)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not charts.exists():
            os.replace(old, charts)  # the earlier charts stay
        raise
