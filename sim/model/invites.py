"""User-tier grey: who the rollout invites, when, and in what order.

A strategy is a list of phases. The active phase sends a batch every ``cadence_days``: either
a count or a share of the eligible, not-yet-invited pool (ordered by value score, by score, or
at random), or, for a ramp, every eligible user whose sticky bucket is under the current
percentage. Buckets come from a stable hash of the user id and a salt, so raising a percentage
only adds users and a different salt picks a different first 10%.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np

from sim.model.population import Population
from sim.model.release import version_code
from sim.model.scoring import REASONS, Evaluation
from sim.model.streams import keyed_hash
from sim.scenario import Holdout, Phase, Rollout, Scenario

BUCKETS = 10_000

def _salt_key(salt: str) -> np.uint64:
    return np.uint64(int.from_bytes(hashlib.sha1(salt.encode()).digest()[:8], "little"))


def sticky_hash(user_ids: np.ndarray, salt: str) -> np.ndarray:
    """A 64-bit hash of ``(salt, user id)``: the per-user draws' keyed hash
    (:func:`sim.model.streams.keyed_hash`) under SHA-1 of the salt. Vectorised, platform
    independent, and the same for a user whatever the population size."""
    return keyed_hash(user_ids, _salt_key(salt))


#: Sticky buckets kept for the salts asked for last, by (users, salt): a run asks for the same
#: salt at every re-evaluation (and a holdout's at every batch), and hashing a million users
#: costs more than looking them up. Two at 2 bytes a user.
KEPT_BUCKETS = 2
_kept: dict[tuple[int, str], np.ndarray] = {}


def sticky_bucket(n: int, salt: str) -> np.ndarray:
    """Bucket 0..9999 of users ``0..n-1``; a user in the first p% stays in every larger p%.

    Read-only: the buckets of the last :data:`KEPT_BUCKETS` salts are kept and shared."""
    key = (n, salt)
    bucket = _kept.pop(key, None)
    if bucket is None:
        bucket = buckets_of(np.arange(n, dtype=np.uint64), salt)
        bucket.setflags(write=False)
    _kept[key] = bucket  # the most recent last
    while len(_kept) > KEPT_BUCKETS:
        del _kept[next(iter(_kept))]
    return bucket


def buckets_of(users: np.ndarray, salt: str) -> np.ndarray:
    """The sticky buckets of ``users`` alone (a bucket is a hash of the user's index): what
    :func:`sticky_bucket` gives them, without hashing everyone."""
    return (sticky_hash(users, salt) % np.uint64(BUCKETS)).astype(np.uint16)


def assign_arms(n: int, salt: str, shares: list[float]) -> np.ndarray:
    """A/B arm code of users ``0..n-1``: the hash of id and ``salt`` as a uniform in [0, 1)
    (its top 53 bits) cut at the cumulative ``shares``. Stable: a user keeps the arm whatever
    the population size and the other scenario keys."""
    u = (sticky_hash(np.arange(n, dtype=np.uint64), salt) >> np.uint64(11)).astype(
        np.float64) * 2.0**-53
    edges = np.cumsum(shares)[:-1]
    return np.searchsorted(edges, u, side="right").astype(np.int8)


def in_rollout(bucket: np.ndarray, percent: float) -> np.ndarray:
    """Users inside a rollout percentage (0-100)."""
    return bucket < percent * (BUCKETS / 100.0)


def active_phase(rollout: Rollout, day: dt.date) -> Phase | None:
    """The phase in force on ``day`` (the last one started), if any."""
    current = None
    for phase in rollout.phases:
        if phase.start <= day:
            current = phase
    return current


def phase_end(rollout: Rollout, phase: Phase, horizon_end: dt.date) -> dt.date:
    """First day after the phase: the next phase's start or the horizon's end."""
    later = [p.start for p in rollout.phases if p.start > phase.start]
    return min(later) if later else horizon_end


def ramp_percent(phase: Phase, day: dt.date) -> float:
    """The ramp's percentage on ``day``; the last step holds after the schedule ends."""
    elapsed = (day - phase.start).days
    for step in phase.ramp:
        if elapsed < step.days:
            return step.percent
        elapsed -= step.days
    return phase.ramp[-1].percent


def in_phase_reach(pop: Population, scenario: Scenario, phase: Phase) -> np.ndarray:
    """Users the phase may invite at all: version, region and score filters."""
    reach = np.ones(pop.n, dtype=bool)
    _narrow_to_reach(reach, pop, scenario, phase)
    return reach


def _narrow_to_reach(mask: np.ndarray, pop: Population, scenario: Scenario,
                     phase: Phase) -> None:
    """``mask &= in_phase_reach(...)``, in place; regions by comparing codes (a lookup
    indexed by the one-byte codes would first widen them to 8 bytes a user)."""
    if phase.min_version is not None:
        mask &= pop.version >= version_code(scenario.release, phase.min_version)
    if phase.regions is not None:
        labels = pop.labels["region"]
        inside = np.zeros(pop.n, dtype=bool)
        for code in sorted({labels.index(r) for r in phase.regions}):
            inside |= pop.region == code
        mask &= inside
    if phase.min_score is not None:
        mask &= pop.score >= phase.min_score


def candidates(pop: Population, scenario: Scenario, phase: Phase) -> np.ndarray:
    """The eligible, never-invited pool inside the phase's reach."""
    pool = pop.vintage < 0
    pool &= pop.eligible
    np.greater(pool, pop.closed, out=pool)  # and not closed, in one pass
    _narrow_to_reach(pool, pop, scenario, phase)
    return pool


def salt_of(rollout: Rollout, phase: Phase) -> str:
    """The salt of a phase's sticky buckets: its own, or the rollout's with the phase name."""
    return phase.salt if phase.salt is not None else f"{rollout.salt}:{phase.name}"


def batch_size(phase: Phase, pool: int, weight: float, holiday: bool,
               factor: float = 1.0) -> int:
    """Simulated users in one batch: ``count`` real users or ``share`` of the pool, scaled by
    the holiday multiplier inside holiday windows (time grey) and by the gates' ``factor``."""
    if phase.batch.count is not None:
        size = phase.batch.count / weight
    else:
        size = phase.batch.share * pool
    if holiday:
        size *= phase.holiday_multiplier
    if factor != 1.0:
        size *= factor
    return int(min(pool, round(size)))


def uses_buckets(phase: Phase) -> bool:
    """Whether the phase's batches read its sticky buckets (a ramp, a random order)."""
    return phase.ramp is not None or phase.ordering == "random"


def order_key(pop: Population, ordering: str, bucket: np.ndarray | None,
              users: np.ndarray | None = None) -> np.ndarray:
    """Sort key, smallest first: highest value score, highest score, or sticky random; of
    ``users`` only when given (default everyone)."""
    at = slice(None) if users is None else users
    if ordering == "tier":
        return -pop.value[at]
    if ordering == "score":
        return -pop.score[at]
    return bucket[at].astype(np.float32)


def choose(pool: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` pool members with the smallest key (ties broken by user id)."""
    idx = np.flatnonzero(pool)
    return smallest(idx, key[idx], k)


def smallest(idx: np.ndarray, key: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` of the increasing indices ``idx`` with the smallest ``key`` (one a member;
    ties broken by index)."""
    if k >= idx.size:
        return idx
    if k <= 0:
        return idx[:0]
    kth = np.partition(key, k - 1)[k - 1]  # the k-th smallest key (no index array)
    # take everything strictly better, then the lowest ids among the ties, so the choice
    # never depends on how the partition orders equal keys.
    # (np.compress, not idx[mask]: several times faster on a scattered mask)
    better = np.compress(key < kth, idx)
    ties = np.compress(key == kth, idx)
    return np.concatenate([better, ties[: k - better.size]])


def batch_pool(pop: Population, scenario: Scenario, phase: Phase,
               within: np.ndarray | None = None) -> np.ndarray:
    """Indices of the :func:`candidates`, only among ``within`` (an A/B arm) when given."""
    pool = candidates(pop, scenario, phase)
    if within is not None:
        pool &= within
    return np.flatnonzero(pool)


def uninvited(pop: Population, users: np.ndarray,
              keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Those of ``users`` never invited, and their ``keys`` (one a user) when given."""
    never = pop.vintage[users] < 0
    return (np.compress(never, users),
            None if keys is None else np.compress(never, keys))


def next_batch(pop: Population, scenario: Scenario, phase: Phase, day: dt.date,
               holiday: bool, bucket: np.ndarray | None, within: np.ndarray | None = None,
               factor: float = 1.0, pool: np.ndarray | None = None,
               keys: np.ndarray | None = None) -> np.ndarray:
    """Indices of the users the phase invites on ``day``, only among ``within`` (an A/B
    arm's users) when given; ``factor`` scales a batch (not a ramp). ``bucket`` (the
    phase's sticky buckets) is read only when :func:`uses_buckets`; ``pool``, the
    :func:`batch_pool` when the caller has it, and ``keys`` its :func:`order_key`."""
    idx = batch_pool(pop, scenario, phase, within) if pool is None else pool
    if phase.ramp is not None:
        return np.compress(in_rollout(bucket[idx], ramp_percent(phase, day)), idx)
    k = batch_size(phase, idx.size, pop.weight, holiday, factor)
    if keys is None:
        keys = order_key(pop, phase.ordering, bucket, idx)
    return smallest(idx, keys, k)


def holdout_pool(pop: Population, scenario: Scenario, phase: Phase, cutoff: float,
                 margin: float, bucket: np.ndarray, share: float) -> np.ndarray:
    """Never-invited users in the phase's reach whose only failing is a score less than
    ``margin`` under ``cutoff``, and whose sticky bucket is inside ``share``."""
    only_score = pop.reasons == REASONS["score_below_cutoff"]
    return (only_score & (pop.score >= cutoff - margin) & ~pop.closed & (pop.vintage < 0)
            & in_phase_reach(pop, scenario, phase) & in_rollout(bucket, 100.0 * share))


def holdout_batch(pop: Population, scenario: Scenario, rollout: Rollout, phase: Phase,
                  cutoff: float, within: np.ndarray | None = None) -> np.ndarray:
    """Indices of the users the strategy's holdout invites in ``phase`` (only among
    ``within`` when given): the :func:`holdout_pool` of its sticky bucket."""
    h: Holdout = rollout.holdout
    bucket = sticky_bucket(pop.n, h.salt or f"{rollout.salt}:holdout")
    pool = holdout_pool(pop, scenario, phase, cutoff, h.margin, bucket, h.share)
    if within is not None:
        pool &= within
    return np.flatnonzero(pool)


# --------------------------------------------------------------------------- access state


def invite(pop: Population, users: np.ndarray, vintage: int) -> None:
    """Whitelist ``users`` as batch ``vintage``."""
    pop.invited[users] = True
    pop.vintage[users] = vintage


def revoke(pop: Population, users: np.ndarray) -> None:
    """Take the invitation back (a re-evaluation found them no longer eligible); ``users``
    are indices or a mask over everyone."""
    if users.dtype == np.bool_:  # invited and not revoked, in one pass (a masked write
        np.greater(pop.invited, users, out=pop.invited)  # over a million: 1.5 ms)
    else:
        pop.invited[users] = False


def restore(pop: Population, users: np.ndarray) -> None:
    """Give back the invitation of users invited before (eligible again, never closed);
    ``users`` are indices or a mask over everyone."""
    if users.dtype == np.bool_:
        pop.invited |= users
    else:
        pop.invited[users] = True


def decide(pop: Population, ev: Evaluation) -> None:
    """Store an evaluation on the population: the bank's current view (score, value score,
    reasons) and who is eligible now."""
    pop.score, pop.value, pop.eligible, pop.reasons = ev.score, ev.value, ev.eligible, ev.reasons


def close(pop: Population, users: np.ndarray, *, ineligible: bool = False) -> None:
    """Close ``users``' access for good (a default, an R3 fraud link). ``ineligible`` also
    ends their eligibility now (a default is known at once); otherwise it ends at the next
    re-scoring, whose preconditions exclude the closed."""
    pop.closed[users] = True
    pop.invited[users] = False
    if ineligible and pop.eligible is not None:
        pop.eligible[users] = False


def hide(pop: Population, *groups: np.ndarray) -> None:
    """Hide the entry from exactly the users in ``groups`` (index arrays, overlaps allowed:
    the users at risk level R1 or R2), show it to the rest."""
    pop.hidden.fill(False)
    for users in groups:
        pop.hidden[users] = True
