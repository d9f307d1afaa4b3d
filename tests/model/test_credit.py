"""Issue 3: the credit line's life, vintages and expected loss.

Every expected value here comes from the scenario's inputs or from arithmetic done in the
test, never from the code under test.
"""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from credit_helpers import ROOT, scenario, single_vintage

from sim import ScenarioError, run
from sim.engine.simulation import Simulation
from sim.model import credit, risk, scoring
from sim.model.population import synthesize

FEN = 100


def fen(series: pd.Series) -> np.ndarray:
    """CNY amounts back to whole fen (exact for the totals the tables hold)."""
    return np.round(series.to_numpy(dtype=np.float64) * FEN).astype(np.int64)


# ----------------------------------------------------------------------------- analytic


def test_constant_hazard_matches_geometric_law():
    """One vintage, no cures, constant monthly default hazard h: the share defaulted after
    ``k`` months of exposure is 1 - (1 - h)^k.

    Timing: lines open at the month end of the invitation (months on book 0) and are first
    billed one month later, so exposure after ``m`` months on book is ``m`` months; a missed
    payment is 1-30 days past due and reaches 90+ (the default) three monthly rolls later. So
    the cumulative 90+ rate at ``mob = k + 3`` must equal 1 - (1 - h)^k.

    Tolerance: the vintage's N accounts default independently, so the observed share has
    binomial standard error sqrt(p (1 - p) / N); we allow 4 standard errors at each of the
    ~10 points (two-sided false-alarm chance about 6e-5 each, under 1e-3 for the test).
    """
    h = 0.03
    changes = single_vintage(users=20_000)
    changes.update({"risk.dispersion": 0.0, "risk.monthly_hazard": h,
                    "risk.lifecycle": {"form": "flat"},  # constant in months on book
                    "credit.delinquency.cure": [0.0, 0.0, 0.0]})
    res = run(scenario(changes), seed=7, quarters=5)
    v = res.vintages
    assert v["vintage"].nunique() == 1
    v = v.set_index("mob")
    n = res.population.weight and v["accounts"].iloc[0] / res.population.weight
    assert n > 3000
    # the premise: every account of the vintage opened its line at months on book 0
    assert v.loc[0, "opened"] == pytest.approx(v.loc[0, "accounts"])
    checked = 0
    for k in range(1, int(v.index.max()) - 2):
        expected = 1.0 - (1.0 - h) ** k
        se = math.sqrt(expected * (1.0 - expected) / n)
        observed = v.loc[k + 3, "dpd90_cum_rate"]
        assert abs(observed - expected) <= 4 * se, (k, observed, expected, se)
        checked += 1
    assert checked >= 9
    # nothing defaults before three monthly rolls have passed
    assert (v.loc[[0, 1, 2, 3], "dpd90_cum_rate"] == 0).all()


# ----------------------------------------------------------------------------- money


def test_balance_is_conserved_to_the_cent_every_month():
    changes = single_vintage(users=20_000)
    for key in ("credit.repayment.full", "credit.repayment.minimum_only", "credit.draw_rate",
                "credit.activation"):
        del changes[key]  # the baseline's repayment mix and activation
    changes["risk.monthly_hazard"] = 0.02
    res = run(scenario(changes), seed=11, quarters=4)
    m = res.monthly
    opening, closing = fen(m["opening_balance"]), fen(m["outstanding"])
    flows = (fen(m["draws"]) + fen(m["interest_revenue"]) - fen(m["repayments"])
             - fen(m["charge_offs"]))
    assert np.array_equal(opening + flows, closing)
    assert opening[0] == 0
    assert np.array_equal(opening[1:], closing[:-1])
    # the identity was exercised by every kind of flow
    for col in ("draws", "interest_revenue", "repayments", "charge_offs"):
        assert m[col].sum() > 0, col
    # net income is revenue - net charge-off loss - funding cost
    assert np.allclose(m["net_income"],
                       m["interest_revenue"] - m["charge_off_loss"] - m["funding_cost"])
    assert np.allclose(m["charge_off_loss"], m["charge_offs"] - m["recoveries"])
    lgd = res.scenario.credit.loss.lgd
    # each account's loss is rounded to the fen, so the sums agree to rounding, not exactly
    assert m["charge_off_loss"].sum() == pytest.approx(lgd * m["charge_offs"].sum(), rel=1e-5)


