"""The recorder: month-end snapshots of counts and sums, and the tables they make.

Counts are weighted: every simulated user stands for ``population.weight`` real users.
Segment counts use ``np.bincount`` over the category codes, so a snapshot costs a few passes
over the arrays whatever the number of segments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .population import DIMENSIONS, Population

MONTHLY_COLUMNS = (
    "date", "month", "quarter", "population", "eligible", "invited", "visible",
    "gained_access", "lost_access", "invited_share", "visible_share", "eligible_share",
    "new_invites", "batches",
)
SEGMENT_COLUMNS = ("date", "month", "dimension", "value", "population", "eligible", "invited",
                   "visible", "access_rate", "visible_rate")


def band_labels(edges: list[float]) -> tuple[str, ...]:
    """Labels of the bands cut by ``edges``: '<a', 'a-b', ..., '>=z'."""
    def fmt(x: float) -> str:
        return f"{x:g}"
    inner = [f"{fmt(a)}-{fmt(b)}" for a, b in zip(edges, edges[1:], strict=False)]
    return (f"<{fmt(edges[0])}", *inner, f">={fmt(edges[-1])}")


def segment_codes(pop: Population, bands: dict[str, list[float]],
                  crosses: list[tuple[str, str]] = ()):
    """(dimension, codes, labels) for every categorical attribute, every banded one and every
    crossed pair of categorical attributes (``"a x b"``, codes ``a * len(b) + b``)."""
    for dim in DIMENSIONS:
        yield dim, getattr(pop, dim), pop.labels[dim]
    yield "utility_payer", pop.utility_payer.view(np.int8), ("no", "yes")
    for name, edges in bands.items():
        yield name, band_codes(getattr(pop, name), edges), band_labels(edges)
    for a, b in crosses:
        k = len(pop.labels[b])
        codes = getattr(pop, a).astype(np.int16) * k + getattr(pop, b)
        labels = tuple(f"{x} x {y}" for x in pop.labels[a] for y in pop.labels[b])
        yield f"{a} x {b}", codes, labels


def band_codes(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Band index of each value (``np.digitize`` semantics); a few comparisons beat a search."""
    codes = np.zeros(values.shape, dtype=np.int8)
    for edge in edges:
        codes += values >= edge
    return codes


@dataclass
class Recorder:
    """Collects one row per month and one row per segment per month."""

    bands: dict[str, list[float]] = field(default_factory=dict)
    crosses: list[tuple[str, str]] = field(default_factory=list)
    monthly: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)

    def snapshot(self, pop: Population, visible: np.ndarray, *, date: dt.date, month: int,
                 flows: dict[str, float]) -> None:
        """Record the month that ends on ``date``; ``flows`` are this month's event counts."""
        w = pop.weight
        population = pop.n * w
        eligible = float(np.count_nonzero(pop.eligible)) * w
        invited = float(np.count_nonzero(pop.invited)) * w
        shown = float(np.count_nonzero(visible)) * w
        self.monthly.append({
            "date": date,
            "month": month,
            "quarter": (month - 1) // 3 + 1,
            "population": population,
            "eligible": eligible,
            "invited": invited,
            "visible": shown,
            "gained_access": flows.get("gained_access", 0) * w,
            "lost_access": flows.get("lost_access", 0) * w,
            "invited_share": invited / population,
            "visible_share": shown / population,
            "eligible_share": eligible / population,
            "new_invites": flows.get("new_invites", 0) * w,
            "batches": flows.get("batches", 0),
        })
        # one pass per dimension: bincount over (segment code, status bits) pairs
        status = (pop.eligible.view(np.int8) | (pop.invited.view(np.int8) << 1)
                  | (visible.view(np.int8) << 2))
        for dim, codes, labels in segment_codes(pop, self.bands, self.crosses):
            k = len(labels)
            table = np.bincount(codes.astype(np.intp) * 8 + status, minlength=8 * k).reshape(k, 8)
            counts = {
                "population": table.sum(axis=1),
                "eligible": table[:, 1::2].sum(axis=1),
                "invited": table[:, [2, 3, 6, 7]].sum(axis=1),
                "visible": table[:, 4:].sum(axis=1),
            }
            for code, label in enumerate(labels):
                n = counts["population"][code]
                self.segments.append({
                    "date": date,
                    "month": month,
                    "dimension": dim,
                    "value": label,
                    "population": n * w,
                    "eligible": counts["eligible"][code] * w,
                    "invited": counts["invited"][code] * w,
                    "visible": counts["visible"][code] * w,
                    "access_rate": counts["invited"][code] / n if n else np.nan,
                    "visible_rate": counts["visible"][code] / n if n else np.nan,
                })

    def monthly_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.monthly, columns=list(self.monthly[0]) if self.monthly else
                          list(MONTHLY_COLUMNS))
        df["date"] = pd.to_datetime(df["date"])
        return df

    def segment_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.segments, columns=list(SEGMENT_COLUMNS))
        df["date"] = pd.to_datetime(df["date"])
        return df


def quarterly(monthly: pd.DataFrame) -> pd.DataFrame:
    """Coverage at each quarter's end and the access churn of the quarter's re-evaluation."""
    ends = monthly.groupby("quarter").tail(1).set_index("quarter")
    flows = monthly.groupby("quarter")[["gained_access", "lost_access", "new_invites"]].sum()
    out = ends[["date", "eligible_share", "invited_share", "visible_share", "invited"]].join(flows)
    # churn relative to those with access before the re-evaluation
    before = ends["invited"] - flows["gained_access"] + flows["lost_access"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["gained_rate"] = (flows["gained_access"] / before).where(before > 0)
        out["lost_rate"] = (flows["lost_access"] / before).where(before > 0)
        out["churn_rate"] = out["gained_rate"] + out["lost_rate"]
    return out.reset_index()
