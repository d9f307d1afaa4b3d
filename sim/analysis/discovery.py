"""Scenario discovery: which assumptions describe the futures in which a plan fails.

PRIM (Friedman and Fisher's patient rule induction, as implemented by EMA Workbench's
``ema_workbench.analysis.prim``) peels the space of uncertainties down to a box holding the
failing futures: its *coverage* is the share of all failing futures inside the box, its
*density* the share of futures inside the box that fail. The box is reported as the range of
each scenario key it restricts; date keys are peeled as days and reported as dates.

EMA Workbench is imported on first use (it takes seconds and warns about optional parallel
back-ends it does not need here).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sim.errors import GreysimError

#: A box must hold at least this share of the failing futures to be chosen.
MIN_COVERAGE = 0.8
#: A restriction whose quasi-p-value is under this is taken as more than chance.
SIGNIFICANT = 0.05


class DiscoveryError(GreysimError, ValueError):
    """Scenario discovery that cannot be made; ``str()`` is the message users see."""


@dataclass(frozen=True, repr=False)
class Discovery:
    """The PRIM box of the futures of interest (``y`` true), its peeling trajectory, and
    what it covers. ``box`` has one row per uncertainty (``low``, ``high`` the box, ``full_low``,
    ``full_high`` the sampled range, ``restricted``, ``qp_value`` EMA Workbench's
    quasi-p-value of the restriction); ``trajectory`` one row per peeling step
    (coverage, density, mass, restricted dimensions; ``chosen`` marks the box reported)."""

    box: pd.DataFrame
    trajectory: pd.DataFrame
    coverage: float
    density: float
    mass: float
    cases: int
    of_interest: int
    note: str = ""
    rules: tuple[str, ...] = field(default=())
    caution: str = ""  # set when no restriction is significant

    @property
    def significant(self) -> bool:
        """Whether some restriction of the box is unlikely to be chance (qp < 0.05)."""
        return bool(len(self.box)) and bool((self.box["qp_value"] < SIGNIFICANT).any())

    def __repr__(self) -> str:
        if self.note:
            return f"Discovery: {self.note}"
        text = (f"Discovery of {self.of_interest} of {self.cases} futures: box with coverage "
                f"{self.coverage:.2f}, density {self.density:.2f}: " + "; ".join(self.rules))
        return text + (f" ({self.caution})" if self.caution else "")


def _numeric(x: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Numbers for PRIM: dates as days since 1970-01-01; the names of the date columns."""
    out, dates = x.copy(), []
    for c in x.columns:
        if pd.api.types.is_datetime64_any_dtype(x[c]):
            out[c] = (x[c] - pd.Timestamp("1970-01-01")).dt.days.astype(float)
            dates.append(c)
        else:
            out[c] = x[c].astype(float)
    return out, dates


def _show(value: float, is_date: bool):
    return (pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(value))).date() if is_date \
        else float(value)


def prim(x: pd.DataFrame, y, *, threshold: float = 0.8, peel_alpha: float = 0.05,
         mass_min: float = 0.05, min_coverage: float = MIN_COVERAGE) -> Discovery:
    """The PRIM box of the futures where ``y`` is true (e.g. the plan fails), over the
    uncertainties ``x`` (one column per scenario key, one row per future).

    The box reported is the densest box on the peeling trajectory that still covers at least
    ``min_coverage`` of the futures of interest (the last box, if none does)."""
    y = np.asarray(y, dtype=bool)
    if len(x) != len(y):
        raise DiscoveryError(f"{len(x)} futures but {len(y)} outcomes")
    n, k = len(y), int(y.sum())
    if k == 0 or k == n:
        what = "no future" if k == 0 else "every future"
        return Discovery(pd.DataFrame(), pd.DataFrame(), np.nan, np.nan, np.nan, n, k,
                         note=f"{what} of {n} is of interest; there is no box to find")
    data, dates = _numeric(x.reset_index(drop=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim as ema_prim

        search = ema_prim.Prim(data, y, threshold=threshold, peel_alpha=peel_alpha,
                               mass_min=mass_min)
        box = search.find_box()
    trajectory = box.peeling_trajectory.copy()
    ok = trajectory[trajectory["coverage"] >= min_coverage]
    pick = int((ok if len(ok) else trajectory.tail(1))
               .sort_values(["density", "coverage"], ascending=False).index[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box.select(pick)
        qp = _qp_values(box, pick)
    trajectory["chosen"] = trajectory.index == pick
    limits = box.box_lims[pick]
    init = search.box_init
    rows, rules = [], []
    for c in data.columns:
        lo, hi = float(limits[c].iloc[0]), float(limits[c].iloc[1])
        flo, fhi = float(init[c].iloc[0]), float(init[c].iloc[1])
        restricted = lo > flo or hi < fhi
        is_date = c in dates
        rows.append({"key": c, "low": _show(lo, is_date), "high": _show(hi, is_date),
                     "full_low": _show(flo, is_date), "full_high": _show(fhi, is_date),
                     "restricted": restricted,
                     "qp_value": qp.get(c, np.nan) if restricted else np.nan})
        if restricted:
            parts = []
            if lo > flo:
                parts.append(f"{c} >= {_fmt(_show(lo, is_date))}")
            if hi < fhi:
                parts.append(f"{c} <= {_fmt(_show(hi, is_date))}")
            rules.append(" and ".join(parts))
    row = trajectory.loc[pick]
    table = pd.DataFrame(rows)
    note = ""
    if not (table["qp_value"] < SIGNIFICANT).any():
        note = (f"no restriction of the box is significant (every qp value >= {SIGNIFICANT}): "
                f"with {k} futures of interest in {n}, the box may describe chance; sample "
                "more futures or replications")
    return Discovery(table, trajectory.reset_index(drop=True), float(row["coverage"]),
                     float(row["density"]), float(row["mass"]), n, k, rules=tuple(rules),
                     caution=note)


def _qp_values(box, i: int) -> dict[str, float]:
    """EMA Workbench's quasi-p-value of each restricted dimension of box ``i`` (the smaller
    of its lower and upper limit's): how likely the restriction is to arise by chance."""
    try:
        _, limits = box.inspect(i, style="data")[0]
    except Exception:  # an older EMA Workbench without style="data": no qp values
        return {}
    cols = [c for c in limits.columns if str(c[-1] if isinstance(c, tuple) else c)
            .startswith("qp")]
    if not cols:
        return {}
    return {str(k): float(v) for k, v in limits[cols].min(axis=1, skipna=True).items()
            if np.isfinite(v)}


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tree(x: pd.DataFrame, y, *, max_depth: int = 3, min_leaf: int = 5) -> str:
    """A second view: a CART classification tree (scikit-learn) of the futures of interest,
    as text rules (dates as days since 1970-01-01)."""
    from sklearn.tree import DecisionTreeClassifier, export_text

    data, _ = _numeric(x.reset_index(drop=True))
    model = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_leaf,
                                   random_state=0)
    model.fit(data.to_numpy(), np.asarray(y, dtype=bool))
    return export_text(model, feature_names=list(data.columns), decimals=6)
