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
import inspect
import io
import json
import os
import pickle
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl
import numpy as np
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
          "vintages": "vintages", "comparison": "comparison", "runs": "runs"}


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
    def budget(self) -> float | None:
        """The comparison's default-rate budget (``--max-default-rate``), if any."""
        value = self.summary.get("max_default_rate")
        return None if value is None else float(value)

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
    def drawn(self) -> bool:
        """Whether the chart was drawn (else ``note`` says why not)."""
        return self._png is not None or self.figure is not None

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


#: The planner's questions, in the order the page answers them, with the charts of each.
SECTIONS = (
    ("How fast does coverage grow?", ("coverage", "speed_risk")),
    ("Who gets access?", ("access_archetype_region", "visibility_version", "funnel", "churn")),
    ("What risk does each batch bring, and when does it show?", ("batch_default", "vintages")),
    ("What does the book earn, and does it fit the capital?", ("net_income", "capital")),
)

#: What each chart shows, in the planner's words, under the chart.
CAPTIONS = {
    "coverage": "Share of the whole population invited (solid) and able to see the entry "
                "(dashed) at each month end; dots mark when coverage first reaches the target "
                "(bar: range over replications). Shaded: holiday windows, when batches widen.",
    "speed_risk": "How many months each strategy needs to reach the coverage target (mean and "
                  "range over replications) against the verdict's risk measure: default by 12 "
                  "months on book per opened line, loans of the same age (95% interval; without "
                  "it, the 12-month default rate per borrower at the horizon, as the axis says). "
                  "Lower left is better; above the red line is over the default budget.",
    "access_archetype_region": "Share of each archetype and region tier with access (invited) "
                               "at the last month; one panel per strategy. Closed regions stay "
                               "at 0%.",
    "visibility_version": "Left: of the invited users on each client version, the share who "
                          "can see the entry (version grey). Right: the share of each "
                          "version's users invited.",
    "funnel": "Real users at each stage at each quarter's end: eligible (preconditions and "
              "score), invited, shown the entry, and with the credit model active and "
              "borrowing.",
    "churn": "At each quarter's re-evaluation everyone is re-scored: users who now pass gain "
             "access (up), users who fail lose it (down).",
    "batch_default": "Each invite batch's share of defaulted (90+ days past due) accounts so "
                     "far, by its invite date and phase. Hollow: the batch is younger than the "
                     "12-month default window, so its rate is still rising.",
    "vintages": "Cumulative 90+ rate by months on book, per phase: the accounts-weighted mean "
                "of its batches, with the range of the batches shaded. Dashed: months where "
                "the batches are still young.",
    "net_income": "Per quarter: interest revenue up, charge-off loss and funding cost down; "
                  "the diamond is the net income they add up to (per strategy in a "
                  "comparison, with 95% intervals).",
    "capital": "Outstanding balance against the capital limit; months in which the limit bound "
               "(new invitations and limit raises stop) are shaded or marked.",
}


def _inputs(folder: Folder, fn, kwargs: dict) -> dict:
    """The keywords a chart function takes from the folder besides its table."""
    params = inspect.signature(fn).parameters
    kw = dict(kwargs)
    extra = {"target": folder.target, "holidays": folder.holidays, "budget": folder.budget,
             "batches": folder.tables.get("batches"), "runs": folder.tables.get("runs")}
    kw.update({k: v for k, v in extra.items() if k in params and k not in kw})
    return kw


def _draw_one(folder: Folder, spec: tuple) -> Chart:
    name, title, fn, table, kwargs = spec
    chart = Chart(name, title, caption=CAPTIONS.get(name, ""))
    try:
        chart.figure = fn(folder.tables.get(table), **_inputs(folder, fn, kwargs))
        chart._png = png(chart.figure)  # render now: some failures show only when drawn
    except charts.MissingData as exc:
        chart.figure, chart.note = None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a chart bug must not cost the run
        chart.figure, chart._png = None, None
        chart.note = f"could not be drawn ({type(exc).__name__}: {exc}); please report this"
    return chart


