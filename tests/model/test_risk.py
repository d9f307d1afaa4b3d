"""Issue 14: hazard = individual x lifecycle(months on book) x environment; PD from the
chain; fraud losses; fraud rates above 1 are a scenario error.

Expected values come from the scenario's inputs (the lifecycle's closed form) or from the
simulated outcomes the model is asked to predict, never from the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from credit_helpers import scenario, single_vintage

from sim import ScenarioError, run
from sim.engine.simulation import Simulation
from sim.model import credit, risk
from sim.scenario.scoring import Lifecycle

# ----------------------------------------------------------------------------- lifecycle


def test_log_logistic_lifecycle_peaks_where_its_closed_form_says_and_has_mean_one():
    spec = Lifecycle(form="log_logistic", scale=12, shape=3, normalise_months=36)
    curve = risk.lifecycle_curve(spec, 60)
    peak = 12 * (3 - 1) ** (1 / 3)  # 15.1: where the log-logistic hazard is highest
    assert risk.peak_month(spec) == round(peak)
    assert curve[1:37].mean() == pytest.approx(1.0)
    assert curve[0] == 0.0  # no bill in the month of opening
    # ramps over months 3-6, declines after the peak
    assert curve[3] < 0.25 * curve[15] and curve[6] < 0.5 * curve[15]
    assert curve[36] < curve[15]


def test_table_and_flat_lifecycles():
    flat = risk.lifecycle_curve(Lifecycle(form="flat"), 40)
    assert np.allclose(flat[1:], 1.0)
    table = Lifecycle(form="table", table=[1, 2, 3], normalise_months=3)
    assert np.allclose(risk.lifecycle_curve(table, 5)[1:], [0.5, 1.0, 1.5, 1.5, 1.5])
    with pytest.raises(ScenarioError, match="risk.lifecycle"):
        scenario({"risk.lifecycle": {"form": "table"}})


# ----------------------------------------------------------------------------- seasoning


def test_marginal_default_rate_per_opened_line_peaks_between_12_and_18_months_on_book():
    """One vintage, everyone opens at once and borrows every month, the baseline's hazard
    level and lifecycle: defaults per opened line by months on book ramp up and peak at
    12-18. The curve is flat-topped, so the peak is read from a centred 7-month moving
    average (one month's sampling noise, ~5% at 40,000 lines, cannot move it)."""
    res = run(scenario(single_vintage(users=40_000)), seed=5, quarters=9)
    book = res.book
    opened = book.open_month >= 0
    assert opened.sum() > 10_000
    mob = (book.default_month - book.open_month)[opened & (book.default_month >= 0)]
    rate = np.bincount(mob, minlength=30)[:26] / opened.sum()
    assert rate[:4].sum() == 0  # three monthly rolls after the first bill
    smooth = np.convolve(rate, np.ones(7) / 7, mode="valid")  # smooth[i]: centred on i + 3
    peak = int(np.argmax(smooth)) + 3
    assert 12 <= peak <= 18, np.round(rate * 100, 3)
    assert smooth[6 - 3] < 0.6 * smooth.max()  # a ramp over the first months, not a plateau
    assert smooth[-1] < smooth.max()  # and a decline after the peak


def test_a_calendar_shock_raises_every_live_vintage_in_the_same_months():
    """Two runs on the same random numbers, one with the default hazard tripled from January
    to March 2026 (months 13-15): defaults up to month 13 are identical; every quarterly
    cohort of lines opened in months 1-9 (seasoned 3-14 months at the shock) has more
    defaults in months 16-18 (a payment
    missed in the shock defaults three monthly rolls later), the young and the seasoned."""
    base = single_vintage(users=20_000)  # invited at once, lines opening month by month
    base["credit.activation"] = {a: 0.12 for a in base["credit.activation"]}
    shock = [{"name": "s", "start": "2026-01-01", "end": "2026-03-31", "hazard_multiplier": 3}]
    calm = run(scenario(base), quarters=6)
    hit = run(scenario({**base, "macro.shocks": shock}), quarters=6)

    def defaults(res, lo, hi):
        """Defaults in months lo..hi by the quarter the line opened (0 = months 1-3)."""
        book = res.book
        keep = (book.default_month >= lo) & (book.default_month <= hi) & (book.open_month > 0)
        return np.bincount((book.open_month[keep] - 1) // 3, minlength=6)[:3]

    # the same path until the shock's first month (afterwards the draws of the two runs part)
    assert np.array_equal(defaults(calm, 0, 13), defaults(hit, 0, 13))
    before, after = defaults(calm, 16, 18), defaults(hit, 16, 18)
    assert (before >= 5).all(), before
    assert (after > 1.5 * before).all(), (before, after)


# ----------------------------------------------------------------------------- PD


def test_12_month_pd_predicts_realised_defaults_of_accounts_current_at_a_month():
    """Back-test: the PD each line current at month 9 carries (from the model's chain: roll
    and cure, lifecycle, months without a balance) against the share that reaches 90+ by
    month 21 in the same run continued. Within 15% relative (the realised share of ~10,000
    lines has a sampling error of about 3%)."""
    changes = single_vintage(users=30_000)
    for key in ("credit.repayment.full", "credit.repayment.minimum_only", "credit.draw_rate"):
        del changes[key]  # the baseline's repayment mix and draw rate: months without a bill
    sc = scenario(changes)
    snap = Simulation(sc, quarters=3, run_off=0).run()
    later = Simulation(sc, quarters=7, run_off=0).run()
    current = np.flatnonzero(snap.book.opened & (snap.book.state == credit.CURRENT))
    assert current.size > 5_000
    pd12, _ = credit.pd_12m_lifetime(snap.book, snap.population, sc, 1.0, current, month=9,
                                     fraudster=snap.fraud.fraudster)
    d = later.book.default_month[current]
    realised = np.mean((d > 9) & (d <= 21))
    assert realised > 0.01
    assert pd12.mean() == pytest.approx(realised, rel=0.15)
    # the old formula, 1 - (1 - h)^12, overstates it: no bill without a balance, 3-month roll
    naive = 1 - (1 - snap.population.hazard[current].astype(float)) ** 12
    assert naive.mean() > pd12.mean()


# ----------------------------------------------------------------------------- fraud


def test_more_fraudsters_raise_credit_loss_through_first_payment_defaults():
    base = {"population.users": 20_000}
    few = run(scenario({**base, "fraud.fraudsters": 0.0}), quarters=6)
    many = run(scenario({**base, "fraud.fraudsters": 0.05}), quarters=6)
    assert few.monthly["fraud_defaults"].sum() == 0
    assert many.monthly["fraud_defaults"].sum() > 0
    assert many.monthly["charge_off_loss"].sum() > few.monthly["charge_off_loss"].sum()
    # a fraudster who opened a line and drew never repays: every such line defaults
    crook = many.fraud.fraudster & (many.book.cum_draw > 0)
    billed_long_ago = crook & (many.book.last_draw_month <= 18 - 4)
    assert billed_long_ago.sum() > 0
    assert (many.book.default_month[billed_long_ago] >= 0).all()


def test_fraud_rates_that_would_exceed_one_are_a_scenario_error_naming_the_keys():
    with pytest.raises(ScenarioError, match="fraud.fraudster_rate_multiplier") as err:
        scenario({"fraud.fraudster_rate_multiplier": 1000})
    assert "fraud.r1_rate" in str(err.value)
    with pytest.raises(ScenarioError, match="must not exceed 1"):
        scenario({"fraud.r1_rate": 0.6, "fraud.r2_rate": 0.6})


# ----------------------------------------------------------------------------- structure


def test_refitting_an_access_offset_leaves_every_hazard_unchanged():
    """Latent risk comes from behaviour and attributes, not from the segment offsets fitted to
    access rates: moving them changes who gets access, never anyone's hazard."""
    a = scenario({"population.users": 3_000})
    b = scenario({"population.users": 3_000,
                  "population.regions.new_tier1.score_offset": -40,
                  "population.device_grades.C.score_offset": 30,
                  "population.os.ios.score_offset": 20,
                  "population.data_sharing.none.score_offset": 10,
                  "population.regions.county.restricted": 0.5,
                  "scoring.penalties.awakened.points": 0,
                  "population.archetypes.mass_market.score_offset": -15})
    sa, sb = Simulation(a), Simulation(b)
    assert np.array_equal(sa.pop.hazard, sb.pop.hazard)
    # and behaviour does move risk: a worse credit history raises the mean hazard of those
    # whose history it shortens, relative to everyone else (the level is renormalised)
    c = scenario({"population.users": 3_000,
                  "population.archetypes.young_potential.credit_history_years": 0.05})
    sc_ = Simulation(c)
    young = sa.pop.archetype == list(a.population.archetypes).index("young_potential")
    ratio_a = sa.pop.hazard[young].mean() / sa.pop.hazard[~young].mean()
    ratio_c = sc_.pop.hazard[young].mean() / sc_.pop.hazard[~young].mean()
    assert ratio_c > ratio_a


def test_pd_chain_matches_its_closed_form_across_blocks():
    """No cures and no repayment in full: a current line stays current until it misses, and
    a miss at step k is a default at step k + 3, so PD(H) = 1 - (1 - e)^(H - 3) with a flat
    lifecycle; lines 1-30 days late default at step 3 for sure. Enough lines for several
    blocks of the chain."""
    n = 3 * risk.CHAIN_BLOCK + 17
    individual = np.linspace(1e-4, 0.05, n).astype(np.float32)
    state = np.where(np.arange(n) % 5 == 0, 1, 0)
    flat = Lifecycle(form="flat")
    pd = risk.default_probability(
        individual=individual, mob=np.zeros(n, dtype=np.int64), state=state,
        has_balance=np.ones(n, dtype=bool), cures=np.zeros((n, 3)), through=np.ones(n),
        macro=1.0, spec=flat, horizons=(12, 36), full=0.0, draw_rate=np.zeros(n))
    e = individual.astype(np.float64)
    current = state == 0
    for i, h in enumerate((12, 36)):
        expected = np.where(current, 1.0 - (1.0 - e) ** (h - 3), 1.0)
        np.testing.assert_allclose(pd[:, i], expected, rtol=2e-5, atol=1e-7)


def _chain_inputs(individual, mob, state, has_balance, cures, through, macro, spec, horizons,
                  full, draw_rate, certain, dtype):
    """Each line's start state and per-step parameters, as the chain documents them."""
    top = max(horizons)
    curve = risk.lifecycle_curve(spec, int(mob.max()) + top + risk.ROLL_MONTHS).astype(dtype)
    start = np.where(state == 0, np.where(has_balance, 0, 1), np.minimum(state, 4) + 1)
    start = np.where(state >= 4, 5, start)
    base = (individual.astype(np.float64) * macro / np.maximum(through, 1e-12)).astype(dtype)
    c = np.where(certain[:, None], 0.0, cures).astype(dtype)
    d = np.where(certain, 1.0, draw_rate).astype(dtype)
    f = np.where(certain, 0.0, full).astype(dtype)
    return curve, start, base, c, d, f


def _plain_pd(individual, mob, state, has_balance, cures, through, macro, spec, horizons,
              full, draw_rate, certain):
    """The PD chain written plainly: every line, in index order, one float32 step at a time
    (the arithmetic :func:`risk._chain` documents)."""
    f32 = np.float32
    curve, start, base, c, d, f = _chain_inputs(
        individual, mob, state, has_balance, cures, through, macro, spec, horizons, full,
        draw_rate, certain, f32)
    one = f32(1.0)
    cur, idle, a1, late2, late3, dflt = (np.where(start == j, one, f32(0.0)) for j in range(6))
    r = one - c
    g1, g2, g3 = r[:, 0] * c[:, 1], r[:, 0] * r[:, 1] * c[:, 2], r[:, 0] * r[:, 1] * r[:, 2]
    lapse = f * (one - d)
    a2 = a3 = rolled = np.zeros(individual.size, dtype=f32)
    out = np.zeros((individual.size, len(horizons)))
    for k in range(1, max(horizons) + 1):
        e = np.minimum(base * curve[mob + risk.ROLL_MONTHS + k], one)
        e[certain] = one
        enter = cur * e
        pay = cur - enter
        move = pay * lapse - idle * d
        idle = idle + move
        cur = pay - move + a1 * c[:, 0] + a2 * g1 + a3 * g2
        rolled = rolled + a3
        if k == 1:
            cur, dflt = cur + (late2 * c[:, 1] + late3 * c[:, 2]), dflt + late3 * r[:, 2]
        if k == 2:
            cur, dflt = cur + late2 * (r[:, 1] * c[:, 2]), dflt + late2 * (r[:, 1] * r[:, 2])
        a1, a2, a3 = enter, a1, a2
        for i, h in enumerate(horizons):
            if k == h:
                out[:, i] = dflt + rolled * g3
    return out


def _state_by_state_pd(individual, mob, state, has_balance, cures, through, macro, spec,
                       horizons, full, draw_rate, certain):
    """The chain of :func:`risk.default_probability`'s docstring, state by state, in
    float64: current with and without a balance, 1-30, 31-60, 61-90, default."""
    curve, start, base, c, d, f = _chain_inputs(
        individual, mob, state, has_balance, cures, through, macro, spec, horizons, full,
        draw_rate, certain, np.float64)
    cur, idle, a1, a2, a3, dflt = ((start == j).astype(np.float64) for j in range(6))
    out = np.zeros((individual.size, len(horizons)))
    for k in range(1, max(horizons) + 1):
        e = np.where(certain, 1.0, np.minimum(base * curve[mob + risk.ROLL_MONTHS + k], 1.0))
        pay = cur * (1 - e)
        lapse = f * (1 - d)
        cur, idle, a1, a2, a3, dflt = (
            pay * (1 - lapse) + idle * d + a1 * c[:, 0] + a2 * c[:, 1] + a3 * c[:, 2],
            pay * lapse + idle * (1 - d), cur * e, a1 * (1 - c[:, 0]), a2 * (1 - c[:, 1]),
            dflt + a3 * (1 - c[:, 2]))
        for i, h in enumerate(horizons):
            if k == h:
                out[:, i] = dflt
    return out


def _chain_case(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    n = 2 * risk.CHAIN_BLOCK + 101
    return dict(
        individual=rng.uniform(1e-4, 0.3, n).astype(np.float32),
        mob=rng.integers(0, 40, n), state=rng.integers(0, 5, n).astype(np.int8),
        has_balance=rng.random(n) < 0.7, cures=rng.uniform(0.0, 0.9, (n, 3)),
        through=rng.uniform(0.05, 1.0, n), macro=1.3,
        spec=Lifecycle(form="log_logistic", scale=12, shape=3, normalise_months=36),
        horizons=(2, 12, 36), full=0.4,
        draw_rate=np.where(rng.random(n) < 0.3, 0.0, 0.6), certain=rng.random(n) < 0.02)


def test_pd_chain_follows_the_delinquency_states_one_by_one():
    """The chain that keeps only what entered 1-30 days late in the last three steps gives
    the PDs of the chain over every state (current, idle, 1-30, 31-60, 61-90, default) in
    float64, to float32's precision: lines that start late, that cannot draw, that never
    repay, at a horizon before a miss can roll through (2 months) and after."""
    inputs = _chain_case(11)
    fast = risk.default_probability(**inputs)
    np.testing.assert_allclose(fast, _state_by_state_pd(**inputs), rtol=0, atol=2e-6)
    late = (inputs["state"] == 2) | (inputs["state"] == 3)
    assert (fast[late, 0] > 0).all() and (fast[late, 0] < 1).any()


def test_pd_chain_equals_its_plain_formulation_to_the_bit():
    """The blocked chain skips lines whose PD is exact without it and runs the others in
    months-on-book order: every PD is still the plain chain's, bit for bit."""
    inputs = _chain_case(7)
    fast = risk.default_probability(**inputs)
    assert np.array_equal(fast, _plain_pd(**inputs))
    assert (fast == 1.0).any() and (fast == 0.0).any()  # both shortcuts were taken


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_the_chain_runs_the_marked_lines_by_months_on_book(dtype):
    """The run order holds the marked lines, by months on book (index order within one),
    whatever the months' integer type, up to its largest value (255 in a uint8: the key
    above it, 256, needs a wider type)."""
    rng = np.random.default_rng(3)
    mob = rng.integers(0, 256, 3_000).astype(dtype)
    mob[7] = 255
    run = rng.random(mob.size) < 0.6
    run[7] = True
    want = np.flatnonzero(run)[np.argsort(mob[run].astype(np.int64), kind="stable")]
    assert np.array_equal(risk._run_order(mob, run), want)


def test_a_lines_pd_is_the_same_in_any_company_and_from_a_cure_function():
    """The chain orders all the lines it is given together: each line's PD is still the
    one it gets among other lines (here, half of them, reversed), and cure columns given
    by a function of the lines (their indices and hazards), block by block, give the same
    PDs as columns."""
    inputs = _chain_case(5)
    whole = risk.default_probability(**inputs)
    n = inputs["individual"].size
    part = np.arange(n)[::-2]
    some = {k: (v[part] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v)
            for k, v in inputs.items()}
    assert np.array_equal(risk.default_probability(**some), whole[part])
    cures, through = inputs["cures"], inputs["through"]
    asked = []

    def cures_of(at, hazard):
        assert np.array_equal(hazard, inputs["individual"][at])
        asked.append(at.size)
        return [cures[at, j] for j in range(3)], through[at]
    called = risk.default_probability(**{**inputs, "cures": cures_of, "through": None})
    assert np.array_equal(called, whole)
    assert max(asked) <= risk.CHAIN_BLOCK and sum(asked) < n  # by block, run lines only
