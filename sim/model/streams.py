"""Named random streams: one generator per purpose, all spawned from the scenario seed.

Each is ``SeedSequence(seed, spawn_key=(i,))``: adding a stream at the end never changes the
others, and the population stream is the same for every strategy.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("population", "risk", "behaviour", "release", "rollout", "reevaluation", "credit",
           "fraud")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per purpose in :data:`STREAMS`."""
    return {
        name: np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(i,))))
        for i, name in enumerate(STREAMS)
    }
