"""Behaviour over time: the month-to-month drift of what users do, dormancy, devices, IDs.

Dormancy and ID expiry are Markov chains and step every month (:func:`age`), drawing only
for the few users whose rare transition comes up (:meth:`Streams.below`). The drifting
attributes and the month's device switches are drawn when the bank reads them, at each
re-scoring and in the last month (:func:`settle`): ``k`` monthly lognormal steps of
``drift_sd`` multiply to one lognormal step of ``drift_sd x sqrt(k)``, the same distribution
drawn once instead of ``k`` times (the waking boost multiplies, so it commutes). Wealth days
(days held in the past year) are capped at 365 when read, not every month: a path that
touched the cap in between keeps more of its drift (in the baseline 12.6% instead of 8.6% of
users sit at the cap by month 36, mean wealth days +0.8% at month 3 and +2.6% by month 36).
Between two reads the population holds the values the bank last read, and so do the
segment tables of months without a re-scoring.
"""

from __future__ import annotations

import math

import numpy as np

from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import BLOCK, Streams
from sim.scenario import Scenario

#: The attributes that drift, in pairs: each pair's draws share one hash (sub-key = pair).
DRIFTING = ("payments_per_month", "monthly_spend", "wealth_balance", "wealth_days")

#: The float arrays behaviour writes (the drifting ones, and the credit history that ages).
WRITTEN = (*DRIFTING, "credit_history_years")


def age(pop: Population, scenario: Scenario, streams: Streams, month: int) -> None:
    """One month of the behaviour that has a path: account age, credit history, dormancy
    and waking (with its burst of payments), ID expiry and renewal.

    Each transition is one uniform a user for ``month`` from ``streams``; they are rare (an
    active account falls dormant, a dormant one wakes, a valid ID expires), so only the
    users whose uniform falls below the rate are drawn (:meth:`Streams.below`), and the
    few expired IDs one uniform each for their renewal."""
    b = scenario.behaviour
    pop.account_age_months += 1
    pop.credit_history_years += np.float32(1 / 12)
    # count down the awakened: one vectorised pass over int8 (the few to index cost a
    # search of every user)
    pop.awakened_months -= (pop.awakened_months > 0).view(np.int8)
    # dormancy: one uniform a user, compared with the rate of the user's state
    users, u = streams.below(max(b.wake_rate, b.dormancy_rate), purposes.STATUS, month,
                             pop.n)
    dormant = pop.dormant[users]
    waking = np.compress(dormant & (u < b.wake_rate), users)
    sleeping = np.compress(~dormant & (u < b.dormancy_rate), users)
    pop.dormant[waking] = False
    pop.dormant[sleeping] = True
    pop.awakened_months[waking] = b.awakened_months
    pop.payments_per_month[waking] *= np.float32(b.awakened_payment_boost)
    # ID cards: the valid expire (rare), the expired are renewed
    expired = np.flatnonzero(pop.id_expired_months >= 0)
    renewed = expired[streams.chance(b.id_renewal_rate, purposes.STATUS, month, expired, sub=2)]
    expiring, _ = streams.below(b.id_expiry_rate, purposes.STATUS, month, pop.n, sub=1)
    expiring = expiring[pop.id_expired_months[expiring] < 0]
    pop.id_expired_months[expired] += 1
    pop.id_expired_months[renewed] = -1
    pop.id_expired_months[expiring] = 0


def pending(month: int, every_months: int, last: int) -> int:
    """Months of drift the bank reads at the end of ``month``: the months since its last
    read at a re-scoring (every ``every_months``) or in the ``last`` month of the run; 0 in
    a month it does not read behaviour."""
    if month % every_months == 0:
        return every_months
    return month % every_months if month == last else 0


def settle(pop: Population, scenario: Scenario, streams: Streams, month: int,
           months: int) -> None:
    """Draw the behaviour read at the end of ``month``: the drift of the ``months`` months
    since the last read, at once, and this month's device switches. Wealth days are capped
    at 365 (days held in the past year) when read. Block by block, like :func:`age`."""
    if months <= 0:
        return
    for a in range(0, pop.n, BLOCK):
        _settle(pop.rows(a, a + BLOCK), scenario, streams, month, months,
                range(a, min(a + BLOCK, pop.n)))


def _settle(pop: Population, scenario: Scenario, streams: Streams, month: int, months: int,
            users: range) -> None:
    """:func:`settle` on one block of the population (``pop`` holds views of its arrays)."""
    b = scenario.behaviour
    sd = np.float32(b.drift_sd * math.sqrt(months))
    for pair in range(len(DRIFTING) // 2):
        steps = streams.normal_pair(purposes.DRIFT, month, users, sub=pair)
        for name, step in zip(DRIFTING[2 * pair:2 * pair + 2], steps, strict=True):
            step *= sd
            np.exp(step, out=step)
            getattr(pop, name).__imul__(step)
    np.minimum(pop.wealth_days, 365, out=pop.wealth_days)
    switches = streams.poisson(b.device_switch_rate, purposes.DEVICE_SWITCHES, month, users)
    pop.device_switches[:] = np.minimum(switches, 127, out=switches)  # counts: never below 0
