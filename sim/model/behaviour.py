"""Behaviour over time: the month-to-month drift of what users do, dormancy, devices, IDs."""

from __future__ import annotations

import numpy as np

from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import Streams
from sim.scenario import Scenario

#: The attributes that drift, in the order of their draws' sub-keys.
DRIFTING = ("payments_per_month", "monthly_spend", "wealth_balance", "wealth_days")


def age(pop: Population, scenario: Scenario, streams: Streams, month: int) -> None:
    """One month of behaviour: drift, dormancy and waking, device switches, ID expiry.
    Every user draws each decision of ``month`` from ``streams``."""
    b = scenario.behaviour
    n = pop.n
    pop.account_age_months += 1
    pop.credit_history_years += np.float32(1 / 12)
    step = np.empty(n, dtype=np.float32)  # one buffer for every drift step, updated in place
    for sub, name in enumerate(DRIFTING):
        step[:] = streams.normal(purposes.DRIFT, month, n, sub)
        step *= b.drift_sd
        np.exp(step, out=step)
        getattr(pop, name).__imul__(step)
    np.minimum(pop.wealth_days, 365, out=pop.wealth_days)  # days held in the past year
    np.maximum(pop.awakened_months - 1, 0, out=pop.awakened_months, casting="unsafe")
    u = streams.uniform(purposes.DORMANCY, month, n)
    waking = pop.dormant & (u < b.wake_rate)
    sleeping = ~pop.dormant & (u < b.dormancy_rate)
    pop.dormant ^= waking | sleeping  # the waking were dormant, the sleeping were not
    np.copyto(pop.awakened_months, b.awakened_months, where=waking, casting="unsafe")
    np.multiply(pop.payments_per_month, np.float32(b.awakened_payment_boost),
                out=pop.payments_per_month, where=waking)
    pop.device_switches[:] = streams.poisson(b.device_switch_rate, purposes.DEVICE_SWITCHES,
                                             month, n).clip(0, 127)
    u = streams.uniform(purposes.ID_EXPIRY, month, n)
    expired = pop.id_expired_months >= 0
    renewed = expired & (u < b.id_renewal_rate)
    expiring = ~expired & (u < b.id_expiry_rate)
    pop.id_expired_months += expired
    np.copyto(pop.id_expired_months, -1, where=renewed)
    np.copyto(pop.id_expired_months, 0, where=expiring)
