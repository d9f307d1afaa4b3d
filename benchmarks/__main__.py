"""``python -m benchmarks``: time the baseline at several sizes and the process pool.

First the ratio to W1's NumPy floor: the whole ``greysim run`` process against the whole
``numpy_floor.py`` process (``../shared/bench`` beside the repository) at the same users and
quarters, run-off months off (``--set reporting.run_off_months=0``: the floor simulates the
quarters alone), both with Python's bytecode cache allowed and greysim's filled by an untimed
small run first, as on a user's second run; the wall-clock ratio, and beside it the ratio of
the CPU seconds the two processes' threads used (less slowed by a busy host). Then each size
runs in a fresh subprocess (peaks don't mix), also without run-off months. Prints wall time,
users x months per
second, peak resident bytes per user and each process's share of the time, then the
replication speed-up of a 2-worker process pool over one worker (4 runs of 200k users and 40
of 20k), the same 40 small runs on a real ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 with the overhead a run pays there, and writes everything to
``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: W1's vectorised floor (read-only, beside the repository; never copied into it).
FLOOR = ROOT.parent / "shared" / "bench" / "numpy_floor.py"
#: Report names of the processes whose share of the time is printed, from Result.timings.
PROCESSES = {"ageing": "behaviour", "adoption": "release", "re-evaluation": "reevaluation",
             "rollout": "rollout", "credit": "credit", "fraud": "fraud", "recorder": "recorder",
             "setup": "setup", "tables": "tables"}
#: The issue's targets on the 2-core machine, baseline, 12 quarters.
TARGETS = {"wall_seconds_1m": 10.0, "user_months_per_second": 5e6, "linearity_max": 12.0,
           "bytes_per_user_1m": 250.0, "bytes_10m": 4e9, "pool_speedup_min": 1.7,
           "floor_ratio_max": 3.0}


#: The size at which the ratio to W1's floor is stated (issue 18).
RATIO_USERS = 1_000_000


def cached_bytecode_env() -> dict[str, str]:
    """This environment with Python allowed to cache the bytecode of what it imports (some
    sandboxes set ``PYTHONDONTWRITEBYTECODE``, which makes every process compile greysim's
    modules again: about 0.6 s a process). A user's second run reads the cache."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class Timed(NamedTuple):
    """One whole process: wall seconds and the CPU seconds its threads used (user and
    system; None where the platform does not say)."""

    wall: float
    cpu: float | None