# ----------------------------------------------------------------------------- invariants


@pytest.fixture(scope="module")
def stressed():
    """A risky, fast-raising book under the 2020 rules, so every cap and default path runs."""
    changes = {**single_vintage(users=20_000), "risk.monthly_hazard": 0.02,
               "credit.repayment.full": 0.25, "credit.limits.raise_after_months": 1,
               "credit.limits.raise_on_time_share": 0.0, "credit.limits.raise_factor": 10.0,
               "credit.limits.freeze_days": 0}
    return run(scenario(changes, ROOT / "scenarios" / "regulated-2020.yaml"), seed=3,
               quarters=6)


def test_vintage_cumulative_default_rates_never_fall(stressed):
    v = stressed.vintages
    assert v["dpd90_cum_rate"].max() > 0
    for _, g in v.sort_values("mob").groupby("vintage"):
        rates = g["dpd90_cum_rate"].to_numpy()
        assert np.all(np.diff(rates) >= 0), g[["mob", "dpd90_cum_rate"]]
    maturity = stressed.scenario.credit.vintage_maturity_months
    assert (v["immature"] == (v["mob"] < maturity)).all()
    assert v["mob"].min() == 0


def test_a_defaulted_user_never_borrows_again(stressed):
    book, pop = stressed.book, stressed.population
    defaulted = book.default_month >= 0
    assert defaulted.sum() > 50
    assert np.all(book.last_draw_month[defaulted] < book.default_month[defaulted])
    assert pop.closed[defaulted].all() and not pop.invited[defaulted].any()
    assert stressed.monthly["cum_defaults"].is_monotonic_increasing


def test_no_limit_above_the_caps(stressed):
    book, pop, sc = stressed.book, stressed.population, stressed.scenario
    mult = np.array([r.limit_multiplier for r in sc.population.regions.values()])[pop.region]
    limit_cny = book.limit / FEN
    assert limit_cny.max() <= 300_000
    assert np.all(limit_cny <= 300_000 * mult)  # county regions: half
    annual_income = 12.0 * pop.income.astype(np.float64)
    assert np.all(limit_cny <= np.minimum(200_000, annual_income / 3.0) + 1e-6)
    bound = stressed.summary["credit"]["cap_bound"]
    assert bound["rules_2020:income"] > 0  # the caps really were reached


def test_first_limits_in_range_and_county_halved():
    changes = {**single_vintage(users=20_000), "credit.limits.cut_on_delinquency": 0.0,
               "reporting.run_off_months": 0}
    res = run(scenario(changes), seed=5, quarters=1)
    book, pop, sc = res.book, res.population, res.scenario
    opened = book.opened
    assert opened.sum() > 100
    county = pop.labels["region"].index("county")
    lim = book.limit[opened] / FEN
    is_county = pop.region[opened] == county
    # three months, no cut at delinquency: no raise yet, so every limit is a first limit
    assert lim[~is_county].min() >= 500 and lim[~is_county].max() <= 5000
    if is_county.any():
        assert lim[is_county].max() <= 2500
    rate = book.rate[opened]
    assert rate.min() >= 0.0002 - 1e-12 and rate.max() <= 0.0005 + 1e-12
    assert sc.credit.pricing.min_daily == 0.0002


# ----------------------------------------------------------------------------- strategy


