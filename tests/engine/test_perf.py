"""Performance work (issue 6): fast paths agree with straightforward references, the run
reports where its time goes, the benchmark writes every field, and large runs are guarded.
No timed assertions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sim
from sim.cli.app import app
from sim.engine import recorder as metrics
from sim.engine import simulation as engine
from sim.io import cost as resources
from sim.model import fraud
from sim.model import streams as purposes
from sim.model.streams import Streams

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- recorder


def _reference_counts(codes, k, masks):
    """Per-dimension counts the plain way: one boolean mask per code."""
    out = [np.array([np.count_nonzero(codes == c) for c in range(k)])]
    for m in masks:
        out.append(np.array([np.count_nonzero((codes == c) & m) for c in range(k)]))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_joint_segment_counts_equal_per_code_counts(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    ks = list(rng.integers(1, 9, size=rng.integers(1, 5)))
    codes = [rng.integers(0, k, n).astype(np.int8) for k in ks]
    masks = [rng.random(n) < p for p in rng.random(5)]
    got = metrics.segment_counts(codes, ks, masks)
    for c, k, counts in zip(codes, ks, got, strict=True):
        for a, b in zip(counts, _reference_counts(c, k, masks), strict=True):
            np.testing.assert_array_equal(a, b)


def test_status_bits_pack_each_mask_in_its_bit_across_blocks():
    rng = np.random.default_rng(7)
    n = metrics.COUNT_BLOCK + 1234  # a partial last block
    masks = [rng.random(n) < p for p in (0.1, 0.5, 0.9)]
    plain = sum(m.astype(np.uint8) << (2 + i) for i, m in enumerate(masks))
    np.testing.assert_array_equal(metrics.status_bits(masks, first=2), plain)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32])
def test_band_codes_equal_digitize_with_float_edges(dtype):
    """Integer values are compared with the ceiling of each edge: the same bands, edges
    beyond the type's range included."""
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype) if np.dtype(dtype).kind == "i" else np.iinfo(np.int16)
    values = rng.integers(info.min, info.max, 5000, endpoint=True).astype(dtype)
    for edges in ([-1e6, -3.5, 0.0, 6.0, 24.5, 1e6], [float(info.min), float(info.max)],
                  [info.max + 0.5]):
        np.testing.assert_array_equal(metrics.band_codes(values, edges),
                                      np.digitize(values, edges))


def test_joint_groups_respect_the_bin_limit_and_keep_order():
    dims = [(str(i), None, tuple(range(k))) for i, k in enumerate([5, 7, 2, 3, 4, 9, 2, 300])]
    groups = metrics.joint_groups([len(d[2]) for d in dims], 5)
    assert [i for g in groups for i in g] == list(range(len(dims)))
    for g in groups:
        assert len(g) == 1 or int(np.prod([len(dims[i][2]) for i in g])) << 5 \
            <= metrics.JOINT_BINS


def _lines_population(baseline_path, n=3000, seed=4):
    """A small synthesised population with random access, and random credit on random
    lines (the users with a line, in index order)."""
    from sim.model.population import synthesize
    from sim.model.streams import generator
    scenario = sim.load(baseline_path, users=n)
    pop = synthesize(scenario, generator(scenario.seed, "population"))
    rng = np.random.default_rng(seed)
    pop.eligible, pop.invited = rng.random(n) < 0.5, rng.random(n) < 0.3
    visible = pop.invited & (rng.random(n) < 0.8)
    lines = np.flatnonzero(pop.invited & (rng.random(n) < 0.6))
    per_line = {"borrowers": rng.random(lines.size) < 0.5,
                "defaults": rng.random(lines.size) < 0.1,
                "cum_loss": np.where(rng.random(lines.size) < 0.2,
                                     rng.integers(1, 10**7, lines.size), 0)}
    return scenario, pop, visible, lines, per_line


@pytest.mark.parametrize("crosses", [None, [("region", "archetype"), ("archetype", "os"),
                                             ("os", "version"), ("region", "archetype")]])
