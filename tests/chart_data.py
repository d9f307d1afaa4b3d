"""Synthetic tables for chart and report tests: monthly credit figures and vintage curves of
known shape, so a test can say what a chart must show."""

from __future__ import annotations

import numpy as np
import pandas as pd


def credit_monthly(strategies=("tier_first",), reps=1, months=12, seed=0) -> pd.DataFrame:
    """A monthly table with the credit model's columns: a book growing 2 bn CNY a month."""
    rng = np.random.default_rng(seed)
    rows = []
    for si, strategy in enumerate(strategies):
        for rep in range(reps):
            for m in range(1, months + 1):
                share = min(0.03 * m * (1 + 0.3 * si), 0.5) + rng.normal(0, 0.004)
                out = 2e9 * m * (1 + 0.3 * si)
                rows.append(dict(
                    strategy=strategy, replication=rep, month=m, quarter=(m - 1) // 3 + 1,
                    date=pd.Timestamp("2025-01-31") + pd.offsets.MonthEnd(m - 1),
                    population=1e9, eligible=6e8, invited=share * 1e9, visible=0.9 * share * 1e9,
                    active=0.5 * share * 1e9, borrowers=0.3 * share * 1e9,
                    invited_share=share, visible_share=0.9 * share, gained_access=1e6 * m,
                    lost_access=5e5 * m, outstanding=out, limit_total=3 * out,
                    capital_limit=18e9, capital_bound=out > 18e9,
                    default_rate_12m=0.012 + 0.006 * si + rng.normal(0, 0.001),
                    interest_revenue=0.015 * out, charge_off_loss=0.008 * out * (m > 4),
                    funding_cost=0.003 * out,
                    net_income=0.015 * out - 0.008 * out * (m > 4) - 0.003 * out))
    return pd.DataFrame(rows)


def vintages(n=8, horizon=18) -> pd.DataFrame:
    """Monthly vintages seasoning towards a 3% cumulative 90+ rate; under 12 MOB immature."""
    rows = [dict(vintage=v, vintage_date=pd.Timestamp("2025-01-15") + pd.DateOffset(months=v),
                 mob=mob, accounts=1e6, dpd30_rate=0.02,
                 dpd90_cum_rate=0.03 * (1 - np.exp(-mob / 8)), loss_rate=0.01,
                 immature=mob < 12)
            for v in range(n) for mob in range(horizon - v)]
    return pd.DataFrame(rows)