def _children_cpu() -> float | None:
    """CPU seconds of the finished child processes so far (POSIX ``RUSAGE_CHILDREN``)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_process(argv: list[str], env: dict[str, str] | None = None) -> Timed:
    """Wall and CPU seconds of one whole process, start-up and imports included. The CPU
    seconds, every thread's, are what a neighbour on a shared host slows less than the
    wall clock (a process that keeps a second core busy counts it)."""
    before = _children_cpu()
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = _children_cpu()
    return Timed(wall, None if before is None or after is None else after - before)


def floor_ratio(users: int, quarters: int, scenario: str, floor: Path = FLOOR,
                pairs: int = 3) -> dict:
    """The whole ``greysim run --no-report`` process over the whole W1 ``numpy_floor.py``
    process at the same size, run-off months off on both sides (the floor has none): the
    median of ``pairs`` ratios of runs taken one after the other (the floor alone varies by
    a third from run to run on a shared machine; the pairs alternate which process goes
    first). Beside it, the ratio of each side's fastest run (``fastest_ratio``): on a host
    whose neighbours slow runs by up to half, the least disturbed runs of each. The ratio
    is None when the floor is absent (greysim then runs once)."""
    env = cached_bytecode_env()

    def greysim_run(n: int, q: int, out: Path) -> Timed:
        return timed_process(
            [sys.executable, "-m", "sim", "run", scenario, "--users", str(n), "--quarters",
             str(q), "--set", "reporting.run_off_months=0", "--no-report", "--quiet",
             "--out", str(out)], env)

    def floor_run() -> Timed:
        return timed_process([sys.executable, str(floor), "--users", str(users), "--quarters",
                              str(quarters), "--seed", "1"], env)

    found = floor.is_file()
    greysim, floors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        greysim_run(1000, 1, Path(tmp) / "warm")  # untimed: fills the bytecode cache
        for i in range(max(pairs, 1) if found else 1):
            if found and i % 2:  # alternate which goes first, so drift favours neither
                floors.append(floor_run())
            greysim.append(greysim_run(users, quarters, Path(tmp) / f"run{i}"))
            if found and not i % 2:
                floors.append(floor_run())
    if not found:
        return {"users": users, "quarters": quarters, "run_off_months": 0,
                "greysim_seconds": greysim[0].wall, "floor": str(floor), "floor_seconds": None,
                "ratio": None, "pairs": 0, "ratios": [], "cpu_ratio": None, "cpu_ratios": [],
                "fastest_ratio": None}
    ratios = [g.wall / f.wall for g, f in zip(greysim, floors, strict=True)]
    cpu_ratios = [g.cpu / f.cpu for g, f in zip(greysim, floors, strict=True)
                  if g.cpu is not None and f.cpu]
    pick = _middle(ratios)
    return {"users": users, "quarters": quarters, "run_off_months": 0,
            "greysim_seconds": greysim[pick].wall, "floor": str(floor),
            "floor_seconds": floors[pick].wall, "ratio": ratios[pick], "pairs": len(ratios),
            "ratios": ratios, "cpu_ratios": cpu_ratios,
            "cpu_ratio": cpu_ratios[_middle(cpu_ratios)] if cpu_ratios else None,
            # a neighbour only ever slows a run: each side's fastest is its least disturbed
            "fastest_ratio": min(g.wall for g in greysim) / min(f.wall for f in floors)}


def _middle(values: list[float]) -> int:
    """The index of the middle value (the lower middle one of an even number)."""
    return int(np.argsort(values, kind="stable")[(len(values) - 1) // 2])


def report_ratio(row: dict) -> None:
    head = (f"ratio to W1's floor at {row['users']:,} users x {row['quarters']} quarters "
            f"(whole processes, run-off months off): greysim {row['greysim_seconds']:.2f} s")
    if row["ratio"] is None:
        print(f"{head}; floor not found at {row['floor']}: ratio omitted")
    else:
        every = ", ".join(f"{r:.2f}" for r in row["ratios"])
        cpu = ("" if row["cpu_ratio"] is None else
               f"; CPU seconds ratio {row['cpu_ratio']:.2f}x ("
               + ", ".join(f"{r:.2f}" for r in row["cpu_ratios"]) + ")")
        print(f"{head}, floor {row['floor_seconds']:.2f} s: ratio {row['ratio']:.2f}x "
              f"(the median of {row['pairs']} paired runs: {every}){cpu}; fastest runs' "
              f"ratio {row['fastest_ratio']:.2f}x")


def machine() -> dict:
    """What the figures were taken on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from sim.io.cost import available_memory

    memory = available_memory()
    return {"cpu": cpu, "cores": os.cpu_count(),
            "available_memory_bytes": memory[0] if memory else None,
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "load_average": list(os.getloadavg())}