def draw(folder: Folder, *, workers: int | None = None, figures: bool = False) -> list[Chart]:
    """Every chart of :data:`sim.analysis.charts.CHARTS` the folder's tables allow, rendered
    to PNG.

    With two or more cores, a forked child renders every other chart while this process
    renders the rest (drawing is CPU-bound Python, so threads would not help); its PNGs come
    back through a pipe. ``figures=True`` keeps every Figure (for SVG), so draws here alone.
    ``GREYSIM_REPORT_WORKERS=1`` turns the child off.
    """
    specs = list(charts.CHARTS)
    if workers is None:
        workers = int(os.environ.get("GREYSIM_REPORT_WORKERS", "0") or 0) or \
            min(2, os.cpu_count() or 1)
    if figures or workers < 2 or not hasattr(os, "fork") or len(specs) < 4:
        return [_draw_one(folder, spec) for spec in specs]
    theirs = specs[1::2]
    _warm_fonts()  # once, before the fork, so that both processes have the fonts loaded
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render its half, send (name, png, note) back, leave at once
        try:
            os.close(read)
            out = []
            for spec in theirs:
                c = _draw_one(folder, spec)
                out.append((c.name, c._png, c.note))
            with os.fdopen(write, "wb") as pipe:
                pipe.write(pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(write)
    try:
        mine = {spec[0]: _draw_one(folder, spec) for spec in specs[0::2]}
    finally:
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        os.waitpid(pid, 0)
    try:
        sent = {name: (data_png, note) for name, data_png, note in pickle.loads(data)}
    except Exception:  # noqa: BLE001 - the child died: draw its half here
        sent = {}
    out = []
    for spec in specs:
        if spec[0] in mine:
            out.append(mine[spec[0]])
        elif spec[0] in sent:
            data_png, note = sent[spec[0]]
            out.append(Chart(spec[0], spec[1], note=note, caption=CAPTIONS.get(spec[0], ""),
                             _png=data_png))
        else:
            out.append(_draw_one(folder, spec))
    return out


def _warm_fonts() -> None:
    with mpl.rc_context(charts.theme()):
        fig = Figure(figsize=(1, 1))
        fig.text(0.5, 0.5, "0%", fontweight="bold")
        fig.gca().set_title("x")
        png(fig, dpi=20)


def png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG, drawn once by the Agg canvas (``savefig`` would first make a dry
    draw to lay out the figure, then draw it again: a third of the time)."""
    buf = io.BytesIO()
    canvas = FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot is set to
    original = fig.dpi
    fig.set_dpi(dpi)
    try:
        canvas.print_png(buf, metadata={"Software": None})
    finally:
        fig.set_dpi(original)
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
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); margin: 0; background: #f5f7f9; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 48px; background: #fff; }
h1 { font-size: 1.55rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 1rem; margin: 18px 0 6px; }
.sub { color: var(--muted); margin: 0 0 14px; overflow-wrap: anywhere; }
.answer { border-left: 5px solid #029e73; background: #eaf7f2; padding: 12px 16px;
          font-size: 1.05rem; margin: 12px 0; }
.answer.warn { border-color: #de8f05; background: #fdf4e3; }
.answer ul { margin: 6px 0 0; padding-left: 20px; font-size: 0.95rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr));
         gap: 10px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .v { font-size: 1.35rem; font-weight: 600; }
.card .k { color: var(--muted); font-size: 0.82rem; }
figure { margin: 14px 0 24px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eef1f4; }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 4px; }
.notes { color: var(--muted); font-size: 0.9rem; }
.scroll { max-width: 100%; overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 0.85rem; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 4px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; }
td { white-space: nowrap; }
th { background: #eef2f6; vertical-align: bottom; max-width: 9em; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafbfc; }
code { overflow-wrap: anywhere; }
details pre { background: #f7f9fb; border: 1px solid var(--line); padding: 12px;
              font-size: 0.8rem; overflow: auto; max-height: 600px; }
footer { color: var(--muted); font-size: 0.8rem; margin-top: 40px; overflow-wrap: anywhere; }
"""

#: Per-quarter columns of the single-run table: (summary key, header with unit, kind).
QUARTER_COLUMNS = (
    ("quarter", "quarter", "int"), ("date", "quarter end", "text"),
    ("eligible_share", "eligible (% of population)", "pct"),
    ("invited_share", "invited (% of population)", "pct"),
    ("visible_share", "visible (% of population)", "pct"),
    ("gained_access", "access gained (million users)", "musers"),
    ("lost_access", "access lost (million users)", "musers"),
    ("churn_rate", "churn (% of those with access)", "pct"),
    ("default_rate_12m", "12-month default rate (% of borrowers)", "pct2"),
    ("loss_rate", "annualised loss rate (% of balance)", "pct2"),
    ("outstanding", "outstanding (bn CNY)", "bn"),
    ("net_income", "net income in the quarter (bn CNY)", "bn"),
    ("capital_bound_months", "months capital bound", "int"),
)
LABELS = {"score_auc": "score AUC", "batches": "invite batches"}


def fmt(key: str, value) -> str:
    """A value as the page shows it: shares and rates in %, counts of real users in millions,
    money in billions of CNY (the unit goes in the column header or the card's label)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "never"
    if isinstance(value, int | float) and any(w in key for w in ("share", "rate", "pct",
                                                                   "hazard")):
        return f"{100 * value:.{2 if abs(value) < 0.1 else 1}f}%"
    if isinstance(value, float) and abs(value) >= 1e6:
        return f"{value / 1e9:,.2f} bn" if abs(value) >= 1e9 else f"{value / 1e6:,.1f} million"
    if isinstance(value, float):
        return f"{value:,.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _cell(kind: str, value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "pct2":
        return f"{100 * value:.2f}"
    if kind == "musers":
        return f"{value / 1e6:,.1f}"
    if kind == "bn":
        return f"{value / 1e9:,.1f}"
    if kind == "int":
        return f"{int(value):,}"
    return html.escape(str(value))


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def _html_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A table in its own scrolling box (cells already escaped)."""
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _table(rows: list[dict] | pd.DataFrame, caption: str = "") -> str:
    df = pd.DataFrame(rows)
    if df.empty:
        return ""
    return _html_table([html.escape(_label(str(c))) for c in df.columns],
                       [[html.escape(fmt(str(c), _py(v))) for c, v in
                         zip(df.columns, row, strict=True)] for row in df.itertuples(index=False)],
                       caption)


def _py(v):
    if isinstance(v, pd.Timestamp):
        return str(v.date())
    return v.item() if hasattr(v, "item") else v


# ----------------------------------------------------------------- comparison tables

#: Metrics of `greysim compare`'s long table shown in the report (the file has them all):
#: (metric, header with unit, kind: pct = a share in %, q = quarters, bn = CNY billions).
HEADLINE_METRICS = (
    ("quarters_to_target", "quarters to target", "q"),
    ("default_rate_12m", "12-month default rate (% of borrowers)", "pct2"),
    ("loss_rate", "annualised loss rate (% of balance)", "pct2"),
    ("net_income", "net income (bn CNY)", "bn"),
    ("peak_outstanding", "peak outstanding (bn CNY)", "bn"),
)


def _metrics(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    finals = [m for m in dict.fromkeys(table.metric) if "_share_q" in m]
    last = max((int(m.rsplit("_q", 1)[1]) for m in finals), default=None)
    shares = [(f"{s}_share_q{last}", f"{s} coverage at the horizon (% of population)", "pct")
              for s in ("invited", "visible")] if last is not None else []
    return [m for m in (*shares, *HEADLINE_METRICS) if m[0] in set(table.metric)]


def _num(kind: str, x: float, diff: bool = False) -> str:
    if x is None or pd.isna(x):
        return "–"
    if np.isinf(x):
        return "never"
    sign = "+" if diff and x > 0 else ""
    if kind in ("pct", "pct2"):
        digits = 1 if kind == "pct" else 2
        return f"{sign}{100 * x:.{digits}f}" + (" pp" if diff else "")
    if kind == "bn":
        return f"{sign}{x / 1e9:,.1f}"
    if kind == "q":
        return f"{sign}{x:.1f}"
    return f"{sign}{x:.3g}"


def _with_interval(kind: str, value, low, high, diff: bool = False) -> str:
    text = _num(kind, value, diff)
    lo, hi = _num(kind, low, diff), _num(kind, high, diff)
    if lo in ("–", "nan") or (lo == text and hi == text):  # no spread: no interval to show
        return html.escape(text)
    unit = " pp" if diff and kind in ("pct", "pct2") else ""
    lo, hi = lo.removesuffix(" pp"), hi.removesuffix(" pp")
    return (f"{html.escape(text)} <span style='color:#5d6d7e'>"
            f"[{html.escape(lo)}, {html.escape(hi)}{unit}]</span>")


def comparison_view(table: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """One row per strategy from the long ``comparison.parquet`` (strategy x metric rows):
    final coverage and the headline metrics, as the mean (``column="mean"``) or the paired
    difference to the first strategy (``"diff"``), with their 95% intervals as columns."""
    if "metric" not in table.columns:
        return table
    low, high = ("ci_low", "ci_high") if column == "mean" else ("diff_ci_low", "diff_ci_high")
    strategies = list(dict.fromkeys(table.strategy))
    rows = []
    for name in strategies if column == "mean" else strategies[1:]:
        sub = table[table.strategy == name].set_index("metric")
        row = {"strategy": name}
        for m, _, _ in _metrics(table):
            row[m], row[f"{m}_low"], row[f"{m}_high"] = (_py(sub.loc[m, c])
                                                         for c in (column, low, high))
        rows.append(row)
    return pd.DataFrame(rows)


def _diff_header(header: str) -> str:
    """A metric's header for its difference: rates in percentage points."""
    if "(% of" in header:
        return header.split(" (% of")[0] + " (pp)"
    return header


def _comparison_tables(table: pd.DataFrame) -> str:
    metrics = _metrics(table)
    header = ["strategy"] + [html.escape(h) for _, h, _ in metrics]
    view = comparison_view(table)
    rows = [[html.escape(str(r["strategy"]))] + [
        _with_interval(kind, r[m], r[f"{m}_low"], r[f"{m}_high"]) for m, _, kind in metrics]
        for _, r in view.iterrows()]
    parts = [_html_table(header, rows, "mean over replications [95% interval]")]
    if table.strategy.nunique() > 1:
        first = table.strategy.iloc[0]
        diff = comparison_view(table, "diff")
        dheader = ["strategy"] + [html.escape(_diff_header(h)) for _, h, _ in metrics]
        drows = [[html.escape(str(r["strategy"]))] + [
            _with_interval(kind, r[m], r[f"{m}_low"], r[f"{m}_high"], diff=True)
            for m, _, kind in metrics] for _, r in diff.iterrows()]
        parts.append(_html_table(dheader, drows, f"difference to '{first}' (pp: percentage "
                                 "points), paired replication by replication on common random "
                                 "numbers [95% interval]"))
    return "".join(parts)


# ----------------------------------------------------------------- answer and cards


def _verdict(summary: dict) -> str:
    """The comparison's answer: a sentence, or an object with text, winner, runner-up and
    reasons."""
    v = summary.get("verdict")
    if not v:
        return ""
    if isinstance(v, str):
        return f'<div class="answer"><b>Verdict:</b> {html.escape(v)}</div>'
    if not isinstance(v, dict):
        return f'<div class="answer"><b>Verdict:</b> {html.escape(str(v))}</div>'
    text = v.get("text") or ""
    head = []
    if v.get("winner"):
        head.append(f"run <b>{html.escape(str(v['winner']))}</b>")
    if v.get("runner_up"):
        head.append(f"runner-up {html.escape(str(v['runner_up']))}")
    reasons = v.get("reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    items = "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons)
    cls = "answer" if v.get("winner") else "answer warn"
    return (f'<div class="{cls}"><b>Verdict:</b> {"; ".join(head) + ". " if head else ""}'
            f"{html.escape(str(text))}{f'<ul>{items}</ul>' if items else ''}</div>")


def _card(value: str, label: str) -> str:
    return (f'<div class="card"><div class="v">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(label)}</div></div>')


def _reached(folder: Folder) -> tuple[str, str] | None:
    """When the single run first reached the target, from its monthly table."""
    monthly, target = folder.tables.get("monthly"), folder.target
    if monthly is None or target is None or "invited_share" not in monthly:
        return None
    hit = monthly[monthly["invited_share"] >= target]
    if hit.empty:
        return "not reached", f"{100 * target:.0f}% invited coverage target"
    row = hit.iloc[0]
    return (f"{pd.Timestamp(row['date']):%b %Y}",
            f"reaches the {100 * target:.0f}% coverage target (month {int(row['month'])})")


def _run_answer(folder: Folder) -> str:
    """The single run's headline: coverage, when it reaches the target, and the book's risk."""
    s = folder.summary
    final = s.get("final") or {}
    credit = s.get("credit") or {}
    if not final:
        return ""
    text = (f"By the horizon {100 * final.get('invited_share', 0):.1f}% of the population is "
            f"invited and {100 * final.get('visible_share', 0):.1f}% can see the entry")
    reached = _reached(folder)
    if reached and reached[0] != "not reached":
        text += f"; the {100 * folder.target:.0f}% target is reached in {reached[0]}"
    elif reached:
        text += f"; the {100 * folder.target:.0f}% target is not reached"
    if credit.get("default_rate_12m") is not None:
        text += (f". The 12-month default rate is {100 * credit['default_rate_12m']:.2f}% of "
                 f"borrowers and the annualised loss "
                 f"{100 * (credit.get('annualised_loss_rate') or 0):.2f}% of the balance; net "
                 f"income {credit.get('net_income', 0) / 1e9:,.1f} bn CNY over the run")
    return f'<div class="answer">{html.escape(text)}.</div>'


def _run_cards(folder: Folder) -> str:
    s = folder.summary
    final, credit = s.get("final") or {}, s.get("credit") or {}
    cards = []
    if final:
        cards += [_card(f"{100 * final['invited_share']:.1f}%", "invited (% of population)"),
                  _card(f"{100 * final['visible_share']:.1f}%",
                        "visible: entry shown (% of population)")]
    if (reached := _reached(folder)) is not None:
        cards.append(_card(*reached))
    if credit:
        monthly = folder.tables.get("monthly")
        limit = None
        if monthly is not None and "capital_limit" in monthly:
            limit = monthly["capital_limit"].dropna()
            limit = float(limit.iloc[-1]) if not limit.empty else None
        out = credit.get("outstanding") or 0.0
        cards += [
            _card(f"{100 * credit['default_rate_12m']:.2f}%",
                  "12-month default rate (% of borrowers)"),
            _card(f"{100 * credit['annualised_loss_rate']:.2f}%",
                  "annualised loss rate (% of balance)"),
            _card(f"{credit['net_income'] / 1e9:,.1f} bn CNY", "net income over the run"),
            _card(f"{out / 1e9:,.0f} bn CNY",
                  f"outstanding at the horizon ({100 * out / limit:.0f}% of the "
                  f"{limit / 1e9:,.0f} bn CNY capital limit)" if limit else
                  "outstanding at the horizon (no capital limit)"),
        ]
        if credit.get("capital_bound_months"):
            cards.append(_card(str(credit["capital_bound_months"]), "months capital bound"))
    if s.get("score_auc") is not None:
        cards.append(_card(f"{s['score_auc']:.3f}", "score AUC against latent 12-month default"))
    if s.get("batches") is not None:
        cards.append(_card(f"{s['batches']:,}", "invite batches"))
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


def _comparison_cards(folder: Folder) -> str:
    s = folder.summary
    cards = []
    if s.get("strategies"):
        cards.append(_card(str(len(s["strategies"])), "strategies compared"))
    if s.get("reps"):
        cards.append(_card(str(s["reps"]), "replications each (common random numbers)"))
    if folder.target is not None:
        cards.append(_card(f"{100 * folder.target:.0f}%",
                           f"coverage target ({s.get('coverage', 'invited')})"))
    if folder.budget is not None:
        cards.append(_card(f"{100 * folder.budget:.2f}%", "default budget (12-month rate)"))
    return f'<div class="cards">{"".join(cards)}</div>' if cards else ""


# ----------------------------------------------------------------- A/B and scenarios


def _ab_section(ab: dict) -> str:
    arms = ab.get("arms") or {}
    if not arms:
        return ""
    header = ["arm", "users (simulated)", "invited (% of arm)", "ever invited (million)",
              "defaults per ever-invited account (%)", "difference in invited (pp) [95%]",
              "difference in default rate (pp) [95%]"]
    rows = []
    for name, a in arms.items():
        vs = a.get("vs_control") or {}

        def diff(key, vs=vs):
            d = vs.get(key)
            if not d:
                return "–"
            return _with_interval("pct2", d.get("diff"), d.get("ci_low"), d.get("ci_high"),
                                  diff=True)
        rows.append([html.escape(str(name)), f"{a.get('users', 0):,}",
                     _cell("pct", a.get("invited_share")),
                     _cell("musers", a.get("ever_invited")),
                     _cell("pct2", a.get("default_rate")),
                     diff("invited_share"), diff("default_rate")])
    srm = ab.get("srm") or {}
    note = ""
    if srm:
        note = (f"<p>Sample-ratio check: chi-square {srm.get('chi2', float('nan')):.2f}, "
                f"p = {srm.get('p_value', float('nan')):.3f} "
                f"({'MISMATCH' if srm.get('mismatch') else 'no mismatch'} at "
                f"{srm.get('alpha', '')}).</p>")
    mde = [(n, a["vs_control"].get("mde_default_rate_simulated")) for n, a in arms.items()
           if a.get("vs_control")]
    if mde:
        note += "<p>Smallest detectable difference in default rate at the simulated arm " \
                "sizes (80% power, 5% two-sided): " + ", ".join(
                    f"{html.escape(str(n))} {100 * v:.2f} pp" for n, v in mde if v is not None) \
                + ".</p>"
    return ("<h2>A/B arms</h2>" + _html_table(header, rows, f"control: "
            f"{ab.get('control', next(iter(arms)))}; intervals 95%") + note)


def _flat(d, prefix: str = "") -> dict:
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    if isinstance(d, list) and d and all(isinstance(x, dict) for x in d):
        out = {}
        for i, v in enumerate(d):
            out.update(_flat(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: d}


def _short(v) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else v
    return text if len(text) <= 50 else text[:47] + "..."


def _scenarios_section(folder: Folder, name: str) -> str:
    m = folder.manifest
    listed = m.get("scenarios")
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        rows = [[html.escape(str(s.get("strategy", ""))), html.escape(str(s.get("name", ""))),
                 f"<code>{html.escape(str(s.get('file', '')))}</code>",
                 f"<code>{html.escape(str(s.get('digest', ''))[:12])}</code>",
                 html.escape(str(s.get("seed", "")))] for s in listed]
        parts = ["<h2>Scenarios</h2>",
                 _html_table(["strategy", "scenario", "file", "SHA-256 (first 12)", "seed"],
                             rows)]
        base = _flat(listed[0].get("scenario") or {})
        drows = []
        for s in listed[1:]:
            other = _flat(s.get("scenario") or {})
            keys = [k for k in dict.fromkeys([*base, *other])
                    if base.get(k) != other.get(k) and k not in ("name", "description")]
            shown = keys[:12]
            for k in shown:
                drows.append([html.escape(str(s.get("strategy", ""))), f"<code>{html.escape(k)}"
                              "</code>", html.escape(_short(base.get(k, "–"))),
                              html.escape(_short(other.get(k, "–")))])
            if len(keys) > len(shown):
                drows.append([html.escape(str(s.get("strategy", ""))),
                              f"and {len(keys) - len(shown)} more keys", "", ""])
        if drows:
            first = listed[0].get("strategy", "the first")
            parts.append(_html_table(["strategy", "key", f"in '{html.escape(str(first))}'",
                                      "in this strategy"], drows,
                                     f"key differences to '{first}' (resolved scenarios)"))
        for s in listed:
            text = yaml.safe_dump(s.get("scenario") or {}, sort_keys=False, allow_unicode=True)
            parts.append(f"<details><summary>{html.escape(str(s.get('strategy', '')))}: "
                         f"the scenario as resolved; click to open</summary>"
                         f"<pre>{html.escape(text)}</pre></details>")
        return "".join(parts)
    if not folder.scenario:
        return ""
    text = yaml.safe_dump(folder.scenario, sort_keys=False, allow_unicode=True)
    digest = m.get("scenario_digest", "")
    return ("<h2>Scenario as resolved</h2>"
            f"<details><summary>{html.escape(str(name))} "
            f"(SHA-256 {html.escape(digest[:12])}…, after <code>extends</code> and "
            f"<code>--set</code>); click to open</summary>"
            f"<pre>{html.escape(text)}</pre></details>")


def _quarter_table(quarters: list[dict]) -> str:
    cols = [c for c in QUARTER_COLUMNS if any(c[0] in q for q in quarters)]
    rows = [[_cell(kind, q.get(key)) for key, _, kind in cols] for q in quarters]
    return _html_table([html.escape(h) for _, h, _ in cols], rows)


def _people(n: float) -> str:
    return f"{n / 1e9:,.2g} billion" if n >= 1e9 else f"{n / 1e6:,.3g} million"


def _figure_html(c: Chart) -> str:
    data = base64.b64encode(c.png).decode("ascii")
    return (f'<figure id="{c.name}"><img alt="{html.escape(c.title)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(c.caption)}</figcaption></figure>")


def render(folder: Folder, drawn: list[Chart]) -> str:
    """The report page as one HTML string (images inline): the answer first, then a section
    per question with its charts, then the tables and the scenarios."""
    s, m = folder.summary, folder.manifest
    name = s.get("scenario") or m.get("scenario_name") or folder.path.name
    comparison = folder.tables.get("comparison")
    facts = [f"strategy {s['strategy']}" if s.get("strategy") else "",
             f"seed {s['seed']}" if "seed" in s else "",
             f"{s['users']:,} simulated users x {s['weight']:g} = "
             f"{_people(s['users'] * s['weight'])} real users"
             if "users" in s and "weight" in s else "",
             f"{s['months']} months" if "months" in s else "",
             f"made {m['created_utc'].replace('T', ' ').replace('+00:00', ' UTC')}"
             if "created_utc" in m else ""]
    parts = [f"<h1>greysim report: {html.escape(str(name))}</h1>",
             f'<p class="sub">{html.escape(" · ".join(f for f in facts if f))}</p>']
    if s.get("verdict"):
        parts += [_verdict(s), _comparison_cards(folder)]
    elif comparison is not None and "parameter" not in comparison.columns:
        parts.append(_comparison_cards(folder))
    else:
        parts += [_run_answer(folder), _run_cards(folder)]
    if comparison is not None:
        if "parameter" in comparison.columns:  # a sweep: its sensitivity summary
            parts += ["<h2>Sensitivity: which assumptions move each output</h2>",
                      _table(comparison, "first-order share of the output's variance "
                             "explained by the parameter; Spearman rank correlation for the "
                             "sign")]
        elif "metric" in comparison.columns:
            parts += ["<h2>Strategies compared</h2>", _comparison_tables(comparison)]
        else:
            parts += ["<h2>Strategies compared</h2>", _table(comparison)]
    if s.get("notes"):
        parts.append('<div class="notes"><ul>' + "".join(
            f"<li>{html.escape(str(n))}</li>" for n in s["notes"]) + "</ul></div>")
    by_name = {c.name: c for c in drawn}
    placed = set()
    for question, names in SECTIONS:
        figures = [by_name[n] for n in names if n in by_name and by_name[n].drawn]
        placed.update(names)
        if figures:
            parts += [f"<h2>{html.escape(question)}</h2>", *map(_figure_html, figures)]
    rest = [c for c in drawn if c.name not in placed and c.drawn]
    if rest:
        parts += ["<h2>More charts</h2>", *map(_figure_html, rest)]
    skipped = [c for c in drawn if not c.drawn]
    if skipped:
        parts.append('<div class="notes"><p>Not drawn:</p><ul>' + "".join(
            f"<li><b>{html.escape(c.title)}</b>: {html.escape(c.note)}</li>" for c in skipped)
            + "</ul></div>")
    if isinstance(s.get("ab"), dict):
        parts.append(_ab_section(s["ab"]))
    if s.get("quarters"):
        parts += ["<h2>Per quarter</h2>",
                  "<p>Shares are of the whole population at the quarter's end; access gained "
                  "and lost are counted at the quarter's re-evaluation; churn is both as a "
                  "share of those with access before it. Counts are real users.</p>",
                  _quarter_table(s["quarters"])]
    if s.get("not_eligible_at_start"):
        reasons = sorted(((k.replace("_", " "), v) for k, v in
                          s["not_eligible_at_start"].items()), key=lambda r: -r[1])
        parts += ["<h2>Why users were not eligible at the start</h2>",
                  "<p>A user can fail several preconditions; each is counted.</p>",
                  _html_table(["reason", "real users (million)"],
                              [[html.escape(k), _cell("musers", v)] for k, v in reasons])]
    parts.append(_scenarios_section(folder, name))
    foot = " · ".join(f"{k} {m[k]}" for k in ("greysim_version", "python", "numpy", "pandas")
                      if k in m)
    command = " ".join(str(a) for a in m.get("command", []))
    parts.append(f"<footer>{html.escape(foot)}<br>{html.escape(command)}</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>greysim report: {html.escape(str(name))}</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(parts)}</main></body></html>\n")


#: Captions of the charts a ``greysim robust`` summary folder holds (``charts/<stem>.png``).
ROBUST_CAPTIONS = {
    "satisficing": "Share of the sampled futures in which each plan meets the coverage target "
                   "by the planner's date inside the risk budget and the capital limit (95% "
                   "Wilson interval).",
    "regret": "Regret: months later than the best plan in the same future (the horizon when a "
              "plan misses the target or breaks a limit), one point per future.",
    "tradeoff": "Each future's time to target against its risk measure (default by 12 months "
                "on book per opened line), coloured by whether the plan satisfices.",
    "peeling": "PRIM's peeling trajectory: each box's coverage of the failing futures against "
               "its density (share of its futures that fail); the chosen box is marked.",
}


def render_robust(path: Path) -> str:
    """The page of a ``greysim robust`` summary folder (its ``summary.json``,
    ``ranking.parquet`` and ``charts/``): the recommended plan first, the ranking, where the
    plan fails (the PRIM box in scenario keys) and the charts."""
    from sim.io.reading import read_json

    path = Path(path)
    s = read_json(path / "summary.json", required=True)
    ranking = pd.read_parquet(path / "ranking.parquet")
    budget = s.get("risk_budget")
    facts = [f"{s.get('futures', '?')} sampled futures x {len(s.get('strategies', []))} plans",
             f"target {100 * float(s.get('target') or 0):.0f}% {s.get('coverage', 'invited')} "
             f"coverage by {s.get('by', '?')}",
             "no risk budget" if budget is None else f"risk budget {100 * budget:.2f}%",
             f"capital limit x {s.get('capital_share', 1.0):g}"]
    best = s.get("recommended", "")
    answer = (f"Recommended: <b>{html.escape(str(best))}</b> meets the target inside the "
              f"budget and the capital limit in {_pct_text(s.get('satisficing_share'))} of the "
              f"futures (95% interval {_pct_text(s.get('satisficing_low'))} to "
              f"{_pct_text(s.get('satisficing_high'))}).")
    rows = []
    for r in ranking.itertuples():
        rows.append([str(int(r.rank)), html.escape(str(r.strategy)),
                     f"{_pct_text(r.satisficing_share)} [{_pct_text(r.satisficing_low)}, "
                     f"{_pct_text(r.satisficing_high)}]",
                     str(int(r.late)), str(int(r.over_budget)), str(int(r.over_capital)),
                     _months_text(r.regret_p90), _months_text(r.regret_max),
                     _months_text(r.worst_time_to_target_months),
                     _pct_text(r.worst_default_12mob_opened, 2)])
    parts = ["<h1>greysim report: robustness</h1>",
             f'<p class="sub">{html.escape(" · ".join(facts))}</p>',
             f'<div class="answer"><p>{answer}</p></div>',
             "<h2>Plans ranked by how often they satisfice</h2>",
             _html_table(["rank", "plan", "satisficing [95%]", "late", "over budget",
                          "over capital", "regret p90 (months)", "regret max (months)",
                          "worst months to target", "worst risk (per opened line)"], rows,
                         f"risk: {s.get('risk_measure', '')}")]
    rules = s.get("fails_when") or []
    parts.append(f"<h2>Where '{html.escape(str(best))}' fails</h2>")
    if rules:
        parts.append(f"<p>PRIM box with coverage {_num_text(s.get('box_coverage'))} and "
                     f"density {_num_text(s.get('box_density'))} (share of the failing futures "
                     "inside the box, and share of the box's futures that fail):</p><ul>"
                     + "".join(f"<li><code>{html.escape(str(r))}</code></li>" for r in rules)
                     + "</ul>")
    else:
        parts.append(f"<p>{html.escape(str(s.get('discovery_note') or 'no box found'))}</p>")
    if s.get("cart"):
        parts.append(f"<p>CART view of the same failures:</p><pre>"
                     f"{html.escape(str(s['cart']))}</pre>")
    if s.get("notes"):
        parts.append('<div class="notes"><ul>' + "".join(
            f"<li>{html.escape(str(n))}</li>" for n in s["notes"]) + "</ul></div>")
    pictures = sorted((path / CHARTS_DIR).glob("*.png")) if (path / CHARTS_DIR).is_dir() else []
    if pictures:
        parts.append("<h2>Charts</h2>")
    for picture in pictures:
        data = base64.b64encode(picture.read_bytes()).decode("ascii")
        caption = ROBUST_CAPTIONS.get(picture.stem, "")
        parts.append(f'<figure id="{html.escape(picture.stem)}"><img alt="'
                     f'{html.escape(picture.stem)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>greysim report: robustness</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(parts)}</main></body></html>\n")


def _pct_text(x, decimals: int = 0) -> str:
    if x is None or not np.isfinite(float(x)):
        return "n/a"
    return f"{100 * float(x):.{decimals}f}%"


def _months_text(x) -> str:
    if x is None or np.isnan(float(x)):
        return "n/a"
    return "never" if np.isinf(float(x)) else f"{float(x):.1f}"


def _num_text(x) -> str:
    return "n/a" if x is None or not np.isfinite(float(x)) else f"{float(x):.2f}"


def is_robust_folder(path: Path) -> bool:
    """A ``greysim robust`` summary folder (ranking and summary, no monthly table)."""
    path = Path(path)
    return (path / "ranking.parquet").exists() and not (path / "metrics.parquet").exists()


def write_report(path: Path, *, chart_files: bool = True, svg_files: bool = False) -> Path:
    """Write ``report.html`` (and ``charts/*.png``; ``*.svg`` too with ``svg_files``) into a
    run or comparison folder.

    Each is written beside its destination and renamed into place, so a reader never sees a
    half-written report. Returns the report's path.
    """
    from sim.io.folders import mapped_os_errors, replace_text

    if is_robust_folder(path):
        page = render_robust(path)
        with mapped_os_errors(Path(path), "report.html was not written or replaced"):
            return replace_text(Path(path) / REPORT, page)
    folder = load_folder(path)
    drawn = draw(folder, figures=svg_files)
    path = Path(path)
    with mapped_os_errors(path, "report.html was not written or replaced"):
        if chart_files:
            _write_charts(path, drawn, svg_files)
        return replace_text(path / REPORT, render(folder, drawn))


def _write_charts(path: Path, drawn: list[Chart], svg_files: bool = False) -> None:
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
            if c.drawn:
                (tmp / f"{c.name}.png").write_bytes(c.png)
                if svg_files and c.figure is not None:
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
