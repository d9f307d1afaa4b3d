"""The bank's score, its hard preconditions and the access decision.

The score is on a 0-100 point scale: a weighted sum of six module scores (DOMAIN.md's
328 indicators in six modules), plus segment offsets, minus cut-off and behaviour penalties,
plus the persistent component of all indicators not modelled one by one. A user is eligible
when every hard precondition holds and the score reaches the cut-off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.model.population import Population
from sim.scenario import MODULES, Scenario, Scoring

# Reasons a user is not eligible, as bits of ``Population.reasons``.
REASONS = {
    "no_real_name_card": 1,
    "account_too_young": 2,
    "past_default": 4,
    "not_class_iii": 8,
    "device_closed": 16,
    "region_closed": 32,
    "id_expired": 64,
    "risky_social_graph": 128,
    "hard_cutoff": 256,
    "score_below_cutoff": 512,
    "closed": 1024,
    "region_restricted": 2048,
}


@dataclass(frozen=True)
class Evaluation:
    """One scoring of everyone: total score, value score and the decision."""

    score: np.ndarray
    value: np.ndarray
    eligible: np.ndarray
    reasons: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``100 / (1 + exp(-x))`` in float32, in one buffer."""
    y = np.negative(x, dtype=np.float32)
    np.exp(y, out=y)
    y += np.float32(1.0)
    return np.divide(np.float32(100.0), y, out=y)


def _log_ratio(x: np.ndarray, ref: float) -> np.ndarray:
    """``log(max(x, 0.001) / ref)`` in float32, in one buffer."""
    y = np.maximum(x, np.float32(1e-3), dtype=np.float32)
    y *= np.float32(1.0 / ref)
    return np.log(y, out=y)


def module_scores(pop: Population, cfg: Scoring) -> dict[str, np.ndarray]:
    """Each module's 0-100 score from the observable behaviour it summarises."""
    return {name: score() for name, score in _module_terms(pop, cfg).items()}


def _module_terms(pop: Population, cfg: Scoring) -> dict[str, Callable[[], np.ndarray]]:
    """Each module's score as a function, so a caller can hold one module at a time."""
    k, ref, sig = cfg.slope, cfg.references, cfg.signals
    spend, pay, social = sig.spending_capacity, sig.repayment_trust, sig.social_influence
    assets, stable, resil = sig.assets, sig.behavioural_stability, sig.risk_resilience
    return {
        "spending_capacity": lambda: _sigmoid(
            k * (spend.payments * _log_ratio(pop.payments_per_month, ref.payments_per_month)
                 + spend.spend * _log_ratio(pop.monthly_spend, ref.monthly_spend))
        ),
        "repayment_trust": lambda: _sigmoid(
            k * _log_ratio(pop.credit_history_years, ref.credit_history_years)
            + pay.credit_transactions * pop.credit_transactions
            + pay.utility_bills * pop.utility_payer + pay.intercept
        ),
        "social_influence": lambda: _sigmoid(
            social.contacts * k * _log_ratio(pop.contacts, ref.contacts)
            + social.quality * (pop.social_quality - social.quality_reference)
        ),
        "assets": lambda: _sigmoid(
            k * (assets.days * _log_ratio(pop.wealth_days + 1.0, ref.wealth_days)
                 + assets.balance * _log_ratio(pop.wealth_balance + 1.0, ref.wealth_balance))
        ),
        "behavioural_stability": lambda: _sigmoid(
            stable.intercept - stable.night * pop.night_share
            - stable.device_switches * pop.device_switches
            - stable.volatility * np.log(np.maximum(pop.spend_volatility, 1e-3))
            - stable.dormant * (pop.dormant | (pop.awakened_months > 0))
        ),
        "risk_resilience": lambda: _sigmoid(
            k * _log_ratio(pop.income, ref.income)
            - resil.debt_to_income * (pop.debt_to_income - resil.debt_to_income_reference)
        ),
    }


def _offsets(pop: Population, scenario: Scenario) -> np.ndarray:
    spec = scenario.population
    table = (
        (pop.archetype, [a.score_offset for a in spec.archetypes.values()]),
        (pop.region, [r.score_offset for r in spec.regions.values()]),
        (pop.device_grade, [d.score_offset for d in spec.device_grades.values()]),
        (pop.os, [o.score_offset for o in spec.os.values()]),
        (pop.data_sharing, [d.score_offset for d in spec.data_sharing.values()]),
    )
    total = np.zeros(pop.n, dtype=np.float32)
    for codes, values in table:
        total += np.take(np.asarray(values, dtype=np.float32), codes)
    total -= unknown_sources_deduction(pop, scenario)
    return total