def run_size(users: int, quarters: int, scenario: str) -> dict:
    """One size, measured in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.one", "--users", str(users), "--quarters",
         str(quarters), "--scenario", scenario],
        cwd=ROOT, check=True, capture_output=True, text=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    timed = row["seconds"]
    row["other_seconds"] = max(row["wall_seconds"] - sum(timed.values()), 0.0)
    row["shares"] = {name: timed.get(key, 0.0) / row["wall_seconds"]
                     for name, key in PROCESSES.items()}
    return row


def pool_scaling(users: int, reps: int, quarters: int, scenario: str, workers: int) -> dict:
    """Wall time of ``reps`` replications with one worker and with ``workers`` (started and
    warmed first: the start-up of a pool is paid once per study, not per run)."""
    import sim
    from sim.experiments.executors import InProcess, ProcessPool
    from sim.experiments.runs import replications

    # the same market at every size; run-off months off, as in the timed sizes
    sc = sim.load(scenario, {"reporting.run_off_months": 0}, users=users)
    started = time.perf_counter()
    serial_outputs = replications(sc, reps, quarters, InProcess())
    serial = time.perf_counter() - started
    pool = ProcessPool.shared(workers)  # started and warmed once for both pool sizes
    pool.warm()
    started = time.perf_counter()
    replications(sc, reps, quarters, pool)
    parallel = time.perf_counter() - started
    return {"users": users, "replications": reps, "quarters": quarters, "workers": workers,
            "one_worker_seconds": serial, "pool_seconds": parallel,
            "speedup": serial / parallel, "tables_digest": tables_digest(serial_outputs)}


def tables_digest(outputs) -> str:
    """SHA-256 of every run's tables, in run order: equal digests, identical tables."""
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    for output in outputs:
        for name in sorted(output.tables):
            digest.update(pd.util.hash_pandas_object(output.tables[name]).to_numpy().tobytes())
    return digest.hexdigest()


def dask_overhead(users: int, reps: int, quarters: int, scenario: str, workers: int,
                  pool: dict | None = None) -> dict | None:
    """Wall time of ``reps`` replications on a real ``dask scheduler`` with ``workers``
    ``dask worker`` processes on 127.0.0.1 (started and warmed first, like the pool), and
    its overhead per run over the warmed process pool of ``pool`` (the same runs)."""
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        return None
    import sim
    from sim.experiments.executors import DaskCluster, dask_processes
    from sim.experiments.runs import replications

    sc = sim.load(scenario, {"reporting.run_off_months": 0}, users=users)
    with dask_processes(workers) as address:
        cluster = DaskCluster(scheduler=address)
        try:
            cluster._client.wait_for_workers(workers, timeout=60)
            cluster.warm()
            started = time.perf_counter()
            outputs = replications(sc, reps, quarters, cluster)
            seconds = time.perf_counter() - started
        finally:
            cluster.close()
    out = {"users": users, "replications": reps, "quarters": quarters, "workers": workers,
           "dask_seconds": seconds, "tables_digest": tables_digest(outputs)}
    if pool is not None:
        out["identical_tables"] = out["tables_digest"] == pool["tables_digest"]
        out["pool_seconds"] = pool["pool_seconds"]
        out["one_worker_seconds"] = pool["one_worker_seconds"]
        out["speedup"] = pool["one_worker_seconds"] / seconds
        out["overhead_per_run_seconds"] = (seconds - pool["pool_seconds"]) / reps
    return out


def report_dask(row: dict | None) -> None:
    if row is None:
        print("dask: dask.distributed cannot be imported")
        return
    text = (f"dask: {row['replications']} replications of {row['users']:,} users on a "
            f"scheduler + {row['workers']} workers (127.0.0.1) {row['dask_seconds']:.2f} s")
    if "speedup" in row:
        text += (f": speed-up {row['speedup']:.2f}x over 1 worker, "
                 f"{1000 * row['overhead_per_run_seconds']:+.0f} ms a run over the pool, "
                 + ("tables identical to one process's" if row["identical_tables"]
                    else "TABLES DIFFER from one process's"))
    print(text)


def targets(runs: list[dict], pool: dict | None, ratio: dict | None = None) -> dict:
    """Where each target stands (None when the sizes it needs were not run)."""
    by = {r["users"]: r for r in runs}
    big, small = by.get(1_000_000), by.get(100_000)
    out: dict = {}
    if big is not None:
        out["wall_seconds_1m"] = big["wall_seconds"]
        out["cpu_seconds_1m"] = big["cpu_seconds"]
        out["user_months_per_second_1m"] = big["user_months_per_second"]
        out["bytes_per_user_1m"] = big["peak_rss_bytes_per_user"]
        out["run_bytes_per_user_1m"] = big["run_rss_bytes_per_user"]
    if big is not None and small is not None:
        out["linearity_1m_over_100k"] = big["wall_seconds"] / small["wall_seconds"]
        out["cpu_linearity_1m_over_100k"] = big["cpu_seconds"] / small["cpu_seconds"]
    if 10_000_000 in by:
        out["peak_bytes_10m"] = by[10_000_000]["peak_rss_bytes"]
    if pool is not None:
        out["pool_speedup"] = pool["speedup"]
    if ratio is not None and ratio["ratio"] is not None:
        out["floor_ratio"] = ratio["ratio"]
        out["floor_cpu_ratio"] = ratio["cpu_ratio"]
    return out