def test_segment_rows_from_the_lines_equal_per_user_counts(baseline_path, crosses):
    """Credit bits and losses set line by line: the plain per-user counts and sums. Crossed
    pairs too, summed from their parts or (a part in an earlier pair) counted alone."""
    scenario, pop, visible, lines, per_line = _lines_population(baseline_path)
    bands, crosses = scenario.reporting.bands, crosses or scenario.reporting.crosses
    rows = metrics.segment_rows(pop, visible, lines, per_line, bands, crosses, date=None,
                                month=3, fixed={})
    full = {}
    for name in ("borrowers", "defaults", "cum_loss"):
        full[name] = np.zeros(pop.n, dtype=per_line[name].dtype)
        full[name][lines] = per_line[name]
    masks = {"eligible": pop.eligible, "invited": pop.invited, "visible": visible,
             "borrowers": full["borrowers"], "defaults": full["defaults"]}
    w = pop.weight
    got = iter(rows)
    for dim, codes, labels in metrics.segment_codes(pop, bands, crosses):
        for code, label in enumerate(labels):
            row, mine = next(got), codes == code
            assert (row["dimension"], row["value"]) == (dim, label)
            assert row["population"] == np.count_nonzero(mine) * w
            for name, mask in masks.items():
                assert row[name] == np.count_nonzero(mine & mask) * w
            loss = full["cum_loss"][mine].astype(np.float64)
            assert row["loss"] == np.bincount(np.zeros(loss.size, np.intp), weights=loss,
                                              minlength=1)[0] * (w / metrics.FEN)
    assert next(got, None) is None


def test_one_arm_rows_read_the_coverage_counted_once(baseline_path):
    from sim.engine import arms
    _, pop, visible, lines, per_line = _lines_population(baseline_path, seed=6)
    arm = np.zeros(pop.n, dtype=np.int8)
    plain = arms.arm_segment_rows(arm, ("all",), pop, visible, lines, per_line, date=None,
                                  month=2)
    coverage = {"eligible": int(np.count_nonzero(pop.eligible)),
                "invited": int(np.count_nonzero(pop.invited)),
                "visible": int(np.count_nonzero(visible))}
    assert arms.arm_segment_rows(arm, ("all",), pop, visible, lines, per_line, date=None,
                                 month=2, coverage=coverage) == plain


def test_one_arm_totals_equal_the_plain_float_sums(baseline_path):
    """Without A/B arms, borrowers, defaults and loss are integer sums made floats: the
    float sums of the per-line values."""
    from sim.engine import arms
    _, pop, visible, lines, per_line = _lines_population(baseline_path, seed=8)
    arm = np.zeros(pop.n, dtype=np.int8)
    row, = arms.arm_segment_rows(arm, ("all",), pop, visible, lines, per_line, date=None,
                                 month=2)
    w = pop.weight
    for name in ("borrowers", "defaults"):
        assert row[name] == per_line[name].astype(np.float64).sum() * w
    assert row["loss"] == per_line["cum_loss"].astype(np.float64).sum() * w / metrics.FEN


def test_vintage_sums_over_lines_only_equal_the_sums_over_every_member():
    """Only users with a line hold money: summing over lines leaves out zeros alone."""
    rng = np.random.default_rng(3)
    n, k = 4000, 6
    vintage = np.where(rng.random(n) < 0.6, rng.integers(0, k, n), -1).astype(np.int16)
    flag = rng.random(n) < 0.4
    money = np.where(flag & (rng.random(n) < 0.7), rng.integers(1, 10**9, n), 0).astype(np.int64)
    loss = np.where(rng.random(n) < 0.05, money, 0)  # few users have a loss
    batches = [{"vintage": i, "date": None} for i in range(k)]
    rows = metrics.vintage_rows(vintage, batches, [1] * k, date=None, month=5, weight=1.0,
                                maturity=3, arrays={"opened": flag, "dpd30": flag,
                                                    "ever_default": flag, "balance": money,
                                                    "cum_draw": money, "cum_loss": loss})
    has = vintage >= 0
    # the plain float sums over every member of each vintage, zeros included
    full, lost = (np.bincount(vintage[has], weights=values[has].astype(np.float64),
                              minlength=k) for values in (money, loss))
    for i, row in enumerate(rows):
        mine = has & (vintage == i)
        assert row["accounts"] == np.count_nonzero(mine)
        assert row["opened"] == np.count_nonzero(mine & flag)
        assert row["outstanding"] == full[i] / 100.0
        assert row["loss"] == lost[i] / 100.0
        assert row["loss_rate"] == lost[i] / full[i]


