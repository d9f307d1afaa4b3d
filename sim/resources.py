"""What a run will cost before it starts: peak memory and wall time from its size.

The model is linear in users (the population is a structure of arrays; every process makes
a bounded number of population-sized temporaries), so two constants per resource, measured
with ``python -m benchmarks`` on the baseline scenario (see ``benchmarks/README.md``), give
an estimate good to a few tens of percent. The refusal of a run that cannot fit is
:func:`sim.guards.check_memory`'s; this module only says what a run will cost.
"""

from __future__ import annotations

#: Resident bytes of the interpreter with numpy, pandas, simpy and greysim imported.
FIXED_BYTES = 130_000_000
#: Peak resident bytes per simulated user: the arrays (about 200) plus the temporaries
#: (measured 306 at 1M users, rounded up).
BYTES_PER_USER = 320
#: Seconds per simulated user-month (measured about 3.5e6 user-months a second on 2 cores,
#: rounded down), plus the fixed start-up.
SECONDS_PER_USER_MONTH = 1 / 3.0e6
FIXED_SECONDS = 1.0
#: Runs estimated to need more than this many bytes print a warning with the estimate.
WARN_BYTES = 2_000_000_000


def estimate(users: int, months: int) -> dict[str, float]:
    """Estimated peak resident memory (``bytes``) and wall time (``seconds``) of one run of
    ``users`` simulated users over ``months`` months, on the benchmark machine."""
    return {
        "bytes": float(FIXED_BYTES + BYTES_PER_USER * users),
        "seconds": float(FIXED_SECONDS + SECONDS_PER_USER_MONTH * users * months),
    }
