"""Version grey: client versions, their adoption over time, and who can see the entry."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import BLOCK, Streams
from sim.scenario import Release


def version_code(release: Release, name: str) -> int:
    """The code of a version name (versions are coded oldest first)."""
    return [v.name for v in release.versions].index(name)


def latest_released(release: Release, day: dt.date) -> int:
    """Code of the newest version released on or before ``day``."""
    return max(i for i, v in enumerate(release.versions) if v.released <= day)


def upgrade_probability(release: Release, days: int) -> float:
    """Chance that a non-laggard user not on the newest release upgrades within ``days``.

    Adoption is exponential with the scenario's half-life: half of those behind upgrade
    within ``adoption_half_life_weeks``.
    """
    return 1.0 - 0.5 ** (days / (7.0 * release.adoption_half_life_weeks))


def adopt(pop: Population, release: Release, newest: int, days: int, streams: Streams,
          month: int) -> np.ndarray:
    """Move users along the adoption curve to the newest release; returns who moved.
    Only the users behind draw (their ``month``'s adoption uniform)."""
    return Adoption().step(pop, release, newest, days, streams, month)


class Adoption:
    """The clients behind the newest release (laggards aside), kept from month to month:
    only adoption moves a version, so until a newer release the users behind are last
    month's less those who moved (no pass over every user each month)."""

    def __init__(self) -> None:
        self.newest: int | None = None
        self.behind = np.empty(0, dtype=np.intp)

    def __repr__(self) -> str:
        return f"Adoption(newest={self.newest}, behind={self.behind.size})"

    def step(self, pop: Population, release: Release, newest: int, days: int,
             streams: Streams, month: int) -> np.ndarray:
        """One month of :func:`adopt`: the users behind ``newest`` draw their ``month``'s
        adoption uniform; those below the chance of upgrading within ``days`` move. Returns
        them (in index order)."""
        if newest != self.newest:
            behind = pop.version < newest
            np.greater(behind, pop.laggard, out=behind)  # and not a laggard, in one pass
            # kept from month to month: 4 bytes a user behind where indices fit
            small = np.int32 if pop.n < 2**31 else np.intp
            self.behind, self.newest = np.flatnonzero(behind).astype(small), newest
        chance = upgrade_probability(release, days)
        moving, still = [], []
        for a in range(0, self.behind.size, BLOCK):  # a block's draws at a time: no 8 bytes
            users = self.behind[a:a + BLOCK]          # a user behind at once
            moves = streams.chance(chance, purposes.ADOPTION, month, users)
            # np.compress, not users[mask]: several times faster on a scattered mask
            moving.append(np.compress(moves, users))
            still.append(np.compress(np.logical_not(moves, out=moves), users))
        # the movers as intp: NumPy indexes twice as fast with intp as with int32 indices
        # (the versions written here, the entry's visibility read and written by the caller)
        moving = np.concatenate(moving, dtype=np.intp) if moving else np.empty(0, np.intp)
        self.behind = np.concatenate(still) if still else self.behind
        pop.version[moving] = newest
        return moving


def visibility_rates(release: Release) -> np.ndarray:
    """Probability that the entry shows, by version code."""
    return np.array([v.visible for v in release.versions], dtype=np.float32)


def entry_visible(pop: Population, rates: np.ndarray, users: np.ndarray | None = None,
                  version: int | None = None) -> np.ndarray:
    """Whether the entry shows on each user's client (of ``users``, default everyone);
    ``version`` when the caller knows they all run it (those who just upgraded).

    Each user has one stable draw, so an upgrade can only reveal the entry, never hide it, and
    two users on the same version can still see different screens.
    """
    if users is None:
        return pop.visibility_draw < rates[pop.version]
    rate = rates[pop.version[users]] if version is None else rates[version]
    return pop.visibility_draw[users] < rate
