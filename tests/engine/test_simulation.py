"""The simulation core: what a planner relies on from one run of the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.engine.simulation import Simulation
from sim.model import release, scoring
from sim.model.population import synthesize, weighted_auc


def _rates(run, dimension, month, column="access_rate"):
    seg = run.segments
    rows = seg[(seg.dimension == dimension) & (seg.month == month)]
    return dict(zip(rows.value, rows[column], strict=True))


def test_coverage_grows_every_quarter(baseline_run):
    q = baseline_run.quarterly
    q = q[q.quarter <= baseline_run.scenario.quarters]  # the run-off invites no one
    assert (np.diff(q.invited_share) > 0).all()
    assert (np.diff(q.visible_share) > 0).all()
    assert (q.visible_share <= q.invited_share).all()
    assert (q.invited_share <= q.eligible_share + 1e-12).all()


def test_each_reevaluation_gains_and_revokes_access(baseline_run):
    # DOMAIN: about 12-15% of users gain or lose access at each quarterly re-evaluation.
    # (The pilot's first invitees sit far above the cut-off, so the first quarter may revoke
    # no one; every later re-evaluation both grants and revokes.)
    q = baseline_run.quarterly
    assert (q.gained_access > 0).all() and (q.lost_access.iloc[1:] > 0).all()
    assert q.churn_rate.between(0.05, 0.25).all(), q.churn_rate.tolist()


def test_steady_state_churn_matches_domain(baseline_run):
    last_year = baseline_run.quarterly.churn_rate.iloc[-4:]
    assert last_year.between(0.10, 0.18).all(), last_year.tolist()


def test_old_clients_never_see_the_entry(baseline_run):
    seg = baseline_run.segments
    older = seg[(seg.dimension == "version") & (seg.value == "older")]
    assert older.population.gt(0).all()
    assert (older.visible == 0).all()
    pop = baseline_run.population
    old = pop.version == 0
    shown = release.entry_visible(pop, release.visibility_rates(baseline_run.scenario.release))
    assert not shown[old].any()


@pytest.mark.parametrize(
    ("dimension", "order", "column"),
    [
        ("archetype", ["affluent_active", "stable_salaried", "small_merchant", "young_potential"],
         "access_rate"),
        ("region", ["tier1", "new_tier1", "county"], "access_rate"),
        ("device_grade", ["A", "B", "C"], "access_rate"),
        ("data_sharing", ["full", "partial", "none"], "access_rate"),
        # what a user on each client sees: DOMAIN's 8.0.40+ > 8.0.30 > 8.0.20 > older
        ("version", ["8.0.40", "8.0.30", "8.0.20"], "visible_rate"),
    ],
)
def test_access_orders_as_domain_after_one_year(baseline_run, dimension, order, column):
    rates = _rates(baseline_run, dimension, 12, column)
    values = [rates[v] for v in order]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), rates


def test_newest_clients_are_shown_the_entry_more_at_the_horizon(baseline_run):
    rates = _rates(baseline_run, "version", 36, "visible_rate")
    assert rates["8.0.40"] > rates["8.0.30"] > rates["8.0.20"] > rates["older"] == 0


def test_batches_invite_only_eligible_users(baseline):
    s = Simulation(baseline.replace({"seed": 3}), quarters=1)
    s.pop.eligible[:] = False  # nobody passes the first scoring
    result = s.run()
    # no batch can go out before the month-3 re-evaluation scores everyone again
    assert result.monthly.new_invites.iloc[:2].sum() == 0
    assert result.batches.kind.eq("reevaluation").all()


def test_each_user_is_invited_once_into_one_batch_as_the_ledger_counts(baseline_run):
    # the vintage table takes each batch's accounts from the ledger: it must count every
    # user of the batch once, and no user may be invited into two batches
    ledger = baseline_run.batches["users"].to_numpy()
    vintage = baseline_run.population.vintage
    assert ledger.sum() == np.count_nonzero(vintage >= 0)
    np.testing.assert_array_equal(np.bincount(vintage[vintage >= 0], minlength=ledger.size),
                                  ledger)


def test_closed_regions_and_class_ii_never_have_access(baseline_run):
    pop = baseline_run.population
    region_open = np.array([r.open for r in baseline_run.scenario.population.regions.values()])
    assert not pop.invited[~region_open[pop.region]].any()
    assert not pop.invited[pop.account_class == 0].any()


def test_invited_users_are_eligible_after_each_reevaluation(baseline_run):
    pop = baseline_run.population  # the last month is a re-evaluation month
    assert not (pop.invited & ~pop.eligible).any()


def test_population_uses_compact_dtypes(baseline):
    pop = synthesize(baseline, np.random.default_rng(0))
    assert pop.archetype.dtype == np.int8 and pop.version.dtype == np.int8
    assert pop.payments_per_month.dtype == np.float32
    assert pop.invited.dtype == bool and pop.vintage.dtype == np.int16
    assert pop.nbytes() / pop.n < 200


def test_population_does_not_depend_on_the_strategy(baseline, baseline_path):
    """Common random numbers: strategies that differ share one population."""
    other = sim.load(
        baseline_path,
        {"rollout.phases.0.batch.share": 0.5, "rollout.name": "other", "scoring.cutoff": 40},
    )
    a = Simulation(baseline, quarters=1).pop
    b = Simulation(other, quarters=1).pop
    assert np.array_equal(a.payments_per_month, b.payments_per_month)
    assert np.array_equal(a.visibility_draw, b.visibility_draw)


def test_same_seed_same_tables_different_seed_differs(baseline):
    a = sim.run(baseline, seed=11, quarters=2)
    b = sim.run(baseline, seed=11, quarters=2)
    c = sim.run(baseline, seed=12, quarters=2)
    assert a.monthly.equals(b.monthly) and a.segments.equals(b.segments)
    assert not a.monthly.equals(c.monthly)


def test_summary_reports_auc_near_the_calibration(baseline_run):
    auc = baseline_run.summary["score_auc"]
    assert 0.68 < auc < 0.80


def test_weighted_auc_known_values():
    score = np.array([1.0, 2.0, 3.0, 4.0])
    assert weighted_auc(score, np.array([1.0, 1.0, 0.0, 0.0])) == 1.0  # bads score lowest
    assert weighted_auc(score, np.array([0.0, 0.0, 1.0, 1.0])) == 0.0
    assert weighted_auc(np.ones(4), np.array([1.0, 0.0, 1.0, 0.0])) == 0.5  # all tied
    rng = np.random.default_rng(1)
    s = rng.normal(size=200_000)
    assert abs(weighted_auc(s, rng.random(200_000)) - 0.5) < 0.01


def test_higher_cutoff_means_fewer_eligible(baseline):
    s = Simulation(baseline, quarters=1)
    low = scoring.evaluate(s.pop, baseline, cutoff=20).eligible
    high = scoring.evaluate(s.pop, baseline, cutoff=40).eligible
    assert not (high & ~low).any() and high.sum() < low.sum()


def test_holiday_batches_are_wider(baseline_run):
    b = baseline_run.batches
    pilot = b[(b.phase == "pilot") & (b.kind == "batch")]
    assert pilot.holiday.any()
    # the pool shrinks batch by batch, so a doubled batch stands out from its neighbours
    holiday = pilot[pilot.holiday].users.to_numpy()
    normal = pilot[~pilot.holiday].users.to_numpy()
    assert holiday.mean() > 1.5 * normal.mean()


def test_freeze_window_sends_no_batch(baseline_path):
    sc = sim.load(baseline_path, {
        "population.users": 20000,
        "rollout.freeze": [{"start": "2025-02-01", "end": "2025-03-31"}],
    })
    b = sim.run(sc, quarters=1).batches
    batch_days = b[b.kind == "batch"].date
    assert not batch_days.between("2025-02-01", "2025-03-31").any()
    assert len(batch_days) >= 2


def test_phase_filters_are_respected(baseline_run):
    pop, b = baseline_run.population, baseline_run.batches
    pilot_vintages = b[b.phase == "pilot"].vintage.to_numpy()
    in_pilot = np.isin(pop.vintage, pilot_vintages)
    assert in_pilot.sum() > 0
    assert (np.array(pop.labels["region"])[pop.region[in_pilot]] == "tier1").all()


@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_class_iii_keeps_its_share_and_follows_activity(baseline_path, rho):
    """The copula moves who is class III within an archetype, never how many are."""
    sc = sim.load(baseline_path, {"population.users": 100000,
                                  "population.variation.class_iii_activity": rho})
    pop = synthesize(sc, np.random.default_rng(3))
    for code, arch in enumerate(sc.population.archetypes.values()):
        mine = pop.archetype == code
        c3 = pop.account_class[mine] == 1
        p, n = arch.class_iii, int(mine.sum())
        assert c3.mean() == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n))
        log_pay = np.log(pop.payments_per_month[mine])
        gap = log_pay[c3].mean() - log_pay[~c3].mean()
        se = sc.population.log_spread * np.sqrt(1 / c3.sum() + 1 / (~c3).sum())
        if rho == 0.0:
            assert abs(gap) < 4 * se  # independent: class III users pay like the others
        else:
            assert gap > 0.2  # class III users are the active ones


def test_segment_months_record_a_subset_of_every_month(baseline_path):
    # reporting.segment_months: quarter ends and the last month by default; the rows of those
    # months are the rows an every-month run records, and nothing else changes
    sc = sim.load(baseline_path, {"reporting.run_off_months": 1}, users=2000)
    every = sim.run(sc.replace({"reporting.segment_months": "all"}), quarters=2)
    default = sim.run(sc, quarters=2)
    listed = sim.run(sc.replace({"reporting.segment_months": [2]}), quarters=2)
    assert sorted(default.segments["month"].unique()) == [3, 6, 7]
    assert sorted(every.segments["month"].unique()) == list(range(1, 8))
    assert sorted(listed.segments["month"].unique()) == [2]
    kept = every.segments[every.segments["month"].isin([3, 6, 7])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, default.segments.reset_index(drop=True))
    pd.testing.assert_frame_equal(every.monthly, default.monthly)


def test_weighted_auc_equals_the_pair_count_with_ties_across_chunks(monkeypatch):
    """Every (good, bad) pair counted by brute force, a user with itself too: 1 if the good
    scores higher, 1/2 if tied; chunks smaller than the tie groups so ties span chunk
    edges."""
    import sim.model.population as population

    monkeypatch.setattr(population, "AUC_CHUNK", 7)
    rng = np.random.default_rng(5)
    score = np.where(rng.random(300) < 0.5, rng.integers(0, 12, 300),  # many ties
                     rng.random(300) * 12).astype(np.float32)
    p = rng.random(300)
    higher = (score[:, None] > score[None, :]) + 0.5 * (score[:, None] == score[None, :])
    pairs = (1.0 - p)[:, None] * p[None, :]  # good i against bad j
    expected = float((pairs * higher).sum() / (p.sum() * (1.0 - p).sum()))
    assert weighted_auc(score, p) == pytest.approx(expected, rel=1e-12)



def test_the_kept_entry_is_the_version_rule_in_an_open_region(baseline_path):
    """``Simulation._entry_shown``: the client version shows the entry
    (:func:`release.entry_visible`) and the user's region is open, for everyone and for
    some users on the version they all run."""
    s = Simulation(sim.load(baseline_path, {"population.users": 5000}), quarters=1)
    open_ = np.array([r.open for r in s.scenario.population.regions.values()])
    assert not open_.all()  # the baseline has a closed province
    plain = release.entry_visible(s.pop, s.visibility) & open_[s.pop.region]
    assert np.array_equal(s._entry_shown(), plain)
    some = np.arange(0, s.pop.n, 7)
    newest = len(s.scenario.release.versions) - 1
    plain = release.entry_visible(s.pop, s.visibility, some, newest) & open_[s.pop.region[some]]
    assert np.array_equal(s._entry_shown(some, version=newest), plain)