def unknown_sources_deduction(pop: Population, scenario: Scenario) -> np.ndarray:
    """Score points each user's phone loses for allowing apps from unknown sources.

    DOMAIN's 15-20 points are device security points. When every device grade gives its
    typical ``security_score``, a phone of grade ``g`` that loses ``p`` security points costs
    ``offset(g) - offset(security(g) - p)``, the score offset read along the grades (linear
    between them, flat beyond the least secure): the score of a device that much less
    secure. Never negative. Without security scores the points are score points.
    """
    spec = scenario.population
    points = np.array([o.unknown_sources_points for o in spec.os.values()], dtype=np.float64)
    grades = list(spec.device_grades.values())
    if any(g.security_score is None for g in grades):
        per_user = points.astype(np.float32)[pop.os]
    else:
        sec = np.array([g.security_score for g in grades], dtype=np.float64)
        off = np.array([g.score_offset for g in grades], dtype=np.float64)
        order = np.argsort(sec, kind="stable")
        after = np.interp(sec[:, None] - points[None, :], sec[order], off[order])
        cost = np.maximum(off[:, None] - after, 0.0).astype(np.float32)  # (grade, os)
        per_user = cost[pop.device_grade, pop.os]
    return per_user * pop.unknown_sources


def _penalties(pop: Population, cfg: Scoring) -> tuple[np.ndarray, np.ndarray]:
    """Points lost to cut-offs and risky behaviour, and the mask of hard cut-off failures."""
    points = np.zeros(pop.n, dtype=np.float32)
    hard = np.zeros(pop.n, dtype=bool)
    for name, rule in cfg.cutoffs.items():
        fail = getattr(pop, name) < rule.min
        if rule.hard:
            hard |= fail
        points += fail * np.float32(rule.points)
    p = cfg.penalties
    flags = {
        "low_offline_share": lambda r: pop.offline_share < r.threshold,
        "high_spend_volatility": lambda r: pop.spend_volatility > r.threshold,
        "night_activity": lambda r: pop.night_share > r.threshold,
        "device_switches": lambda r: pop.device_switches >= r.threshold,
        "no_utility_bills": lambda r: ~pop.utility_payer,
        "awakened": lambda r: pop.awakened_months > 0,
    }
    for name, rule in p.items():
        points += flags[name](rule) * np.float32(rule.points)
    return points, hard


def preconditions(pop: Population, scenario: Scenario) -> np.ndarray:
    """Bitmask of failed hard preconditions (0 = all hold)."""
    pre = scenario.scoring.preconditions
    region_open = np.array([r.open for r in scenario.population.regions.values()])
    reasons = np.zeros(pop.n, dtype=np.uint16)

    def flag(mask, name):  # mask x bit over everyone: cheaper than an index or a where=
        np.bitwise_or(reasons, mask * np.uint16(REASONS[name]), out=reasons)

    if pre.require_real_name_card:
        flag(~pop.real_name_card, "no_real_name_card")
    flag(pop.account_age_months < pre.min_account_age_months, "account_too_young")
    if pre.exclude_past_default:
        flag(pop.past_default, "past_default")
    if pre.require_class_iii:
        flag(pop.account_class == 0, "not_class_iii")
    if pre.exclude_device_closed:
        flag(pop.device_closed, "device_closed")
    flag(~region_open[pop.region], "region_closed")
    if pop.restricted is not None:
        flag(pop.restricted, "region_restricted")
    flag(pop.id_expired_months >= pre.exclude_expired_id_after_months, "id_expired")
    if pre.exclude_risky_social_graph:
        flag(pop.risky_social_graph, "risky_social_graph")
    flag(pop.closed, "closed")
    return reasons


#: Users scored per block: a block's dozen working arrays stay in the core's cache.
BLOCK = 65_536


def evaluate(pop: Population, scenario: Scenario, cutoff: float | None = None) -> Evaluation:
    """Score everyone and decide eligibility (``cutoff`` overrides the scenario's), block by
    block of :data:`BLOCK` users (each user's score depends on that user alone)."""
    n = pop.n
    score, value = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    reasons = np.empty(n, dtype=np.uint16)
    for a in range(0, n, BLOCK):
        at = slice(a, a + BLOCK)
        score[at], value[at], reasons[at] = _evaluate(pop.rows(a, a + BLOCK), scenario, cutoff)
    return Evaluation(score, value, reasons == 0, reasons)


def _evaluate(pop: Population, scenario: Scenario,
              cutoff: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, value score and reasons of one block of users."""
    cfg = scenario.scoring
    weights = scenario.rollout.value_weights
    offsets = _offsets(pop, scenario)
    # The value score ranks users for tier-first batches: what they are worth to the bank
    # (the rollout's chosen modules) in the segments the bank prefers (the same offsets).
    # One module at a time, added to both sums in place: no module is kept.
    value = offsets.copy()
    score = np.zeros(pop.n, dtype=np.float32)
    terms = _module_terms(pop, cfg)
    for m in MODULES:
        x = terms[m]()
        score += cfg.weights[m] * x
        if m in weights:
            value += weights[m] * x
        del x
    penalty, hard = _penalties(pop, cfg)
    score += offsets
    score -= penalty
    score += pop.other_indicators
    if pop.score_adjust is not None:  # repayment behaviour: overdue episodes, early repayment
        score += pop.score_adjust
    reasons = preconditions(pop, scenario)
    reasons |= hard * np.uint16(REASONS["hard_cutoff"])
    limit = cfg.cutoff if cutoff is None else cutoff
    reasons |= (score < limit) * np.uint16(REASONS["score_below_cutoff"])
    return score, value, reasons