def test_raising_the_cutoff_lowers_default_rate_and_coverage():
    # One phase that invites every eligible user at once, so both books season alike: with
    # staged batches a smaller pool is invited earlier, and an older book shows more of its
    # defaults in the same calendar window (the seasoning effect the vintage table exists for).
    everyone = [{"name": "all", "start": "2025-01-01", "cadence_days": 30,
                 "batch": {"share": 1.0}}]
    base = {"population.users": 40_000, "risk.monthly_hazard": 0.012,
            "rollout.phases": everyone}
    low = run(scenario({**base, "scoring.cutoff": 20}), seed=21, quarters=8)
    high = run(scenario({**base, "scoring.cutoff": 45}), seed=21, quarters=8)
    d_low = low.summary["credit"]["annualised_default_rate"]
    d_high = high.summary["credit"]["annualised_default_rate"]
    assert d_high < d_low
    assert high.monthly["default_rate_12m"].iloc[-1] < low.monthly["default_rate_12m"].iloc[-1]
    assert high.monthly["invited_share"].iloc[-1] < low.monthly["invited_share"].iloc[-1]


def test_baseline_default_and_loss_rates_are_plausible():
    """Plausible band for unsecured consumer micro-loans (see the README): annualised net
    loss rate 0.3%-8% of the average balance (US bank credit-card net charge-off rates ran
    1.5%-10.5% a year in 1985-2023; whitelisted Chinese micro-loans report far lower NPLs),
    annualised default rate 0.5%-10% of borrowers."""
    res = run(scenario({"population.users": 50_000}), seed=20250101)
    c = res.summary["credit"]
    assert 0.005 <= c["annualised_default_rate"] <= 0.10
    assert 0.003 <= c["annualised_loss_rate"] <= 0.08
    assert 0.005 <= c["default_rate_12m"] <= 0.10
    assert c["net_income"] > 0
    for q in res.summary["quarters"]:
        assert {"default_rate_12m", "loss_rate", "net_income"} <= set(q)


def test_capital_cap_stops_invitations_raises_and_draws_and_flags_the_month():
    """While outstanding is at the capital limit no batch goes out, no limit rises and no new
    draw is made: outstanding never exceeds the limit by more than one month's interest."""
    limit = 1.0e8  # 100 m CNY of outstanding at most
    changes = {"population.users": 10_000, "capital.equity": 1.0e7,
               "capital.max_leverage": 10.0, "reporting.run_off_months": 6}
    res = run(scenario(changes), seed=2, quarters=2)
    m = res.monthly
    assert m["capital_bound"].any()
    first = int(m.loc[m["capital_bound"], "month"].min())
    later = m[m["month"] > first]
    assert (later["new_invites"] == 0).all() and (later["batches"] == 0).all()
    # month-end outstanding is at most the limit (draws are scaled to the room left) ...
    assert (m["outstanding"] <= limit * (1 + 1e-9)).all()
    # ... and within a month only interest can push it over: opening + interest <= limit +
    # that month's interest
    assert (m["opening_balance"] <= limit * (1 + 1e-9)).all()
    bound = m[m["capital_bound"]]
    assert (bound["opening_balance"] + bound["interest_revenue"]
            <= limit + bound["interest_revenue"] + 1.0).all()
    # a month that opens at the limit (the month before was bound) raises no limit
    opens_bound = m[m["capital_bound"].shift(fill_value=False).to_numpy(dtype=bool)]
    assert not opens_bound.empty and (opens_bound["limit_raises"] == 0).all()
    free = run(scenario({**changes, "capital.equity": None, "capital.max_leverage": None}),
               seed=2, quarters=2)
    assert not free.monthly["capital_bound"].any()
    assert free.monthly["invited"].iloc[-1] > m["invited"].iloc[-1]
    assert free.monthly["outstanding"].max() > 1.5 * limit


def test_macro_shock_raises_hazard_in_its_window():
    changes = {"population.users": 30_000, "risk.monthly_hazard": 0.02,
               "macro.shocks": [{"name": "x", "start": "2025-07-01", "end": "2025-12-31",
                                 "hazard_multiplier": 2.0}]}
    shocked = run(scenario(changes), seed=9, quarters=4).monthly
    calm = run(scenario({**changes, "macro.shocks": []}), seed=9, quarters=4).monthly
    window = shocked["month"].between(7, 12)
    assert (shocked.loc[window, "macro_factor"] == 2.0).all()
    assert (shocked.loc[~window, "macro_factor"] == 1.0).all()
    assert shocked.loc[window, "overdue_episodes"].sum() > 1.5 * calm.loc[
        window, "overdue_episodes"].sum()
    assert shocked["ecl_12m"].iloc[8] > calm["ecl_12m"].iloc[8]


