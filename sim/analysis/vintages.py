"""Age-period-cohort (dual-time) decomposition of a vintage triangle.

A vintage triangle holds, for each vintage (cohort) and month on book (age), the defaults and
the exposure (lines still open and not in default). The monthly default rate is modelled as

    log E[defaults] = log exposure + lifecycle(age) + environment(period) + quality(vintage)

with period = vintage + age (calendar month), a Poisson GLM (statsmodels). Age, period and
cohort are linearly dependent, so one linear trend cannot be told apart from the data: the
**identification constraint** used here is that vintage quality has no linear trend across
vintages (its effects are coded orthogonal to a constant and a line). Any steady drift of
quality over vintages is therefore read as a trend in lifecycle and environment. Lifecycle is
reported relative to its reference month on book (the first with defaults), environment
relative to its first period, quality relative to the average vintage; each with a 95%
Wald interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import GreysimError

CONSTRAINTS = {
    "quality": "vintage quality has no linear trend across vintages (its effects are "
               "orthogonal to a constant and a line)",
    "environment": "the environment has no linear trend across calendar months (its effects "
                   "are orthogonal to a constant and a line)",
}
REFERENCES = ("; lifecycle relative to the month on book with the most defaults, environment "
              "and quality relative to their average")
CONSTRAINT = CONSTRAINTS["quality"] + REFERENCES


class TriangleError(GreysimError, ValueError):
    """A vintage triangle that cannot be decomposed (missing columns, too few cells)."""


@dataclass(frozen=True, repr=False)
class Decomposition:
    """Lifecycle, environment and quality curves (multipliers with 95% intervals)."""

    lifecycle: pd.DataFrame  # age, multiplier, lower, upper
    environment: pd.DataFrame  # period, multiplier, lower, upper
    quality: pd.DataFrame  # vintage, multiplier, lower, upper
    constraint: str
    cells: int
    defaults: float

    def __repr__(self) -> str:
        peak = self.lifecycle.loc[self.lifecycle.multiplier.idxmax(), "age"]
        return (f"Age-period-cohort fit of {self.cells} cells ({self.defaults:,.0f} defaults): "
                f"lifecycle peaks at month on book {peak}; {len(self.environment)} periods, "
                f"{len(self.quality)} vintages\n  constraint: {self.constraint}")


def triangle_from_vintages(vintages: pd.DataFrame, weight: float = 1.0,
                           pool: int = 3) -> pd.DataFrame:
    """A run's ``vintages`` table as a triangle of (vintage, age, period, defaults, exposure).

    Age is months since the vintage's invitation (``mob``); defaults are new 90+ lines in the
    month (the rise of ``dpd90_cum_rate`` times the vintage's accounts), exposure the lines
    opened by the month before, less those already in default: a rate per opened line.
    ``weight`` (users each simulated user stands for) turns weighted counts back into
    simulated ones, so the intervals reflect the simulated sample. Batches invited in the
    same ``pool`` months (3: a quarter) form one vintage, so each has enough defaults.
    """
    need = {"vintage", "month", "mob", "accounts", "opened", "dpd90_cum_rate"}
    missing = need - set(vintages.columns)
    if missing:
        raise TriangleError(f"the vintages table lacks column(s) {sorted(missing)}")
    rows = []
    for v, g in vintages.sort_values(["vintage", "mob"]).groupby("vintage"):
        cum = (g["dpd90_cum_rate"].fillna(0.0) * g["accounts"]).to_numpy() / weight
        opened = g["opened"].to_numpy() / weight
        new = np.diff(cum, prepend=0.0)
        exposure = np.concatenate([[0.0], opened[:-1] - cum[:-1]])
        rows.append(pd.DataFrame({"vintage": int(v), "age": g["mob"].to_numpy(),
                                  "period": g["month"].to_numpy(),
                                  "defaults": np.maximum(np.round(new), 0.0),
                                  "exposure": exposure}))
    if not rows:
        return pd.DataFrame(columns=["vintage", "age", "period", "defaults", "exposure"])
    cells = pd.concat(rows, ignore_index=True)
    cells["vintage"] = (cells["period"] - cells["age"]) // max(int(pool), 1)
    return cells.groupby(["vintage", "age", "period"], as_index=False)[
        ["defaults", "exposure"]].sum()


def triangle_from_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """An observed triangle: columns ``vintage`` (cohort month, integer), ``mob`` or ``age``,
    ``defaults`` and ``exposure``; period = vintage + age."""
    df = frame.rename(columns={"mob": "age"})
    missing = {"vintage", "age", "defaults", "exposure"} - set(df.columns)
    if missing:
        named = sorted("mob (or age)" if c == "age" else c for c in missing)
        raise TriangleError(f"an observed vintage triangle needs column(s) {', '.join(named)} "
                            "(vintage = cohort month as an integer, mob = months on book, "
                            "defaults and exposure in the month)")
    df = df[["vintage", "age", "defaults", "exposure"]].astype(float)
    df["period"] = df["vintage"] + df["age"]
    return df


def _orthogonal_contrasts(levels: int, trend: bool = True) -> np.ndarray:
    """A basis of effects with zero mean (and zero linear trend when ``trend``): shape
    (levels, levels - 2) or (levels, levels - 1)."""
    x = np.arange(levels, dtype=float)
    span = np.column_stack([np.ones(levels), x - x.mean()] if trend else [np.ones(levels)])
    q, _ = np.linalg.qr(span, mode="complete")
    return q[:, span.shape[1]:]


def decompose(triangle: pd.DataFrame, constraint: str = "quality") -> Decomposition:
    """Fit the age-period-cohort Poisson GLM to ``triangle`` (see the module docstring).

    ``constraint`` says which curve carries no linear trend: ``quality`` (the default: any
    drift of quality over vintages shows as a trend in lifecycle and environment) or
    ``environment`` (right when the calendar had no steady drift, e.g. a run without macro
    shocks: then a steady worsening of vintages shows in quality)."""
    if constraint not in CONSTRAINTS:
        raise TriangleError(f"constraint '{constraint}' is not one of {sorted(CONSTRAINTS)}")
    import statsmodels.api as sm

    df = triangle[(triangle["exposure"] > 0)].copy()
    # months on book and periods with no default at all carry no information on their level
    df = df[df.groupby("age")["defaults"].transform("sum") > 0]
    df = df[df.groupby("period")["defaults"].transform("sum") > 0]
    if df.empty or df["defaults"].sum() == 0:
        raise TriangleError("the vintage triangle has no defaults to decompose")
    ages = np.sort(df["age"].unique())
    periods = np.sort(df["period"].unique())
    vintages = np.sort(df["vintage"].unique())
    if len(ages) < 3 or len(periods) < 3 or len(vintages) < 3:
        raise TriangleError("a decomposition needs at least 3 months on book, 3 periods and 3 "
                            f"vintages with defaults (have {len(ages)}, {len(periods)}, "
                            f"{len(vintages)})")
    a = np.searchsorted(ages, df["age"])
    p = np.searchsorted(periods, df["period"])
    c = np.searchsorted(vintages, df["vintage"])
    n = len(df)
    # lifecycle: treatment coding against the month on book with the most defaults
    ref = int(np.argmax(np.bincount(a, weights=df["defaults"].to_numpy(),
                                    minlength=len(ages))))
    others = np.delete(np.arange(len(ages)), ref)
    age_x = (a[:, None] == others[None, :]).astype(float)
    per_basis = _orthogonal_contrasts(len(periods), trend=constraint == "environment")
    basis = _orthogonal_contrasts(len(vintages), trend=constraint == "quality")
    x = np.column_stack([np.ones(n), age_x, per_basis[p], basis[c]])
    fit = sm.GLM(df["defaults"].to_numpy(), x, family=sm.families.Poisson(),
                 offset=np.log(df["exposure"].to_numpy())).fit()
    beta, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    ia = slice(1, len(ages))
    ip = slice(len(ages), len(ages) + per_basis.shape[1])
    ic = slice(ip.stop, x.shape[1])

    def curve(name, values, est, var):
        z = 1.959963984540054
        sd = np.sqrt(np.maximum(var, 0.0))
        lo, hi = np.clip(est - z * sd, -700, 700), np.clip(est + z * sd, -700, 700)
        return pd.DataFrame({name: values, "multiplier": np.exp(est),
                             "lower": np.exp(lo), "upper": np.exp(hi)})

    life_est = np.insert(beta[ia], ref, 0.0)
    life_var = np.insert(np.diag(cov)[ia], ref, 0.0)
    lifecycle = curve("age", ages, life_est, life_var)

    def mapped(b, idx):
        return b @ beta[idx], np.einsum("ij,jk,ik->i", b, cov[idx, idx], b)

    environment = curve("period", periods, *mapped(per_basis, ip))
    quality = curve("vintage", vintages, *mapped(basis, ic))
    return Decomposition(lifecycle, environment, quality, CONSTRAINTS[constraint] + REFERENCES, n,
                         float(df["defaults"].sum()))


def figure(dec: Decomposition):
    """The three curves with their intervals, side by side (a matplotlib Figure, no I/O)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    parts = ((dec.lifecycle, "age", "lifecycle (month on book)"),
             (dec.environment, "period", "environment (calendar month)"),
             (dec.quality, "vintage", "vintage quality"))
    for ax, (df, col, title) in zip(axes, parts, strict=True):
        ax.fill_between(df[col], df["lower"], df["upper"], alpha=0.25, linewidth=0)
        ax.plot(df[col], df["multiplier"], marker="o", markersize=3)
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel(col)
    axes[0].set_ylabel("default-rate multiplier (95% interval)")
    fig.suptitle("Age-period-cohort decomposition; constraint: " + dec.constraint,
                 fontsize=8)
    return fig
