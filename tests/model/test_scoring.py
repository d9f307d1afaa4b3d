"""The mechanisms behind region and OS access (DOMAIN 3) and the awakened penalty (DOMAIN 2):
hard rules and deductions with exact, checkable effects, not free score offsets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from credit_helpers import scenario

from sim.model import invites, scoring
from sim.model.population import FIXED, synthesize
from sim.model.streams import generator
from sim.scenario import ScenarioError

N = 20_000


def _pop(changes: dict):
    sc = scenario({"population.users": N, **changes})
    return sc, synthesize(sc, generator(sc.seed, "population"))


def test_restricted_users_are_never_eligible_and_carry_the_reason():
    sc, pop = _pop({"population.regions.county.restricted": 0.4,
                    "population.regions.new_tier1.restricted": 0.1})
    ev = scoring.evaluate(pop, sc)
    bit = scoring.REASONS["region_restricted"]
    assert not ev.eligible[pop.restricted].any()
    assert np.array_equal((ev.reasons & bit) != 0, pop.restricted)
    regions = list(sc.population.regions)
    for name, share in (("county", 0.4), ("new_tier1", 0.1), ("tier1", 0.0)):
        in_region = pop.region == regions.index(name)
        got = pop.restricted[in_region].mean()
        se = np.sqrt(share * (1 - share) / in_region.sum())
        assert abs(got - share) <= 4 * se + 1e-12, (name, got)


def test_a_restriction_changes_no_other_draw():
    """Restrictions are drawn last: the rest of the population is the same user for user."""
    _, a = _pop({})
    _, b = _pop({"population.regions.county.restricted": 0.7})
    for attr in ("archetype", "region", "os", "unknown_sources", "payments_per_month",
                 "other_indicators", "device_grade"):
        assert np.array_equal(getattr(a, attr), getattr(b, attr)), attr


def test_lost_security_points_cost_the_offset_of_a_device_that_much_less_secure():
    """DOMAIN's 15-20 points are device security points: with grades A 95 (+60), B 80 (+10)
    and C 60 (-50), a phone losing 17.5 points scores like a device at 77.5 (A) or 62.5 (B),
    read linearly along the grades, and a C phone has nothing less secure to fall to."""
    grades = {"A": (95, 60.0), "B": (80, 10.0), "C": (60, -50.0)}
    base = {f"population.device_grades.{g}.{k}": v for g, (sec, off) in grades.items()
            for k, v in (("security_score", sec), ("score_offset", off))}
    sc0, pop = _pop({**base, "population.os.android.unknown_sources_points": 0.0})
    sc1 = sc0.replace({"population.os.android.unknown_sources_points": 17.5})
    diff = scoring.evaluate(pop, sc0).score - scoring.evaluate(pop, sc1).score
    assert pop.unknown_sources.any() and not pop.unknown_sources.all()
    ios = pop.os == list(sc0.population.os).index("ios")
    assert not pop.unknown_sources[ios].any()  # iOS phones have no unknown-sources setting
    expected = {"A": 60.0 - (-50.0 + 60.0 * 17.5 / 20.0),  # 77.5: 2.5 points above C on B-C
                "B": 10.0 - (-50.0 + 60.0 * 2.5 / 20.0),   # 62.5
                "C": 0.0}
    for code, grade in enumerate(sc0.population.device_grades):
        flagged = pop.unknown_sources & (pop.device_grade == code)
        np.testing.assert_allclose(diff[flagged], expected[grade], atol=1e-3)
    np.testing.assert_allclose(diff[~pop.unknown_sources], 0.0, atol=1e-3)
    # without security scores the points are score points
    plain = {f"population.device_grades.{g}.security_score": None for g in grades}
    sc2 = sc0.replace(plain)
    diff = (scoring.evaluate(pop, sc2).score
            - scoring.evaluate(pop, sc2.replace({"population.os.android.unknown_sources_points":
                                                 17.5})).score)
    np.testing.assert_allclose(diff[pop.unknown_sources], 17.5, atol=1e-3)


def test_the_awakened_penalty_costs_exactly_its_points_while_the_pattern_lasts():
    sc0, pop = _pop({"scoring.penalties.awakened.points": 0.0})
    sc1 = sc0.replace({"scoring.penalties.awakened.points": 140.0})
    pop.awakened_months[: N // 10] = 3  # a tenth of users woke up three months ago
    diff = scoring.evaluate(pop, sc0).score - scoring.evaluate(pop, sc1).score
    np.testing.assert_allclose(diff[: N // 10], 140.0, atol=1e-3)
    np.testing.assert_allclose(diff[N // 10:], 0.0, atol=1e-3)


@pytest.mark.parametrize("key, value", [
    ("population.regions.county.restricted", 1.5),
    ("population.regions.county.restricted", -0.1),
    ("population.os.android.unknown_sources_points", -3),
    ("population.device_grades.A.security_score", 120),
])
def test_bad_mechanism_values_name_their_key(key, value):
    with pytest.raises(ScenarioError, match=key.replace(".", r"\.")):
        scenario({key: value})


# ---------------------------------------------------------------- what a scoring keeps

def _plain_modules(pop, cfg) -> dict[str, np.ndarray]:
    """The six module scores as plain formulas (each module's docstring), in the float32
    arithmetic the score is defined in since scoring moved to float32 blocks (the log of a
    product with the reference's reciprocal, a float32 sigmoid): one expression a module,
    written apart from the in-place code it checks."""
    k, ref, sig = cfg.slope, cfg.references, cfg.signals
    s, p, q = sig.spending_capacity, sig.repayment_trust, sig.social_influence
    a, b, r = sig.assets, sig.behavioural_stability, sig.risk_resilience

    def lr(x, reference):
        return np.log(np.maximum(x, np.float32(1e-3)) * np.float32(1.0 / reference))

    def sigmoid(x):
        return np.float32(100.0) / (np.float32(1.0) + np.exp(-x.astype(np.float32)))

    return {
        "spending_capacity": sigmoid(k * (s.payments * lr(pop.payments_per_month,
                                                          ref.payments_per_month)
                                          + s.spend * lr(pop.monthly_spend, ref.monthly_spend))),
        "repayment_trust": sigmoid(k * lr(pop.credit_history_years, ref.credit_history_years)
                                   + p.credit_transactions * pop.credit_transactions
                                   + p.utility_bills * pop.utility_payer + p.intercept),
        "social_influence": sigmoid(q.contacts * k * lr(pop.contacts, ref.contacts)
                                    + q.quality * (pop.social_quality - q.quality_reference)),
        "assets": sigmoid(k * (a.days * lr(pop.wealth_days + 1.0, ref.wealth_days)
                               + a.balance * lr(pop.wealth_balance + 1.0, ref.wealth_balance))),
        "behavioural_stability": sigmoid(
            b.intercept - b.night * pop.night_share - b.device_switches * pop.device_switches
            - b.volatility * np.log(np.maximum(pop.spend_volatility, 1e-3))
            - b.dormant * (pop.dormant | (pop.awakened_months > 0))),
        "risk_resilience": sigmoid(k * lr(pop.income, ref.income) - r.debt_to_income
                                   * (pop.debt_to_income - r.debt_to_income_reference)),
    }


def _stir(pop, rng) -> None:
    """Move what changes during a run, in place, as the month's processes do."""
    for name in ("payments_per_month", "monthly_spend", "wealth_balance", "wealth_days"):
        getattr(pop, name)[:] *= np.exp(rng.normal(0, 0.5, pop.n)).astype(np.float32)
    pop.credit_history_years += np.float32(0.25)
    pop.account_age_months += 3
    pop.device_switches[:] = rng.poisson(0.8, pop.n)
    pop.awakened_months[:] = rng.integers(0, 4, pop.n) * (rng.random(pop.n) < 0.1)
    pop.dormant[:] = rng.random(pop.n) < 0.1
    pop.id_expired_months[:] = np.where(rng.random(pop.n) < 0.05, rng.integers(0, 6, pop.n), -1)
    pop.closed |= rng.random(pop.n) < 0.02
    pop.score_adjust[:] = rng.normal(0, 5, pop.n).astype(np.float32)
    pop.other_indicators[:] = rng.normal(0, 17, pop.n).astype(np.float32)


def test_the_module_scores_are_their_plain_formulas_bit_for_bit():
    sc, pop = _pop({})
    _stir(pop, np.random.default_rng(1))
    plain = _plain_modules(pop, sc.scoring)
    for name, x in scoring.module_scores(pop, sc.scoring).items():
        assert x.dtype == np.float32 and np.array_equal(_bits(x), _bits(plain[name])), name


def test_penalty_points_add_each_failed_rule_in_order_and_hard_cutoffs_exclude():
    sc, pop = _pop({"scoring.cutoffs.wealth_days.hard": True,
                    "scoring.penalties.awakened.points": 161.1,
                    "scoring.penalties.night_activity.points": 0.7})
    _stir(pop, np.random.default_rng(2))
    cfg = sc.scoring
    points, hard = np.zeros(pop.n, dtype=np.float32), np.zeros(pop.n, dtype=bool)
    for name, rule in cfg.cutoffs.items():
        fail = getattr(pop, name) < rule.min
        hard |= fail & rule.hard
        points += fail * np.float32(rule.points)
    p = cfg.penalties
    flags = {"low_offline_share": pop.offline_share < p["low_offline_share"].threshold,
             "high_spend_volatility": pop.spend_volatility > p["high_spend_volatility"].threshold,
             "night_activity": pop.night_share > p["night_activity"].threshold,
             "device_switches": pop.device_switches >= p["device_switches"].threshold,
             "no_utility_bills": ~pop.utility_payer, "awakened": pop.awakened_months > 0}
    for name, rule in p.items():
        points += flags[name] * np.float32(rule.points)
    rules = scoring._Penalties.of(cfg)
    got, got_hard = scoring._penalties(pop, rules, scoring._fixed_flags(pop, rules))
    assert np.array_equal(_bits(got), _bits(points)) and np.array_equal(got_hard, hard)
    assert np.array_equal(got_hard, pop.wealth_days < cfg.cutoffs["wealth_days"].min)


def _bits(x: np.ndarray) -> np.ndarray:
    """A float32 array's bits (NaN equals NaN, -0 differs from 0), other arrays as they are."""
    return x.view(np.uint32) if x.dtype == np.float32 else x


def _same(a: scoring.Evaluation, b: scoring.Evaluation) -> bool:
    return all(np.array_equal(_bits(getattr(a, f)), _bits(getattr(b, f)))
               for f in ("score", "value", "eligible", "reasons"))


@pytest.mark.parametrize("modules", [(), ("social_influence", "risk_resilience")])
def test_a_kept_scoring_follows_every_change_of_behaviour_scenario_or_arrays(monkeypatch,
                                                                            modules):
    """What a scoring keeps for a population is reused only while its inputs and
    parameters are the same: after each change it equals a scoring from scratch (of a
    copy of the population, whose own parts are separate)."""
    monkeypatch.setattr(scoring, "KEPT_MODULES", modules)
    sc, pop = _pop({})
    rng = np.random.default_rng(3)

    def fresh(scenario):
        return scoring.evaluate(replace(pop), scenario, keep=False)

    assert _same(scoring.evaluate(pop, sc), fresh(sc))
    kept = scoring._KEPT[pop]
    assert set(kept) == {"offsets", "reasons", "flags", *modules}
    _stir(pop, rng)
    assert _same(scoring.evaluate(pop, sc, cutoff=25.0), fresh(sc.replace(
        {"scoring.cutoff": 25.0})))
    assert all(kept[k] is v for k, v in scoring._KEPT[pop].items())  # nothing recomputed
    for changes in ({"population.archetypes.mass_market.score_offset": 30.0},
                    {"population.os.android.unknown_sources_points": 5.0},
                    {"scoring.signals.social_influence.quality": 1.0},
                    {"scoring.references.income": 6000.0},
                    {"scoring.penalties.night_activity.threshold": 0.1},
                    {"scoring.preconditions.require_class_iii": False},
                    {"population.regions.county.open": False}):
        changed = sc.replace(changes)
        assert _same(scoring.evaluate(pop, changed), fresh(changed)), changes
        assert _same(scoring.evaluate(pop, sc), fresh(sc)), changes
    pop.contacts = pop.contacts * np.float32(3.0)  # a new array: read again
    pop.utility_payer = ~pop.utility_payer
    pop.debt_to_income = pop.debt_to_income + np.float32(0.1)
    assert _same(scoring.evaluate(pop, sc), fresh(sc))
    zeroed = sc.replace(
        {f"population.{d}.{k}.score_offset": 0.0 for d in scoring.OFFSET_DIMENSIONS
         for k in getattr(sc.population, d)})
    assert _same(scoring.evaluate(pop, zeroed), fresh(zeroed))
    scoring.evaluate(pop, sc, keep=False)
    assert pop not in scoring._KEPT


@pytest.mark.parametrize("changes", [
    {}, {f"population.device_grades.{g}.security_score": None for g in "ABC"}])
def test_the_structural_score_beside_a_scoring_is_the_offset_free_scoring(changes):
    """The structural score a scoring gives from its own module scores equals the score of
    the scenario without segment offsets less the other indicators, bit for bit (with
    device security scores the unknown-sources deduction goes with the offsets; without
    them it stays, in points)."""
    sc, pop = _pop(changes)
    pop.score_adjust = np.random.default_rng(4).normal(0, 3, pop.n).astype(np.float32)
    ev = scoring.evaluate(pop, sc, structural=True)
    plain = scoring.evaluate(replace(pop), scoring.without_offsets(sc), keep=False)
    assert np.array_equal(ev.structural, plain.score - pop.other_indicators)
    assert _same(ev, scoring.evaluate(replace(pop), sc, keep=False))
    assert not np.array_equal(ev.structural, ev.score - pop.other_indicators)


def test_a_scoring_keeps_only_parts_of_fixed_attributes():
    """What a scoring keeps is computed from :data:`population.FIXED` attributes alone,
    which no process writes (``tests/model/test_population.py`` walks ``sim/`` for that)."""
    kept = {a for names in scoring.FIXED_INPUTS.values() for a in names}
    assert kept <= FIXED, kept - FIXED


def test_admission_buckets_of_a_few_users_are_their_whole_population_buckets():
    users = np.array([0, 7, 4095, 65_536, 99_999])
    salt = "tier-first:reevaluation"
    buckets = invites.buckets_of(users, salt)
    assert np.array_equal(buckets, invites.sticky_bucket(100_000, salt)[users])
    # a bucket is the user's salted hash modulo the buckets, whoever else is hashed
    plain = invites.sticky_hash(users.astype(np.uint64), salt) % np.uint64(invites.BUCKETS)
    assert np.array_equal(buckets, plain)
