"""Re-evaluation: every period the bank re-scores everyone; access is revoked from users no
longer eligible, given back to earlier invitees eligible again, and newly eligible users in a
phase's reach are admitted at the coverage the rollout has reached there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.model import invites, scoring
from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import Streams
from sim.scenario import Phase, Rollout, Scenario


@dataclass(frozen=True)
class Change:
    """Who a re-evaluation moved: access lost, access given back, eligible before it."""

    lost: np.ndarray
    regained: np.ndarray
    was_eligible: np.ndarray


def drift_indicators(pop: Population, scenario: Scenario, streams: Streams,
                     month: int) -> None:
    """The score's unmodelled indicators move on one period: an AR(1) step that keeps their
    spread (persistence ``phi``, innovation ``sqrt(1 - phi^2) sd``)."""
    ind = scenario.scoring.other_indicators
    phi = ind.persistence
    step = streams.normal(purposes.INDICATORS, month, pop.n)
    step *= np.float32(np.sqrt(1 - phi * phi) * ind.sd)
    pop.other_indicators *= np.float32(phi)
    pop.other_indicators += step


def reevaluate(pop: Population, scenario: Scenario, cutoff: float, holdout: np.ndarray,
               streams: Streams, month: int) -> Change:
    """Re-score everyone at ``cutoff``; revoke the invitation of those no longer eligible (a
    ``holdout`` user keeps it) and restore it to earlier invitees eligible again."""
    drift_indicators(pop, scenario, streams, month)
    was_eligible = pop.eligible
    invites.decide(pop, scoring.evaluate(pop, scenario, cutoff))
    lost = pop.invited & ~pop.eligible & ~holdout
    regained = ~pop.invited & (pop.vintage >= 0) & pop.eligible & ~pop.closed
    invites.revoke(pop, lost)
    invites.restore(pop, regained)
    return Change(lost, regained, was_eligible)


def admissions(pop: Population, scenario: Scenario, rollout: Rollout, phase: Phase,
               was_eligible: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """Indices of the newly eligible, never-invited users in the phase's reach (only among
    ``within``, an A/B arm, when given) the rollout admits: its sticky bucket under the
    coverage of the eligible it has reached there."""
    reach = invites.in_phase_reach(pop, scenario, phase) & pop.eligible
    if within is not None:
        reach &= within
    coverage = np.count_nonzero(reach & pop.invited) / max(np.count_nonzero(reach), 1)
    reach &= ~was_eligible
    reach &= pop.vintage < 0
    reach &= ~pop.closed
    users = np.flatnonzero(reach)
    bucket = invites.buckets_of(users, f"{rollout.salt}:reevaluation")
    return users[invites.in_rollout(bucket, 100.0 * coverage)]