# --------------------------------------------------------------------------- fraud


def _reference_signals(fb, closed, spec, w, x):
    """The signal step with a per-user rate array (the original formulation)."""
    quiet = (fb.level == fraud.NONE) & ~closed
    mult = np.where(fb.fraudster, spec.fraudster_rate_multiplier, 1.0)
    hit = quiet & (w < np.minimum((spec.r1_rate + spec.r2_rate + spec.r3_rate) * mult, 1.0))
    base = spec.r1_rate + spec.r2_rate + spec.r3_rate
    r12 = spec.r1_rate + spec.r2_rate
    p3 = np.where(fb.fraudster, spec.fraudster_r3, spec.r3_rate / base)
    p2 = np.where(fb.fraudster, (1.0 - spec.fraudster_r3) * spec.r2_rate / r12,
                  spec.r2_rate / base)
    to3 = hit & (x < p3)
    to2 = hit & ~to3 & (x < p3 + p2)
    return hit, to2, to3


@pytest.mark.parametrize("seed", range(3))
def test_fraud_signals_match_the_per_user_rate_formulation(baseline, seed):
    spec = baseline.fraud.model_copy(update={"r1_rate": 0.05, "r2_rate": 0.04,
                                             "r3_rate": 0.01, "fraudsters": 0.05})
    n = 20_000
    rng = np.random.default_rng(seed)
    streams = Streams(seed + 100)
    fb = fraud.new_fraud_book(n, spec, streams, 2025)
    fb.level[:] = rng.choice(4, n, p=[0.85, 0.05, 0.05, 0.05])
    pop = sim.engine.simulation.Simulation(sim.load(ROOT / "scenarios" / "baseline.yaml",
                                         {"population.users": n})).pop
    pop.closed[:] = rng.random(n) < 0.05
    level0, closed0, hidden0 = fb.level.copy(), pop.closed.copy(), fb.hidden_until.copy()
    # the per-user draws of every user: the step draws them only for those concerned
    u, v, x = (streams.uniform(p, 1, n) for p in (purposes.REVIEW_ASK, purposes.REVIEW_PASS,
                                                  purposes.SIGNAL_LEVEL))
    # a genuine user's signal uniform where it falls below the rate (1 elsewhere: no
    # signal), a fraudster's its own
    w = np.ones(n)
    below, w_below = streams.below(spec.r1_rate + spec.r2_rate + spec.r3_rate,
                                   purposes.SIGNAL, 1, n)
    w[below] = w_below
    w[fb.fraudster] = streams.uniform(purposes.SIGNAL, 1, n, sub=1)[fb.fraudster]
    fraud.month(fb, pop, spec, day=10, year=2025, streams=streams, month=1)
    ref = fraud.FraudBook(fb.fraudster, level0.copy(), fb.hidden_until, fb.reviews_year,
                          fb.reviews_total, fb.blocks, fb.last_blocked_day, 2025)
    # reviews first (unchanged code path), then the signals on the reviewed levels
    asking = (level0 == fraud.R2) & (u < spec.appeal_rate)
    restored = asking & (v < spec.review_success) & ~fb.fraudster
    ref.level[(level0 == fraud.R1) & (hidden0 <= 10)] = fraud.NONE
    ref.level[restored] = fraud.NONE
    hit, to2, to3 = _reference_signals(ref, closed0, spec, w, x)
    np.testing.assert_array_equal(fb.level[to3], fraud.R3)
    np.testing.assert_array_equal(fb.level[to2], fraud.R2)
    np.testing.assert_array_equal(fb.level[hit & ~to2 & ~to3], fraud.R1)
    np.testing.assert_array_equal(fb.last_blocked_day == 10, hit)
    assert pop.closed[to3].all()


