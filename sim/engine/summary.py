"""The summary of a run: its headline figures, JSON-ready (needs pandas, so the engine's)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from sim.engine.recorder import quarterly
from sim.model import credit, fraud
from sim.model.population import Population, weighted_auc
from sim.scenario import Scenario


class Finished(Protocol):
    """What the summary reads of a finished simulation (``engine.simulation.Simulation``),
    declared here so the summary does not import the simulation that calls it."""

    pop: Population
    scenario: Scenario
    seed: int
    initial_reasons: dict[str, int]  # users the first scoring excludes, by reason
    rollout_months: int
    run_off: int
    end: int
    book: credit.Book
    fraud: fraud.FraudBook

    @property
    def state(self): ...  # its ``batches`` list


def summarize(sim: Finished, monthly: pd.DataFrame) -> dict:
    """The headline figures of a run, JSON-ready."""
    pop, sc = sim.pop, sim.scenario
    horizon = sc.risk.auc_horizon_months
    # 1 - (1 - h)^horizon in place, in float32 like the hazard: one array a user
    pd_h = np.subtract(np.float32(1.0), pop.hazard, dtype=np.float32)
    pd_h **= np.float32(horizon)
    np.subtract(np.float32(1.0), pd_h, out=pd_h)
    q = quarterly(monthly)
    why_not = {name: float(count * pop.weight) for name, count in sim.initial_reasons.items()}
    # coverage is the rollout's: read at the horizon, before the run-off months
    at_horizon = horizon_rows(monthly)
    last = at_horizon.iloc[-1]
    return {
        "scenario": sc.name,
        "strategy": sc.rollout.name,
        "seed": sim.seed,
        "users": pop.n,
        "weight": pop.weight,
        "population": float(pop.n * pop.weight),
        "months": sim.rollout_months,
        "run_off_months": sim.run_off,
        "score_auc": round(weighted_auc(pop.score, pd_h), 6),
        "score_auc_horizon_months": horizon,
        "mean_monthly_hazard": float(pop.hazard.mean()),
        "final": {
            "eligible_share": float(last["eligible_share"]),
            "invited_share": float(last["invited_share"]),
            "visible_share": float(last["visible_share"]),
        },
        "batches": len(sim.state.batches),
        "quarters": [
            {
                "quarter": int(r.quarter),
                "date": str(pd.Timestamp(r.date).date()),
                "eligible_share": float(r.eligible_share),
                "invited_share": float(r.invited_share),
                "visible_share": float(r.visible_share),
                "gained_access": float(r.gained_access),
                "lost_access": float(r.lost_access),
                "gained_rate": _num(r.gained_rate),
                "lost_rate": _num(r.lost_rate),
                "churn_rate": _num(r.churn_rate),
                "default_rate_12m": _num(r.default_rate_12m),
                "lagged_default_rate": _num(r.lagged_default_rate),
                "loss_rate": _num(r.loss_rate),
                "net_income": _num(r.net_income),
                "outstanding": _num(r.outstanding),
                "ecl_allowance": _num(r.ecl_allowance),
                "capital_bound_months": int(r.capital_bound_months),
                "run_off": bool(3 * int(r.quarter) > sim.rollout_months),
            }
            for r in q.itertuples()
        ],
        "not_eligible_at_start": why_not,
        "credit": credit_summary(sim, monthly),
    }


def horizon_rows(monthly: pd.DataFrame) -> pd.DataFrame:
    """The months of the rollout horizon (without the run-off months after it)."""
    if "run_off" not in monthly:
        return monthly
    return monthly[~monthly["run_off"].to_numpy(dtype=bool)]


def _num(x) -> float | None:
    return None if pd.isna(x) else float(x)


def credit_summary(sim: Finished, monthly: pd.DataFrame) -> dict:
    """Headline credit and fraud figures of the whole run."""
    pop, book = sim.pop, sim.book
    years = len(monthly) / 12.0
    borrower_years = monthly["borrowers"].sum() / 12.0
    avg_outstanding = monthly["outstanding"].mean()
    cap_bound = {}
    for i, rule in enumerate(sim.scenario.credit.limits.caps):
        for k, kind in enumerate(credit.CAP_KINDS):
            if (rule.income_share is None) == (kind == "income"):
                continue
            bit = np.uint32(1 << (3 * i + k))
            users = np.count_nonzero(book.cap_bound & bit)
            cap_bound[f"{rule.name}:{kind}"] = float(users * pop.weight)
    since = sim.end - 365  # the run's last year
    return {
        "annualised_default_rate": _num(monthly["new_defaults"].sum() / borrower_years
                                        if borrower_years > 0 else np.nan),
        "annualised_loss_rate": _num(monthly["charge_off_loss"].sum() / years / avg_outstanding
                                     if avg_outstanding > 0 else np.nan),
        "default_rate_12m": _num(monthly["default_rate_12m"].iloc[-1]),
        "lagged_default_rate": _num(monthly["lagged_default_rate"].iloc[-1]),
        "interest_revenue": float(monthly["interest_revenue"].sum()),
        "charge_off_loss": float(monthly["charge_off_loss"].sum()),
        "funding_cost": float(monthly["funding_cost"].sum()),
        "net_income": float(monthly["net_income"].sum()),
        "outstanding": float(monthly["outstanding"].iloc[-1]),
        "accounts_opened": float(np.count_nonzero(book.opened) * pop.weight),
        "defaults": float(np.count_nonzero(book.default_month >= 0) * pop.weight),
        "wrongly_blocked_share": _num(fraud.wrongly_blocked_share(sim.fraud, pop, since)),
        "wrongly_blocked_window_days": 365,
        "reviews": float(monthly["reviews"].sum()),
        "cap_bound": cap_bound,
        "capital_bound_months": int(monthly["capital_bound"].sum()),
    }