def report(runs: list[dict], pool: dict | None) -> None:
    if runs:
        head = (f"{'users':>11} {'months':>6} {'wall s':>8} {'cpu s':>8} {'user-months/s':>14} "
                f"{'B/user':>7} {'net B/user':>10}")
        print(head + "".join(f" {name:>13}" for name in PROCESSES))
    for r in runs:
        print(f"{r['users']:>11,} {r['months']:>6} {r['wall_seconds']:>8.2f} "
              f"{r['cpu_seconds']:>8.2f} "
              f"{r['user_months_per_second']:>14,.0f} {r['peak_rss_bytes_per_user']:>7.0f} "
              f"{r['run_rss_bytes_per_user']:>10.0f}"
              + "".join(f" {100 * r['shares'][name]:>12.1f}%" for name in PROCESSES))
    if pool is not None:
        print(f"pool: {pool['replications']} replications of {pool['users']:,} users, "
              f"1 worker {pool['one_worker_seconds']:.2f} s, {pool['workers']} workers "
              f"{pool['pool_seconds']:.2f} s: speed-up {pool['speedup']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated simulated users (default 100000,1000000)")
    parser.add_argument("--large", action="store_true", help="also run 10,000,000 users")
    parser.add_argument("--quarters", type=int, default=12)
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "baseline.yaml"))
    parser.add_argument("--pool-users", type=int, default=200_000)
    parser.add_argument("--pool-reps", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-pool", action="store_true", help="skip the pool scaling")
    parser.add_argument("--small-users", type=int, default=20_000)
    parser.add_argument("--small-reps", type=int, default=40,
                        help="many small runs through the pool (default 40; 0 skips them)")
    parser.add_argument("--small-quarters", type=int, default=8)
    parser.add_argument("--ratio-users", type=int, default=None,
                        help="users of the ratio to W1's floor (default: 1,000,000, as "
                             "issue 18 states it, or the largest size if smaller)")
    parser.add_argument("--no-ratio", action="store_true", help="skip the ratio to the floor")
    parser.add_argument("--ratio-pairs", type=int, default=3,
                        help="paired greysim and floor runs; the ratio is their median")
    parser.add_argument("--no-dask", action="store_true",
                        help="skip the small runs on a dask scheduler and two workers")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.large:
        sizes.append(10_000_000)
    ratio = None
    if not args.no_ratio:
        ratio = floor_ratio(args.ratio_users or min(RATIO_USERS, max(sizes)), args.quarters,
                            args.scenario, pairs=args.ratio_pairs)
        report_ratio(ratio)
    runs = []
    for users in sizes:
        runs.append(run_size(users, args.quarters, args.scenario))
        report(runs[-1:], None)
    pool = small_pool = dask = None
    if not args.no_pool:
        pool = pool_scaling(args.pool_users, args.pool_reps, args.quarters, args.scenario,
                            args.workers)
        report([], pool)
        if args.small_reps:
            small_pool = pool_scaling(args.small_users, args.small_reps, args.small_quarters,
                                      args.scenario, args.workers)
            report([], small_pool)
            if not args.no_dask:
                dask = dask_overhead(args.small_users, args.small_reps, args.small_quarters,
                                     args.scenario, args.workers, small_pool)
                report_dask(dask)
    results = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(),
               "scenario": args.scenario, "ratio": ratio, "runs": runs, "pool": pool,
               "small_pool": small_pool, "dask": dask,
               "targets": TARGETS, "standing": targets(runs, pool, ratio)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