# --------------------------------------------------------------------------- timings


def test_a_run_keeps_to_one_core(baseline):
    """No library thread works or spins beside a run (OpenBLAS's threaded dot in the AUC
    did, about 0.1 s a run, which took the second core from the other pool worker)."""
    sc = sim.load(ROOT / "scenarios" / "baseline.yaml", {"population.users": 20_000})
    sim.run(sc, quarters=1)  # imports and first-use costs outside the timing
    wall, cpu = time.perf_counter(), time.process_time()
    sim.run(sc, quarters=4)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert cpu < 1.15 * wall + 0.02, (cpu, wall)


def test_a_run_reports_the_time_of_every_process(baseline):
    result = sim.run(sim.load(ROOT / "scenarios" / "baseline.yaml",
                              {"population.users": 5000}), quarters=1)
    assert set(result.timings) == set(engine.TIMED)
    assert all(t >= 0 for t in result.timings.values())
    # the wall time is the whole run's: the population's synthesis and first scoring too
    assert sum(result.timings.values()) <= result.wall_seconds


# --------------------------------------------------------------------------- benchmark


def _scripted_processes(monkeypatch, floor_seconds, greysim_seconds):
    """Replace the benchmark's timed processes by scripted times; returns the order run."""
    import benchmarks.__main__ as bench

    order, floors, runs = [], iter(floor_seconds), iter(greysim_seconds)

    def timed(argv, env=None):
        if "--out" in argv and argv[argv.index("--out") + 1].endswith("warm"):
            order.append("warm")
            return bench.Timed(0.0, 0.0)
        kind = "floor" if "numpy_floor.py" in " ".join(argv) else "greysim"
        order.append(kind)
        wall = next(floors) if kind == "floor" else next(runs)
        return bench.Timed(wall, wall / 2 if kind == "floor" else wall)  # CPU: floor halved

    monkeypatch.setattr(bench, "timed_process", timed)
    return bench, order


def test_the_ratio_is_the_middle_of_pairs_that_alternate_their_order(monkeypatch, tmp_path):
    floor = tmp_path / "numpy_floor.py"
    floor.write_text("")
    bench, order = _scripted_processes(monkeypatch, [2.0, 1.0, 2.0], [6.0, 6.0, 8.0])
    row = bench.floor_ratio(1000, 1, "scenarios/baseline.yaml", floor, pairs=3)
    assert order == ["warm", "greysim", "floor", "floor", "greysim", "greysim", "floor"]
    assert row["ratios"] == [3.0, 6.0, 4.0] and row["ratio"] == 4.0  # the middle one
    assert (row["greysim_seconds"], row["floor_seconds"]) == (8.0, 2.0)  # of that pair
    assert row["cpu_ratios"] == [6.0, 12.0, 8.0] and row["cpu_ratio"] == 8.0
    assert row["fastest_ratio"] == 6.0  # each side's fastest run: 6.0 s over 1.0 s
    bench, order = _scripted_processes(monkeypatch, [2.0, 1.0], [6.0, 6.0])
    assert bench.floor_ratio(1000, 1, "scenarios/baseline.yaml", floor, pairs=2)["ratio"] == 3.0


def test_without_the_floor_the_ratio_is_omitted_after_one_greysim_run(monkeypatch, tmp_path):
    bench, order = _scripted_processes(monkeypatch, [], [5.0])
    row = bench.floor_ratio(1000, 1, "scenarios/baseline.yaml", tmp_path / "absent.py")
    assert order == ["warm", "greysim"]
    assert row["ratio"] is None and row["floor_seconds"] is None and row["greysim_seconds"] == 5.0


