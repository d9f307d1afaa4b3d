"""Sticky rollouts, ramps and batch choice."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim
from sim.engine.simulation import Simulation
from sim.model import invites, release
from sim.model import streams as purposes
from sim.model.streams import Streams
from sim.scenario import Phase


@given(st.text(max_size=20), st.floats(0, 100), st.floats(0, 100))
def test_raising_a_percentage_only_adds_users(salt, p1, p2):
    bucket = invites.sticky_bucket(5_000, salt)
    low, high = sorted((p1, p2))
    assert not (invites.in_rollout(bucket, low) & ~invites.in_rollout(bucket, high)).any()


def test_buckets_are_uniform_and_salted():
    a = invites.sticky_bucket(200_000, "a")
    b = invites.sticky_bucket(200_000, "b")
    share = invites.in_rollout(a, 10).mean()
    assert abs(share - 0.10) < 4 * np.sqrt(0.09 / 200_000)
    # a different salt picks a different first 10%: overlap is ~ 10% of 10%
    overlap = (invites.in_rollout(a, 10) & invites.in_rollout(b, 10)).mean()
    assert abs(overlap - 0.01) < 0.003


def test_bucket_of_a_user_does_not_depend_on_population_size():
    small, large = invites.sticky_bucket(1_000, "s"), invites.sticky_bucket(5_000, "s")
    assert np.array_equal(small, large[:1000])


def test_ramp_steps_keep_every_user_of_the_smaller_step(baseline_path):
    ramp = [{"name": "ramp", "start": "2025-01-01", "cadence_days": 7,
             "ramp": [{"percent": 10, "days": 35}, {"percent": 20, "days": 35},
                      {"percent": 50, "days": 60}]}]
    sc = sim.load(baseline_path, {"population.users": 50000, "rollout.phases": ramp,
                                  "reevaluation.every_months": 120})
    sim_ = Simulation(sc, quarters=1)
    # ever invited at each month end (a default may close access later)
    sim_.recorder.declare("ever_invited", lambda obs: [{"month": obs.month,
                                                        "users": obs.pop.vintage >= 0}])
    sim_.run()
    seen = {row["month"]: row["users"] for row in sim_.recorder.rows["ever_invited"]}
    first, second, third = seen[1], seen[2], seen[3]   # 10% in Jan, 20% in Feb, 50% in March
    assert first.sum() > 0
    assert not (first & ~second).any() and not (second & ~third).any()
    assert second.sum() > 1.5 * first.sum()
    bucket = invites.sticky_bucket(sc.population.users,
                                   invites.salt_of(sc.rollout, sc.rollout.phases[0]))
    assert (bucket[first] < 1000).all()


def test_ramp_percent_schedule():
    phase = Phase(name="r", start=dt.date(2025, 1, 1),
                  ramp=[{"percent": 1, "days": 14}, {"percent": 5, "days": 14}])
    assert invites.ramp_percent(phase, dt.date(2025, 1, 1)) == 1
    assert invites.ramp_percent(phase, dt.date(2025, 1, 15)) == 5
    assert invites.ramp_percent(phase, dt.date(2026, 1, 1)) == 5


def test_choose_takes_smallest_keys_ties_by_id():
    pool = np.array([True, True, True, False, True, True])
    key = np.array([3.0, 1.0, 2.0, 0.0, 2.0, 5.0])
    assert invites.choose(pool, key, 2).tolist() == [1, 2]
    assert sorted(invites.choose(pool, key, 3).tolist()) == [1, 2, 4]
    assert invites.choose(pool, key, 10).tolist() == [0, 1, 2, 4, 5]


def test_batch_count_is_in_real_users():
    phase = Phase(name="p", start=dt.date(2025, 1, 1), batch={"count": 1_000_000},
                  holiday_multiplier=2)
    assert invites.batch_size(phase, pool=10_000, weight=5000, holiday=False) == 200
    assert invites.batch_size(phase, pool=10_000, weight=5000, holiday=True) == 400
    assert invites.batch_size(phase, pool=300, weight=5000, holiday=True) == 300


def test_tier_ordering_invites_highest_value_first(baseline_path):
    sc = sim.load(baseline_path, {"population.users": 30000})
    s = Simulation(sc, quarters=1)
    phase = sc.rollout.phases[0]
    pool = invites.candidates(s.pop, sc, phase)
    chosen = invites.next_batch(s.pop, sc, phase, phase.start, False,
                                invites.sticky_bucket(s.pop.n, "x"))
    rest = np.flatnonzero(pool)
    rest = rest[~np.isin(rest, chosen)]
    assert s.pop.value[chosen].min() >= s.pop.value[rest].max()


def test_choose_is_the_k_smallest_by_key_then_id():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        pool = rng.random(n) < rng.random()
        key = rng.integers(0, 8, n).astype(np.float32)  # many ties
        k = int(rng.integers(-1, n + 2))
        idx = np.flatnonzero(pool)
        plain = idx[np.lexsort((idx, key[idx]))][:max(k, 0)]
        assert sorted(invites.choose(pool, key, k).tolist()) == sorted(plain.tolist())


@pytest.mark.parametrize("regions, min_version, min_score", [
    (None, None, None), (["tier1"], "8.0.40", None), (["county", "tier1"], None, 30.0),
    (["closed_province", "new_tier1", "county"], "8.0.20", 10.0)])
def test_candidates_equal_the_plain_formulation(baseline_path, regions, min_version,
                                                min_score):
    sc = sim.load(baseline_path, {"population.users": 4000})
    pop = Simulation(sc, quarters=1).pop
    rng = np.random.default_rng(11)
    invites.invite(pop, np.flatnonzero(rng.random(pop.n) < 0.3), 0)
    invites.close(pop, np.flatnonzero(rng.random(pop.n) < 0.1))
    phase = Phase(name="p", start=dt.date(2025, 1, 1), batch={"share": 0.1}, regions=regions,
                  min_version=min_version, min_score=min_score)
    labels = pop.labels["region"]
    allowed = np.isin(np.arange(len(labels)), [labels.index(r) for r in regions or labels])
    code = 0 if min_version is None else [v.name for v in sc.release.versions].index(min_version)
    plain = (pop.eligible & ~pop.closed & (pop.vintage < 0) & (pop.version >= code)
             & allowed[pop.region] & (pop.score >= (-np.inf if min_score is None else min_score)))
    assert np.array_equal(invites.candidates(pop, sc, phase), plain)


def test_kept_buckets_equal_fresh_ones_and_stay_few():
    first = invites.sticky_bucket(3_000, "kept-1")
    for salt in ("kept-2", "kept-3", "kept-1", "kept-2", "kept-4"):
        invites.sticky_bucket(3_000, salt)
    assert len(invites._kept) <= invites.KEPT_BUCKETS
    again = invites.sticky_bucket(3_000, "kept-1")
    plain = invites.sticky_hash(np.arange(3_000, dtype=np.uint64), "kept-1") % np.uint64(
        invites.BUCKETS)
    assert np.array_equal(first, plain) and np.array_equal(again, plain)
    assert not again.flags.writeable  # shared: nobody may change another run's buckets


def test_only_ramps_and_random_orders_read_buckets():
    start = dt.date(2025, 1, 1)
    assert not invites.uses_buckets(Phase(name="t", start=start, batch={"share": 0.1}))
    assert invites.uses_buckets(Phase(name="r", start=start, batch={"share": 0.1},
                                      ordering="random"))
    assert invites.uses_buckets(Phase(name="p", start=start,
                                      ramp=[{"percent": 5, "days": 7}]))


def test_adoption_moves_exactly_the_behind_whose_uniform_is_under_the_chance(baseline_path):
    sc = sim.load(baseline_path, {"population.users": 20_000})
    pop = Simulation(sc, quarters=1).pop
    before = pop.version.copy()
    streams = Streams(5)
    moved = release.adopt(pop, sc.release, 4, 31, streams, 7)
    behind = np.flatnonzero((before < 4) & ~pop.laggard)
    u = streams.uniform(purposes.ADOPTION, 7, behind)
    plain = behind[u < release.upgrade_probability(sc.release, 31)]
    assert np.array_equal(moved, plain)
    assert (pop.version[plain] == 4).all()
    untouched = np.ones(pop.n, dtype=bool)
    untouched[plain] = False
    assert np.array_equal(pop.version[untouched], before[untouched])


def test_adoption_kept_from_month_to_month_moves_whom_a_fresh_pass_moves(baseline_path):
    """Adoption keeps who is behind between months (and finds them again when a newer
    version is released): each month it moves exactly the users a fresh pass would."""
    sc = sim.load(baseline_path, {"population.users": 20_000})
    kept_pop = Simulation(sc, quarters=1).pop
    fresh_pop = copy.deepcopy(kept_pop)
    kept, streams = release.Adoption(), Streams(5)
    newest = [2, 2, 3, 3, 3, 4, 4]
    for month, code in enumerate(newest, start=1):
        moved = kept.step(kept_pop, sc.release, code, 30, streams, month)
        assert np.array_equal(moved, release.adopt(fresh_pop, sc.release, code, 30, streams,
                                                   month))
        assert np.array_equal(kept_pop.version, fresh_pop.version)
    assert moved.size > 0 and kept.behind.size > 0


def test_the_pool_kept_within_a_month_is_the_fresh_pool(baseline_path, monkeypatch):
    """Within a month the rollout's later batches start from the pool (and the order keys)
    its first batch found, less those invited since: the same as a fresh pool's."""
    phases = [{"name": "weekly", "start": "2025-01-01", "cadence_days": 7,
               "batch": {"share": 0.05}, "ordering": "score", "regions": ["tier1", "county"]},
              {"name": "ramp", "start": "2025-03-01", "cadence_days": 5,
               "ramp": [{"percent": 10, "days": 20}, {"percent": 40, "days": 20}]}]
    sc = sim.load(baseline_path, {"population.users": 8000, "rollout.phases": phases,
                                  "rollout.holdout": {"share": 0.5, "margin": 10}})
    plain, kept = invites.next_batch, []

    def checked(pop, scenario, phase, day, holiday, bucket, within=None, factor=1.0,
                pool=None, keys=None):
        fresh = invites.batch_pool(pop, scenario, phase, within)
        kept.append(pool is not None and np.array_equal(pool, fresh))
        if phase.ramp is None:  # the kept order keys are the pool's keys now
            kept.append(np.array_equal(keys, invites.order_key(pop, phase.ordering, bucket,
                                                               fresh)))
        return plain(pop, scenario, phase, day, holiday, bucket, within, factor, pool, keys)

    uninvited, reused = invites.uninvited, []

    def counted(pop, users, keys=None):
        reused.append(users.size)
        return uninvited(pop, users, keys)

    monkeypatch.setattr(invites, "next_batch", checked)
    monkeypatch.setattr(invites, "uninvited", counted)
    Simulation(sc, quarters=2).run()
    assert len(kept) > 20 and all(kept)
    assert len(reused) > 10  # most batches started from the month's kept pool
