"""One timed run in a fresh process, so its peak memory is its own: prints a JSON line.

``python -m benchmarks.one --users N --quarters Q --scenario PATH``
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import time

import sim
import sim.engine  # noqa: F401  (``import sim`` is lazy: load the model before timing it)

#: What a run without A/B arms imports (``import sim`` itself is lazy).
RUN_MODULES = ("numpy", "simpy", "sim.engine.simulation", "sim.engine.result",
               "sim.experiments.runs")


def peak_rss() -> int:
    """Peak resident bytes of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(scenario: str, users: int, quarters: int, run_off: int = 0) -> dict:
    """Run the scenario at ``users`` for ``quarters`` (plus ``run_off`` run-off months, none
    by default: W1's floor simulates the quarters alone) and return its figures."""
    # the same market at every size
    sc = sim.load(scenario, {"reporting.run_off_months": run_off}, users=users)
    # ``import sim`` loads the model lazily: import what a run uses first (NumPy, pandas,
    # SimPy, the model), so the base is the interpreter with it loaded and nothing else; a
    # module the run still imports counts against the run (conservative)
    for name in RUN_MODULES:
        importlib.import_module(name)
    base = peak_rss()
    started, cpu_started = time.perf_counter(), time.process_time()
    result = sim.run(sc, quarters=quarters)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # below wall when other work shares the cores
    peak = peak_rss()
    months = 3 * quarters + run_off
    return {
        "users": users,
        "quarters": quarters,
        "run_off_months": run_off,
        "months": months,
        "wall_seconds": wall,
        "user_months_per_second": users * months / wall,
        "cpu_seconds": cpu,
        "user_months_per_cpu_second": users * months / cpu,
        "peak_rss_bytes": peak,
        "peak_rss_bytes_per_user": peak / users,
        "import_rss_bytes": base,
        "run_rss_bytes_per_user": (peak - base) / users,
        "seconds": result.timings,
    }


def warm(_: int) -> int:
    """Pool warm-up task: greysim is imported; hold briefly so every worker gets one."""
    time.sleep(0.5)
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--quarters", type=int, required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--run-off", type=int, default=0, help="run-off months (default 0)")
    args = parser.parse_args()
    print(json.dumps(measure(args.scenario, args.users, args.quarters, args.run_off)))


if __name__ == "__main__":
    main()