# ----------------------------------------------------------------------------- tables


def test_tables_have_the_issue_columns():
    res = run(scenario({"population.users": 5_000}), seed=1, quarters=2)
    needed = {"active", "borrowers", "outstanding", "limit_total", "dpd30", "dpd90",
              "new_defaults", "cum_defaults", "default_rate_12m", "charge_off_loss",
              "expected_loss", "interest_revenue", "net_income", "r1_hidden", "r2_hidden",
              "r3_closed", "capital_bound", "ecl_12m", "ecl_lifetime", "stage2", "stage3",
              "lagged_default_rate"}
    assert needed <= set(res.monthly.columns)
    vint = res.tables()["vintages"]
    assert {"vintage", "vintage_date", "mob", "accounts", "dpd30_rate", "dpd90_cum_rate",
            "loss_rate", "immature"} <= set(vint.columns)
    assert len(vint) > 0
    assert {"borrowers", "defaults", "loss"} <= set(res.segments.columns)
    # segments add up to the monthly totals
    last = res.segments[res.segments["month"] == res.monthly["month"].max()]
    per_dim = last.groupby("dimension")["borrowers"].sum()
    assert np.allclose(per_dim, res.monthly["borrowers"].iloc[-1])


def test_same_seed_same_tables():
    sc = scenario({"population.users": 8_000})
    a, b = run(sc, seed=123, quarters=3), run(sc, seed=123, quarters=3)
    for name, table in a.tables().items():
        pd.testing.assert_frame_equal(table, b.tables()[name], obj=name)
    assert a.summary["credit"] == b.summary["credit"]
    c = run(sc, seed=124, quarters=3)
    assert not c.monthly["draws"].equals(a.monthly["draws"])


def test_population_draw_does_not_depend_on_credit_settings():
    a = scenario({"population.users": 3_000})
    b = scenario({"population.users": 3_000, "credit.draw_rate": 0.9,
                  "credit.loss.lgd": 0.5, "fraud.r1_rate": 0.01})
    sa, sb = Simulation(a), Simulation(b)
    assert np.array_equal(sa.pop.score, sb.pop.score)
    assert np.array_equal(sa.pop.hazard, sb.pop.hazard)


# ----------------------------------------------------------------------------- scoring


def test_score_adjustment_moves_the_score_point_for_point():
    sc = scenario({"population.users": 2_000})
    sim_ = Simulation(sc)
    pop = sim_.pop
    before = scoring.evaluate(pop, sc).score.copy()
    pop.score_adjust[:100] = -30.0
    pop.score_adjust[100:200] = 15.0
    after = scoring.evaluate(pop, sc).score
    assert np.allclose(after[:100] - before[:100], -30.0, atol=1e-3)
    assert np.allclose(after[100:200] - before[100:200], 15.0, atol=1e-3)
    assert np.array_equal(after[200:], before[200:])


def test_overdue_episodes_cost_score_points():
    changes = {**single_vintage(users=20_000), "risk.monthly_hazard": 0.03, "risk.dispersion": 0.5,
               "credit.repayment.full": 0.25}
    res = run(scenario(changes), seed=4, quarters=2)
    book, pop = res.book, res.population
    eff = res.scenario.credit.score
    late = book.state >= credit.D1_30
    assert late.sum() > 20
    assert np.all(pop.score_adjust[late] <= eff.ceiling - eff.overdue_points + 1e-6)
    assert np.all(pop.score_adjust >= eff.floor) and np.all(pop.score_adjust <= eff.ceiling)
    assert (pop.score_adjust == eff.early_repayment_points).any()


# ----------------------------------------------------------------------------- scenario


def test_activation_must_name_every_archetype():
    with pytest.raises(ScenarioError) as err:
        scenario({"credit.activation": {"affluent_active": 0.1}})
    assert err.value.path == "credit.activation"


def test_a_cap_rule_needs_an_amount_or_income_share():
    with pytest.raises(ScenarioError) as err:
        scenario({"credit.limits.caps": [{"name": "x", "start": "2020-01-01"}]})
    assert "caps" in err.value.path