def test_benchmark_command_writes_every_field(tmp_path):
    """``python -m benchmarks`` at CI size: every section, including the small runs on a real
    `dask scheduler` and two `dask worker` processes started on 127.0.0.1."""
    out = tmp_path / "results.json"
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--sizes", "20000", "--quarters", "2",
         "--ratio-pairs", "1",
         "--pool-users", "5000", "--pool-reps", "2", "--small-reps", "4",
         "--small-users", "2000", "--small-quarters", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert {"date", "machine", "scenario", "runs", "pool", "targets", "standing"} <= set(data)
    assert {"cpu", "cores", "python", "numpy"} <= set(data["machine"])
    (run,) = data["runs"]
    assert run["users"] == 20000 and run["months"] == 6
    for key in ("wall_seconds", "user_months_per_second", "cpu_seconds", "peak_rss_bytes",
                "peak_rss_bytes_per_user", "run_rss_bytes_per_user", "other_seconds"):
        assert run[key] > 0 or key == "other_seconds", key
    assert set(run["shares"]) == {"ageing", "adoption", "re-evaluation", "rollout", "credit",
                                  "fraud", "recorder", "setup", "tables"}
    assert 0 < sum(run["shares"].values()) <= 1.0 + 1e-9
    pool = data["pool"]
    assert pool["workers"] == 2 and pool["replications"] == 2
    assert data["small_pool"]["replications"] == 4 and data["small_pool"]["speedup"] > 0
    ratio = data["ratio"]  # W1's floor beside the repository, or the ratio omitted
    assert ratio["users"] == 20000 and ratio["run_off_months"] == 0
    assert ratio["greysim_seconds"] > 0
    assert (ratio["ratio"] is None) == (not Path(ratio["floor"]).is_file())
    assert pool["speedup"] == pytest.approx(pool["one_worker_seconds"] / pool["pool_seconds"])
    assert "pool_speedup" in data["standing"]
    # the same small runs on a real `dask scheduler` and two `dask worker` processes on
    # 127.0.0.1, as on a cluster: the same tables as one process
    dask = data["dask"]
    assert dask["replications"] == 4 and dask["dask_seconds"] > 0
    assert dask["identical_tables"] and dask["tables_digest"] == data["small_pool"]["tables_digest"]
    assert dask["overhead_per_run_seconds"] == pytest.approx(
        (dask["dask_seconds"] - data["small_pool"]["pool_seconds"]) / 4)


# --------------------------------------------------------------------------- size guard


def test_estimate_is_linear_in_users_and_months(baseline_path):
    def at(users: int, quarters: int):
        return resources.estimate(sim.load(baseline_path, [f"population.users={users}"]),
                                  quarters)

    a, b, c = at(1_000_000, 12), at(2_000_000, 12), at(1_000_000, 24)
    fixed = resources.BASE_BYTES + a.tables
    assert b.total - a.total == pytest.approx(a.total - fixed, rel=1e-6)
    assert c.seconds - resources.FIXED_SECONDS == pytest.approx(
        2 * (a.seconds - resources.FIXED_SECONDS))
    assert c.tables == 2 * a.tables  # a row per month (and segment) until the tables are built


def test_the_warning_and_the_refusal_use_one_estimate(baseline_path):
    sc = sim.load(baseline_path, ["population.users=1000000"])
    need = resources.estimate(sc, 4)
    assert resources.check_memory(sc, 4, available=(need.total, "test")) == need
    with pytest.raises(resources.ResourceError, match="need about"):
        resources.check_memory(sc, 4, available=(need.total - 1, "test"))


def test_run_warns_before_a_large_population(monkeypatch, baseline_path, tmp_path):
    monkeypatch.setattr(resources, "WARN_BYTES", 0)
    res = CliRunner().invoke(app, ["run", str(baseline_path), "--users", "5000",
                                   "--quarters", "1", "--quiet", "--out",
                                   str(tmp_path / "x")])
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "estimate" in res.output
