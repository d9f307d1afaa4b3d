"""Behaviour over time: the month-to-month drift of what users do, dormancy, devices, IDs."""

from __future__ import annotations

import numpy as np

from sim.model.population import Population
from sim.scenario import Scenario


def age(pop: Population, scenario: Scenario, rng: np.random.Generator) -> None:
    """One month of behaviour: drift, dormancy and waking, device switches, ID expiry."""
    b = scenario.behaviour
    n = pop.n
    pop.account_age_months += 1
    pop.credit_history_years += np.float32(1 / 12)
    step = np.empty(n, dtype=np.float32)  # one buffer for every drift step, updated in place
    for name in ("payments_per_month", "monthly_spend", "wealth_balance", "wealth_days"):
        rng.standard_normal(n, dtype=np.float32, out=step)
        step *= b.drift_sd
        np.exp(step, out=step)
        getattr(pop, name).__imul__(step)
    np.minimum(pop.wealth_days, 365, out=pop.wealth_days)  # days held in the past year
    np.maximum(pop.awakened_months - 1, 0, out=pop.awakened_months, casting="unsafe")
    u = rng.random(n, dtype=np.float32, out=step)
    waking = pop.dormant & (u < b.wake_rate)
    sleeping = ~pop.dormant & (u < b.dormancy_rate)
    pop.dormant ^= waking | sleeping  # the waking were dormant, the sleeping were not
    np.copyto(pop.awakened_months, b.awakened_months, where=waking, casting="unsafe")
    np.multiply(pop.payments_per_month, np.float32(b.awakened_payment_boost),
                out=pop.payments_per_month, where=waking)
    pop.device_switches[:] = rng.poisson(b.device_switch_rate, n).clip(0, 127)
    u = rng.random(n, dtype=np.float32, out=step)
    expired = pop.id_expired_months >= 0
    renewed = expired & (u < b.id_renewal_rate)
    expiring = ~expired & (u < b.id_expiry_rate)
    pop.id_expired_months += expired
    np.copyto(pop.id_expired_months, -1, where=renewed)
    np.copyto(pop.id_expired_months, 0, where=expiring)