def test_synthesis_sets_the_new_arrays():
    sc = scenario({"population.users": 1_000})
    pop = synthesize(sc, np.random.default_rng(0))
    assert pop.hidden.dtype == bool and not pop.hidden.any()
    assert pop.score_adjust.dtype == np.float32 and not pop.score_adjust.any()


def test_a_shock_that_pushes_a_probability_past_one_is_reported_not_clipped(tmp_path):
    from typer.testing import CliRunner

    from sim.cli.app import app

    shock = "macro.shocks=[{start: 2025-03-01, end: 2025-04-30, hazard_multiplier: 200}]"
    baseline = str(ROOT / "scenarios" / "baseline.yaml")
    res = CliRunner().invoke(app, ["run", baseline, "--users", "20000", "--quarters", "1",
                                   "--quiet", "--no-report", "--set", shock,
                                   "--out", str(tmp_path / "r")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "month 3" in text and "'credit'" in text and "macro.shocks" in text
    assert "not clipped" in text and not (tmp_path / "r").exists()


def test_roll_through_is_the_product_of_each_buckets_roll():
    """From 1-30 days past due a line reaches 90+ only by rolling on from every bucket."""
    cures = [np.array([0.5, 0.0, 1.0]), np.array([0.2, 0.0, 0.3]), np.array([0.1, 0.0, 0.4])]
    np.testing.assert_allclose(credit.roll_through(cures), [0.5 * 0.8 * 0.9, 1.0, 0.0])


def test_entry_probability_block_by_block_is_the_whole_array_formula():
    """The chance of missing a bill is computed in cache-sized blocks: the same numbers as
    the whole-array hazard over roll-through, and a hazard past 1 is counted over all."""
    sc = scenario()
    r = np.random.default_rng(4)
    n = 2 * credit.ENTRY_BLOCK + 123
    pop = SimpleNamespace(hazard=(sc.risk.monthly_hazard * r.lognormal(0, 0.5, n)
                                  ).astype(np.float32))
    users, mob = np.arange(n), r.integers(0, 40, n)
    cures = credit.cure_probabilities(pop, sc, users)
    through = (1.0 - cures[:, 0]) * ((1.0 - cures[:, 1]) * (1.0 - cures[:, 2]))
    seen = set()
    for macro in (1.0, 200.0):
        want = (risk.hazard(pop.hazard, mob + risk.ROLL_MONTHS, macro, sc.risk.lifecycle)
                / np.maximum(through, 1e-12))
        seen.add(bool((want <= 1.0).all()))
        if (want <= 1.0).all():
            assert np.array_equal(credit.entry_probability(pop, sc, macro, users, mob), want)
            assert np.array_equal(credit.entry_probability(pop, sc, macro, users),
                                  pop.hazard * macro / np.maximum(through, 1e-12))
        else:
            with pytest.raises(credit.HazardTooHigh) as exc:
                credit.entry_probability(pop, sc, macro, users, mob)
            assert (exc.value.users, exc.value.of) == (int((want > 1.0).sum()), n)
            assert exc.value.largest == want.max()
    assert seen == {True, False}  # both cases ran


def test_the_ifrs9_stages_and_ead_are_their_plain_sums(stressed):
    """Stage balances and EAD of a stressed book (lines in every state, charged off and
    closed too) are the plain masked sums: stage 1 under 30 days past due, stage 2 30-89,
    stage 3 at 90+, charged-off lines in none; EAD = balance + CCF x undrawn for lines
    current and open, summed over the live lines in index order."""
    book, sc = stressed.book, stressed.scenario
    lines = np.flatnonzero(book.opened)
    state, balance, limit = book.state[lines], book.balance[lines], book.limit[lines]
    assert {credit.CURRENT, credit.D31_60, credit.DEFAULT, credit.CHARGED_OFF} <= set(
        state.tolist())
    pop = copy.copy(stressed.population)  # every third current line's user closed
    pop.closed = pop.closed.copy()
    pop.closed[lines[state == credit.CURRENT][::3]] = True
    live = state <= credit.DEFAULT
    bal = balance.astype(np.float64)
    open_current = (state == credit.CURRENT) & ~pop.closed[lines]
    assert (~pop.closed[lines][state == credit.CURRENT]).any()
    assert pop.closed[lines][state == credit.CURRENT].any()
    ead = bal + np.where(open_current, sc.credit.loss.ccf
                         * np.maximum(limit - balance, 0).astype(np.float64), 0.0)
    got = credit.expected_loss(book, pop, sc, 1.0, with_pd=False)
    assert got["ead"] == ead[live].sum()
    assert got["stage1"] == bal[state < credit.D31_60].sum()
    assert got["stage2"] == bal[(state >= credit.D31_60) & (state < credit.DEFAULT)].sum()
    assert got["stage3"] == bal[state == credit.DEFAULT].sum()


def test_the_allowance_takes_12_months_in_stage_1_and_the_lifetime_after(stressed):
    """IFRS 9's staged allowance: the 12-month expected loss of lines under 30 days past due,
    the lifetime loss of the others; ECL = PD x LGD x EAD a line."""
    book, pop, sc = stressed.book, stressed.population, stressed.scenario
    month = 18
    got = credit.expected_loss(book, pop, sc, 1.0, month=month, fraudster=stressed.fraud.fraudster)
    lines = np.flatnonzero(book.opened)
    live = lines[book.state[lines] <= credit.DEFAULT]
    state, balance, limit = book.state[live], book.balance[live], book.limit[live]
    ead = balance + np.where((state == credit.CURRENT) & ~pop.closed[live],
                             sc.credit.loss.ccf * np.maximum(limit - balance, 0), 0.0)
    pd12, pdl = credit.pd_12m_lifetime(book, pop, sc, 1.0, live, month=month,
                                       fraudster=stressed.fraud.fraudster)
    lgd = sc.credit.loss.lgd
    stage1 = state < credit.D31_60
    assert stage1.any() and (~stage1).any() and (pdl > pd12).any()
    assert got["ecl_12m"] == pytest.approx((pd12 * lgd * ead).sum(), rel=1e-12)
    assert got["ecl_lifetime"] == pytest.approx((pdl * lgd * ead).sum(), rel=1e-12)
    assert got["ecl_allowance"] == pytest.approx(
        (pd12 * lgd * ead)[stage1].sum() + (pdl * lgd * ead)[~stage1].sum(), rel=1e-12)


def test_a_line_without_a_balance_that_cannot_draw_has_no_pd():
    """A current line without a balance defaults only by drawing first: if its user does not
    see the entry (hidden), has lost access (closed) or it has no room, its PD is 0; the same
    lines that can draw have a PD above 0."""
    ran = run(scenario({"population.users": 20_000}), quarters=4)
    book, sc = ran.book, ran.scenario
    lines = np.flatnonzero(book.opened)
    idle = lines[(book.state[lines] == credit.CURRENT) & (book.balance[lines] == 0)
                 & (book.limit[lines] > 0)]
    assert idle.size > 30
    pop = copy.copy(ran.population)
    pop.invited, pop.closed, pop.hidden = (pop.invited.copy(), pop.closed.copy(),
                                           pop.hidden.copy())
    pop.invited[idle], pop.closed[idle], pop.hidden[idle] = True, False, False
    can = credit.pd_12m_lifetime(book, pop, sc, 1.0, idle, month=18)
    assert (can[0] > 0).all() and (can[1] > 0).all()
    for name in ("hidden", "closed"):
        blocked = copy.copy(pop)
        setattr(blocked, name, getattr(pop, name).copy())
        getattr(blocked, name)[idle] = True
        assert not any(pd.any() for pd in credit.pd_12m_lifetime(book, blocked, sc, 1.0, idle,
                                                                  month=18))
    full = copy.copy(book)
    full.limit = book.limit.copy()
    full.limit[idle] = 0  # no room: the limit is the (zero) balance
    assert not any(pd.any() for pd in credit.pd_12m_lifetime(full, pop, sc, 1.0, idle, month=18))
