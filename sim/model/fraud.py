"""Risk signals and the risk levels R1 / R2 / R3 (DOMAIN section 5), in bulk over arrays.

Each month a user without a risk level may trip a signal: genuine users at the scenario's
rates (false alarms: these are the wrongly blocked), the few fraudsters at
``fraudster_rate_multiplier`` times the rates, a ``fraudster_r3`` share of their signals
linking them to fraud outright.

* **R1** (e.g. a new device) hides the entry for ``r1_hidden_days``, then it comes back.
* **R2** (e.g. a login from another region) hides the entry until a manual review succeeds;
  a hidden user asks for a review with probability ``appeal_rate`` a month, at most
  ``max_reviews_per_year`` per calendar year; a genuine user's review succeeds with
  ``review_success`` (68% in DOMAIN), a fraudster's never.
* **R3** (linked to fraud) closes access for good (``pop.closed``).

Nothing here does I/O; the draws are per user, from :class:`sim.model.streams.Streams`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model import invites
from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import Streams
from sim.scenario import Fraud

NONE, R1, R2, R3 = range(4)


@dataclass(eq=False)
class FraudBook:
    """Per-user risk level and review bookkeeping (structure of arrays)."""

    fraudster: np.ndarray  # latent truth: the signals about this user are right
    level: np.ndarray  # NONE, R1, R2, R3
    hidden_until: np.ndarray  # day an R1 hide ends
    reviews_year: np.ndarray  # reviews used in the current calendar year
    reviews_total: np.ndarray
    blocks: np.ndarray  # times blocked (R1, R2 or R3)
    last_blocked_day: np.ndarray  # -1 never
    year: int = 0  # calendar year of ``reviews_year``

    @property
    def n(self) -> int:
        return int(self.level.shape[0])


def new_fraud_book(n: int, spec: Fraud, streams: Streams, year: int) -> FraudBook:
    """Draw who is a fraudster (its own purpose, so the population draw is untouched)."""
    return FraudBook(
        fraudster=streams.chance(spec.fraudsters, purposes.FRAUDSTER, 0, n),
        level=np.zeros(n, dtype=np.int8),
        hidden_until=np.zeros(n, dtype=np.int32),
        reviews_year=np.zeros(n, dtype=np.int8),
        reviews_total=np.zeros(n, dtype=np.int16),
        blocks=np.zeros(n, dtype=np.int16),
        last_blocked_day=np.full(n, -1, dtype=np.int32),
        year=year,
    )


def month(fb: FraudBook, pop: Population, spec: Fraud, *, day: int, year: int,
          streams: Streams, month: int) -> dict[str, int]:
    """One month (number ``month``) of signals, R1 expiry and R2 reviews; hides the entry
    from R1 / R2 users and closes R3 users' access (through :mod:`sim.model.invites`).
    Returns the month's counts (unweighted). Each decision draws only for the users it
    concerns: the hidden for a review, the asking for its outcome, the signalled for its
    level; a signal, rare, draws only for the users it finds (:meth:`Streams.below`)."""
    if year != fb.year:  # the review allowance is per calendar year
        fb.reviews_year[:] = 0
        fb.year = year

    # the few users at a risk level: the steps below concern them, or the newly signalled
    flagged = nonzero(fb.level)
    level = fb.level[flagged]

    # R1: the entry comes back by itself
    r1 = np.compress(level == R1, flagged)
    expired = np.compress(fb.hidden_until[r1] <= day, r1)
    fb.level[expired] = NONE

    # R2: reviews on request, within the yearly allowance
    r2 = np.compress(level == R2, flagged)
    may_ask = np.compress(fb.reviews_year[r2] < spec.max_reviews_per_year, r2)
    asking = may_ask[streams.chance(spec.appeal_rate, purposes.REVIEW_ASK, month, may_ask)]
    fb.reviews_year[asking] += 1
    fb.reviews_total[asking] += 1
    passed = streams.chance(spec.review_success, purposes.REVIEW_PASS, month, asking)
    restored = asking[passed & ~fb.fraudster[asking]]
    fb.level[restored] = NONE

    # new signals for users without a risk level and still open (genuine users and
    # fraudsters have one rate each)
    base = spec.r1_rate + spec.r2_rate + spec.r3_rate
    # a signal is rare: genuine users draw only where their uniform is below the rate
    # (Streams.below), fraudsters (few, their own rate) one uniform each; both chances are
    # at most 1 (sim.scenario.credit.Fraud)
    genuine, _ = streams.below(base, purposes.SIGNAL, month, pop.n)
    genuine = genuine[~fb.fraudster[genuine]]
    crooks = nonzero(fb.fraudster)
    crooks = crooks[streams.chance(base * spec.fraudster_rate_multiplier, purposes.SIGNAL,
                                   month, crooks, sub=1)]
    hit = np.sort(np.concatenate([genuine, crooks]))  # disjoint: genuine users are no crooks
    hit = hit[(fb.level[hit] == NONE) & ~pop.closed[hit]]  # exposed: no risk level, open
    # which level: genuine users by the rates' shares, fraudsters fraudster_r3 to R3
    g3 = spec.r3_rate / base if base > 0 else 0.0
    g2 = spec.r2_rate / base if base > 0 else 0.0
    r12 = spec.r1_rate + spec.r2_rate
    f2 = (1.0 - spec.fraudster_r3) * (spec.r2_rate / r12 if r12 > 0 else 0.0)
    crook = fb.fraudster[hit]
    p3 = np.where(crook, spec.fraudster_r3, g3)
    p2 = np.where(crook, f2, g2)
    xh = streams.uniform(purposes.SIGNAL_LEVEL, month, hit)
    is3 = xh < p3
    is2 = ~is3 & (xh < p3 + p2)
    to3, to2, to1 = hit[is3], hit[is2], hit[~is3 & ~is2]
    fb.level[to1] = R1
    fb.hidden_until[to1] = day + spec.r1_hidden_days
    fb.level[to2] = R2
    fb.level[to3] = R3
    invites.close(pop, to3)
    fb.blocks[hit] += 1
    fb.last_blocked_day[hit] = day
    # hidden: the users at R1 or R2 now, those flagged before (some signalled again) and
    # the newly signalled (no union needed: a user marked twice is marked)
    level = fb.level[flagged]
    invites.hide(pop, np.compress((level == R1) | (level == R2), flagged), to1, to2)

    wrong = ~crook & (pop.vintage[hit] >= 0)
    return {
        "r1_signals": int(to1.size),
        "r2_signals": int(to2.size),
        "r3_signals": int(to3.size),
        "reviews": int(asking.size),
        "reviews_passed": int(restored.size),
        "wrongly_blocked": int(np.count_nonzero(wrong & ~is3)),
        "wrongly_closed": int(np.count_nonzero(wrong & is3)),
    }


def nonzero(a: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(a)`` of a one-byte array (levels, flags) where few are set, twice as
    fast at 1-2%: the 8-byte words holding a set byte first, then the bytes of those words
    (nothing is kept between calls)."""
    a = np.ascontiguousarray(a).reshape(-1)
    if a.itemsize != 1:
        return np.flatnonzero(a)
    head = a.size - a.size % 8
    words = a[:head].view(np.uint64)
    some = np.flatnonzero(words != 0)
    at = np.flatnonzero(words[some].view(np.uint8) != 0)  # byte positions in those words
    found = some[at >> 3] * 8 + (at & 7)
    if head == a.size:
        return found
    return np.concatenate([found, head + np.flatnonzero(a[head:])])


def stock(fb: FraudBook) -> dict[str, int]:
    """Users at each risk level now (unweighted)."""
    return {
        "r1_hidden": int(np.count_nonzero(fb.level == R1)),
        "r2_hidden": int(np.count_nonzero(fb.level == R2)),
        "r3_closed": int(np.count_nonzero(fb.level == R3)),
    }


def wrongly_blocked_share(fb: FraudBook, pop: Population, since_day: int) -> float:
    """Share of genuine, ever-invited users blocked (R1/R2/R3) on or after ``since_day``."""
    genuine = ~fb.fraudster & (pop.vintage >= 0)
    base = np.count_nonzero(genuine)
    if base == 0:
        return float("nan")
    hit = genuine & (fb.last_blocked_day >= since_day)
    return float(np.count_nonzero(hit) / base)
