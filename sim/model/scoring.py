"""The bank's score, its hard preconditions and the access decision.

The score is on a 0-100 point scale: a weighted sum of six module scores (DOMAIN.md's
328 indicators in six modules), plus segment offsets, minus cut-off and behaviour penalties,
plus the persistent component of all indicators not modelled one by one. A user is eligible
when every hard precondition holds and the score reaches the cut-off.

Much of a scoring reads what never changes during a run (segments, the phone, social graph,
the bank's view of past defaults, ...): those parts (:data:`FIXED_INPUTS`) are computed at
a population's first scoring and kept for its next ones, so a quarterly re-scoring computes
only what moves. The cut-offs and penalties are the bits of a small code a user whose
points come from a table of float32 sums in the rules' order: the same sums as adding the
points rule by rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.model.population import Population
from sim.scenario import MODULES, Penalty, Scenario, Scoring

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
    """One scoring of everyone: total score, value score and the decision (and, when asked
    for, the structural score: :func:`evaluate`)."""

    score: np.ndarray
    value: np.ndarray
    eligible: np.ndarray
    reasons: np.ndarray
    structural: np.ndarray | None = None


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``100 / (1 + exp(-x))`` in float32, in one buffer: ``x``'s own when it is float32
    (callers pass a temporary)."""
    y = np.negative(x, out=x) if x.dtype == np.float32 else np.negative(x, dtype=np.float32)
    return _sigmoid_of_negated(y)


def _sigmoid_of_negated(y: np.ndarray) -> np.ndarray:
    """:func:`_sigmoid` of ``-y`` for a float32 ``y``, in ``y``: a module whose last step
    multiplies by ``a`` multiplies by ``-a`` instead (the same bits as negating after, as
    rounding is symmetric) and saves a pass."""
    np.exp(y, out=y)
    y += np.float32(1.0)
    return np.divide(np.float32(100.0), y, out=y)


def _log_ratio(x: np.ndarray, ref: float, plus: float | None = None) -> np.ndarray:
    """``log(max(x (+ plus), 0.001) / ref)`` in float32, in one buffer."""
    if plus is None:
        y = np.maximum(x, np.float32(1e-3), dtype=np.float32)
    else:
        y = np.add(x, plus, dtype=np.float32)
        np.maximum(y, np.float32(1e-3), out=y)
    y *= np.float32(1.0 / ref)
    return np.log(y, out=y)


def module_scores(pop: Population, cfg: Scoring) -> dict[str, np.ndarray]:
    """Each module's 0-100 score from the observable behaviour it summarises."""
    return {name: score() for name, score in _module_terms(pop, cfg).items()}


def _module_terms(pop: Population, cfg: Scoring) -> dict[str, Callable[[], np.ndarray]]:
    """Each module's score as a function, so a caller can hold one module at a time."""
    return {m: (lambda m=m: _MODULES[m](pop, cfg)) for m in MODULES}


# Each module's score, in float32 buffers changed in place: ``a * x`` with a Python float
# ``a`` is float32 for a float32 ``x`` and float64 for a bool or integer one, so the sums
# below keep the dtypes (and the bits) of the plain formulas in their docstrings.

def _spending_capacity(pop: Population, cfg: Scoring) -> np.ndarray:
    """``slope (payments lr(payments) + spend lr(spend))``, ``lr`` the log ratio."""
    w, ref = cfg.signals.spending_capacity, cfg.references
    x = _log_ratio(pop.payments_per_month, ref.payments_per_month)
    x *= w.payments
    y = _log_ratio(pop.monthly_spend, ref.monthly_spend)
    y *= w.spend
    x += y
    x *= -cfg.slope
    return _sigmoid_of_negated(x)


def _bool_terms(y: np.ndarray, terms: tuple[tuple[np.ndarray, float], ...]) -> None:
    """``y += flag * weight`` for each (bool flag, weight) in float64, in order: the flag
    made float64 then scaled in place (cheaper than the product's mixed-type loop)."""
    t = np.empty_like(y)
    for flag, weight in terms:
        np.copyto(t, flag)
        t *= weight
        y += t


def _repayment_trust(pop: Population, cfg: Scoring) -> np.ndarray:
    """``slope lr(history) + credit_transactions + utility_bills + intercept``."""
    w = cfg.signals.repayment_trust
    x = _log_ratio(pop.credit_history_years, cfg.references.credit_history_years)
    # Minus the sum, in float64, in the formula's order with every term negated (the same
    # bits negated: rounding is symmetric, and ``t + x`` is ``x + t``): the float32
    # product widened, the bool terms, the intercept; narrowed, it is what
    # :func:`_sigmoid_of_negated` takes.
    y = np.multiply(x, -cfg.slope, out=np.empty(pop.n, dtype=np.float64))
    _bool_terms(y, ((pop.credit_transactions, -w.credit_transactions),
                    (pop.utility_payer, -w.utility_bills)))
    y -= w.intercept
    np.copyto(x, y)
    return _sigmoid_of_negated(x)


def _social_influence(pop: Population, cfg: Scoring) -> np.ndarray:
    """``contacts slope lr(contacts) + quality (quality - reference)``."""
    w = cfg.signals.social_influence
    x = _log_ratio(pop.contacts, cfg.references.contacts)
    x *= w.contacts * cfg.slope
    y = np.subtract(pop.social_quality, w.quality_reference)
    y *= w.quality
    x += y
    return _sigmoid(x)


def _assets(pop: Population, cfg: Scoring) -> np.ndarray:
    """``slope (days lr(wealth days + 1) + balance lr(wealth balance + 1))``."""
    w, ref = cfg.signals.assets, cfg.references
    x = _log_ratio(pop.wealth_days, ref.wealth_days, plus=1.0)
    x *= w.days
    y = _log_ratio(pop.wealth_balance, ref.wealth_balance, plus=1.0)
    y *= w.balance
    x += y
    x *= -cfg.slope
    return _sigmoid_of_negated(x)


def _behavioural_stability(pop: Population, cfg: Scoring) -> np.ndarray:
    """``intercept - night share - device switches - volatility log(spend volatility) -
    dormant (asleep or awakened)``, each with its weight."""
    w = cfg.signals.behavioural_stability
    # Minus the sum, every step negated (the same bits negated, as rounding is symmetric):
    # ``night - intercept`` in float32, then in float64 ``switches + that``,
    # ``+ volatility``, ``+ dormant``; narrowed, it is what :func:`_sigmoid_of_negated` takes.
    x = np.multiply(pop.night_share, w.night)
    x -= w.intercept
    y = pop.device_switches.astype(np.float64)  # float64 from here, as int8 x a float
    y *= w.device_switches
    y += x
    v = np.maximum(pop.spend_volatility, np.float32(1e-3), out=x)
    np.log(v, out=v)
    v *= w.volatility
    y += v
    asleep = pop.awakened_months > 0
    asleep |= pop.dormant
    _bool_terms(y, ((asleep, w.dormant),))
    np.copyto(x, y)
    return _sigmoid_of_negated(x)


def _risk_resilience(pop: Population, cfg: Scoring) -> np.ndarray:
    """``slope lr(income) - debt_to_income (debt to income - reference)``."""
    w = cfg.signals.risk_resilience
    x = _log_ratio(pop.income, cfg.references.income)
    x *= cfg.slope
    y = np.subtract(pop.debt_to_income, w.debt_to_income_reference)
    y *= w.debt_to_income
    x -= y
    return _sigmoid(x)


_MODULES: dict[str, Callable[[Population, Scoring], np.ndarray]] = {
    "spending_capacity": _spending_capacity,
    "repayment_trust": _repayment_trust,
    "social_influence": _social_influence,
    "assets": _assets,
    "behavioural_stability": _behavioural_stability,
    "risk_resilience": _risk_resilience,
}


#: The score offset dimensions of the scenario (fitted to access rates, not to risk: see
#: :func:`sim.model.risk.structural_score`) and the population's codes of each.
OFFSET_DIMENSIONS = ("archetypes", "regions", "device_grades", "os", "data_sharing")
OFFSET_CODES = ("archetype", "region", "device_grade", "os", "data_sharing")


def _offset_tables(scenario: Scenario) -> tuple[np.ndarray, ...]:
    """Each offset dimension's float32 score offset a code, then the unknown-sources
    deduction a (device grade, OS) (:func:`_unknown_sources_cost`)."""
    spec = scenario.population
    return (*(np.asarray([c.score_offset for c in getattr(spec, dim).values()],
                         dtype=np.float32) for dim in OFFSET_DIMENSIONS),
            _unknown_sources_cost(scenario))


def _offsets(pop: Population, tables: tuple[np.ndarray, ...]) -> np.ndarray:
    """Segment offsets minus the unknown-sources deduction, from :func:`_offset_tables`."""
    total = np.zeros(pop.n, dtype=np.float32)
    for codes, values in zip(OFFSET_CODES, tables[:-1], strict=True):
        total += np.take(values, getattr(pop, codes))
    total -= tables[-1][pop.device_grade, pop.os] * pop.unknown_sources
    return total


def without_offsets(scenario: Scenario) -> Scenario:
    """``scenario`` with every segment's score offset zero (:data:`OFFSET_DIMENSIONS`)."""
    population = scenario.population
    zeroed = population.model_copy(update={
        dim: {k: v.model_copy(update={"score_offset": 0.0})
              for k, v in getattr(population, dim).items()}
        for dim in OFFSET_DIMENSIONS})
    return scenario.model_copy(update={"population": zeroed})


def unknown_sources_deduction(pop: Population, scenario: Scenario) -> np.ndarray:
    """Score points each user's phone loses for allowing apps from unknown sources
    (:func:`_unknown_sources_cost` of the user's device grade and OS)."""
    return _unknown_sources_cost(scenario)[pop.device_grade, pop.os] * pop.unknown_sources


def _unknown_sources_cost(scenario: Scenario) -> np.ndarray:
    """Score points a phone allowing apps from unknown sources loses, a (device grade, OS).

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
        return np.broadcast_to(points.astype(np.float32), (len(grades), points.size))
    sec = np.array([g.security_score for g in grades], dtype=np.float64)
    off = np.array([g.score_offset for g in grades], dtype=np.float64)
    order = np.argsort(sec, kind="stable")
    after = np.interp(sec[:, None] - points[None, :], sec[order], off[order])
    return np.maximum(off[:, None] - after, 0.0).astype(np.float32)


#: Penalties on behaviour that never changes during a run: their flags are kept.
FIXED_PENALTIES = ("low_offline_share", "high_spend_volatility", "night_activity",
                   "no_utility_bills")

_PENALTY_FLAGS: dict[str, Callable[[Population, Penalty], np.ndarray]] = {
    "low_offline_share": lambda pop, r: pop.offline_share < r.threshold,
    "high_spend_volatility": lambda pop, r: pop.spend_volatility > r.threshold,
    "night_activity": lambda pop, r: pop.night_share > r.threshold,
    "device_switches": lambda pop, r: pop.device_switches >= r.threshold,
    "no_utility_bills": lambda pop, r: ~pop.utility_payer,
    "awakened": lambda pop, r: pop.awakened_months > 0,
}


@dataclass(frozen=True)
class _Penalties:
    """The cut-offs and penalties of a scoring as bits of a code a user: the fixed
    penalties (:data:`FIXED_PENALTIES`) bits ``0..len(fixed) - 1``, the rest
    (``dynamic``: flag, bit, hard) the bits after; ``points[code]`` is the points lost.

    ``points`` adds each failed rule's points in float32 in the rules' order (cut-offs,
    then penalties), as adding them user by user would: the same float32 sums.
    """

    fixed: tuple[tuple[str, Penalty], ...]
    dynamic: tuple[tuple[Callable[[Population], np.ndarray], int, bool], ...]
    points: np.ndarray

    @classmethod
    def of(cls, cfg: Scoring) -> _Penalties:
        fixed = tuple((n, r) for n, r in cfg.penalties.items() if n in FIXED_PENALTIES)
        bits = {("penalty", n): i for i, (n, _) in enumerate(fixed)}
        rules = [("cutoff", n, r, lambda pop, n=n, r=r: getattr(pop, n) < r.min)
                 for n, r in cfg.cutoffs.items()]
        rules += [("penalty", n, r, lambda pop, n=n, r=r: _PENALTY_FLAGS[n](pop, r))
                  for n, r in cfg.penalties.items()]
        dynamic = []
        for kind, name, rule, flag in rules:
            if (kind, name) not in bits:
                bits[kind, name] = len(bits)
                dynamic.append((flag, bits[kind, name], kind == "cutoff" and rule.hard))
        if len(dynamic) > 8:  # a uint8 of flags in :func:`_penalties`
            raise ValueError("more than 8 penalties or cut-offs on behaviour that changes")
        codes = np.arange(1 << len(bits))
        points = np.zeros(codes.size, dtype=np.float32)
        for kind, name, rule, _ in rules:
            points += ((codes >> bits[kind, name]) & 1).astype(bool) * np.float32(rule.points)
        return cls(fixed, tuple(dynamic), points)


def _fixed_flags(pop: Population, rules: _Penalties) -> np.ndarray:
    """Bit ``i`` set: the user fails the ``i``-th fixed penalty of ``rules`` (uint8)."""
    flags = np.zeros(pop.n, dtype=np.uint8)
    for i, (name, rule) in enumerate(rules.fixed):
        np.bitwise_or(flags, _PENALTY_FLAGS[name](pop, rule) * np.uint8(1 << i), out=flags)
    return flags


def _penalties(pop: Population, rules: _Penalties,
               fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Points lost to cut-offs and risky behaviour, and the mask of hard cut-off failures
    (None without hard cut-offs), from the ``fixed`` flags (:func:`_fixed_flags`) and the
    flags of the rules on behaviour that changes.

    The changing rules' bits follow the fixed ones in order, so their part of the code is
    built in uint8 from the last rule down (twice itself plus the next flag) and shifted
    above the fixed bits once; ``points`` has an entry for every code (``clip`` skips the
    bounds check)."""
    hard = None
    code = None
    for flag, _, is_hard in reversed(rules.dynamic):
        fail = flag(pop)
        if code is None:
            code = fail.view(np.uint8)
        else:
            code += code
            code += fail.view(np.uint8)
        if is_hard:  # ``fail`` may be ``code``, changed in place: a copy
            hard = fail.copy() if hard is None else hard | fail
    if code is None:
        return np.take(rules.points, fixed, mode="clip"), hard
    code = code.astype(np.uint16)
    code <<= len(rules.fixed)
    code += fixed
    return np.take(rules.points, code, mode="clip"), hard


def preconditions(pop: Population, scenario: Scenario) -> np.ndarray:
    """Bitmask of failed hard preconditions (0 = all hold)."""
    return _changing_reasons(pop, scenario, _fixed_reasons(pop, scenario))


def _flag(reasons: np.ndarray, mask: np.ndarray, name: str) -> None:
    """Set ``name``'s bit of ``reasons`` where ``mask``: mask x bit over everyone is cheaper
    than an index or a ``where=``."""
    np.bitwise_or(reasons, mask * np.uint16(REASONS[name]), out=reasons)


def _region_open(scenario: Scenario) -> np.ndarray:
    return np.array([r.open for r in scenario.population.regions.values()])


def _fixed_reasons(pop: Population, scenario: Scenario) -> np.ndarray:
    """The bits of the preconditions on what never changes during a run (uint16)."""
    pre = scenario.scoring.preconditions
    reasons = np.zeros(pop.n, dtype=np.uint16)
    if pre.require_real_name_card:
        _flag(reasons, ~pop.real_name_card, "no_real_name_card")
    if pre.exclude_past_default:
        _flag(reasons, pop.past_default, "past_default")
    if pre.require_class_iii:
        _flag(reasons, pop.account_class == 0, "not_class_iii")
    if pre.exclude_device_closed:
        _flag(reasons, pop.device_closed, "device_closed")
    _flag(reasons, ~_region_open(scenario)[pop.region], "region_closed")
    if pop.restricted is not None:
        _flag(reasons, pop.restricted, "region_restricted")
    if pre.exclude_risky_social_graph:
        _flag(reasons, pop.risky_social_graph, "risky_social_graph")
    return reasons


def _changing_reasons(pop: Population, scenario: Scenario, fixed: np.ndarray) -> np.ndarray:
    """``fixed`` (:func:`_fixed_reasons`) with the bits of the preconditions on what changes
    (account age, ID expiry, closed access), in a new array."""
    reasons = fixed.copy()
    _flag_changing(reasons, pop, scenario)
    return reasons


def _flag_changing(reasons: np.ndarray, pop: Population, scenario: Scenario) -> None:
    """Set the bits of the preconditions on what changes in ``reasons``, in place."""
    pre = scenario.scoring.preconditions
    _flag(reasons, pop.account_age_months < pre.min_account_age_months, "account_too_young")
    _flag(reasons, pop.id_expired_months >= pre.exclude_expired_id_after_months, "id_expired")
    _flag(reasons, pop.closed, "closed")


#: Users scored per block: a block's dozen working arrays stay in the core's cache.
BLOCK = 65_536

#: Modules whose scores are kept, of those whose inputs never change during a run: both
#: (social influence, risk resilience). Each saves about 3 ms a scoring of 1M users (0.04 s
#: a run) for 4 bytes a user, on top of the 7 kept anyway (offsets 4, reason bits 2,
#: penalty flags 1), inside the memory budget of 250 bytes a user at 1M (where a run stands
#: against it: docs/performance.md).
KEPT_MODULES: tuple[str, ...] = ("social_influence", "risk_resilience")

#: The parts of a scoring that can be kept for a population (offsets, the fixed reason bits
#: and penalty flags, :data:`KEPT_MODULES`) and the population arrays each reads. No process
#: writes these arrays after the population is drawn (tests/model/test_scoring.py walks the
#: code to check), so a part computed once holds for a whole run.
FIXED_INPUTS = {
    "offsets": (*OFFSET_CODES, "unknown_sources"),
    "social_influence": ("contacts", "social_quality"),
    "risk_resilience": ("income", "debt_to_income"),
    "reasons": ("real_name_card", "past_default", "account_class", "device_closed", "region",
                "restricted", "risky_social_graph"),
    "flags": ("offline_share", "spend_volatility", "night_share", "utility_payer"),
}


@dataclass(frozen=True)
class _Plan:
    """What a scoring reads from the scenario, worked out once for all blocks."""

    scenario: Scenario
    offsets: tuple[np.ndarray, ...]
    penalties: _Penalties

    @classmethod
    def of(cls, scenario: Scenario) -> _Plan:
        return cls(scenario, _offset_tables(scenario), _Penalties.of(scenario.scoring))

    def parts(self) -> dict[str, tuple[Callable[[Population], np.ndarray], tuple] | None]:
        """Each kept part (:data:`FIXED_INPUTS`): how to compute it for a block of users and
        the scenario's parameters it reads (comparable with ``==``); None for the offsets
        when every offset is zero (risk's structural score: nothing to keep)."""
        sc, cfg = self.scenario, self.scenario.scoring
        offsets = tuple((t.shape, t.tobytes()) for t in self.offsets)
        parts = {
            "offsets": ((lambda pop: _offsets(pop, self.offsets)), offsets)
            if any(t.any() for t in self.offsets) else None,
            "reasons": ((lambda pop: _fixed_reasons(pop, sc)),
                        (cfg.preconditions, tuple(_region_open(sc)))),
            "flags": ((lambda pop: _fixed_flags(pop, self.penalties)), self.penalties.fixed),
        }
        for m in KEPT_MODULES:
            parts[m] = ((lambda pop, m=m: _module_terms(pop, cfg)[m]()),
                        (cfg.slope, cfg.references, getattr(cfg.signals, m)))
        return parts


@dataclass(frozen=True)
class _Fixed:
    """The kept parts of a scoring (:meth:`_Plan.parts`) for some users, by name
    (``offsets`` None: every offset is zero)."""

    parts: dict[str, np.ndarray | None]

    def rows(self, start: int, stop: int) -> _Fixed:
        return _Fixed({k: None if v is None else v[start:stop] for k, v in self.parts.items()})

    @classmethod
    def computed(cls, pop: Population, plan: _Plan) -> _Fixed:
        """The parts for ``pop`` (a block of users), computed."""
        return cls({k: None if p is None else p[0](pop) for k, p in plan.parts().items()})


#: The kept parts of each population's scoring: part -> (the arrays it read, the scenario's
#: parameters it read, its values). Weak: a population's parts go with it.
_KEPT: weakref.WeakKeyDictionary[Population, dict[str, tuple]] = weakref.WeakKeyDictionary()


def _kept(pop: Population, plan: _Plan) -> _Fixed:
    """The fixed parts of everyone's scoring, kept for ``pop``: a part is reused while the
    arrays it reads are the same arrays and the scenario's parameters it reads are equal;
    otherwise it is computed again, block by block, in its place."""
    kept = _KEPT.setdefault(pop, {})
    out = {}
    for name, part in plan.parts().items():
        if part is None:
            out[name] = None
            continue
        compute, params = part
        inputs = tuple(getattr(pop, a) for a in FIXED_INPUTS[name])
        old = kept.pop(name, None)  # a stale part is freed before its successor is made
        if (old is not None and old[1] == params
                and all(a is b for a, b in zip(old[0], inputs, strict=True))):
            kept[name] = old
            out[name] = old[2]
            continue
        del old
        first = compute(pop.rows(0, BLOCK))
        values = np.empty(pop.n, dtype=first.dtype)
        values[:BLOCK] = first
        del first
        for a in range(BLOCK, pop.n, BLOCK):
            values[a:a + BLOCK] = compute(pop.rows(a, a + BLOCK))
        kept[name] = (inputs, params, values)
        out[name] = values
    return _Fixed(out)


def evaluate(pop: Population, scenario: Scenario, cutoff: float | None = None,
             keep: bool = True, structural: bool = False) -> Evaluation:
    """Score everyone and decide eligibility (``cutoff`` overrides the scenario's), block by
    block of :data:`BLOCK` users (each user's score depends on that user alone).

    The parts that depend only on what never changes during a run (:data:`FIXED_INPUTS`)
    are kept for ``pop`` and reused by its next scorings (about half the work). A caller
    that changes one of those arrays in place passes ``keep=False``: every part is
    computed afresh and nothing is kept (what was kept for ``pop`` is dropped).

    ``structural`` also gives the structural score (:func:`sim.model.risk.structural_score`)
    from the same module scores: the score of :func:`without_offsets` less the other
    indicators, the same sums as scoring that scenario.
    """
    n = pop.n
    plan = _Plan.of(scenario)
    if keep:
        fixed = _kept(pop, plan)
    else:
        _KEPT.pop(pop, None)
    plain = None
    if structural:
        tables = _offset_tables(without_offsets(scenario))
        plain = tables if any(t.any() for t in tables) else ()  # (): every offset zero
    score, value = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    reasons, eligible = np.empty(n, dtype=np.uint16), np.empty(n, dtype=bool)
    structure = np.empty(n, dtype=np.float32) if structural else None
    for a in range(0, n, BLOCK):
        at = slice(a, a + BLOCK)
        block = pop.rows(a, a + BLOCK)
        parts = fixed.rows(a, a + BLOCK) if keep else _Fixed.computed(block, plan)
        st = _evaluate(block, plan, parts, cutoff, (score[at], value[at], reasons[at]), plain)
        np.equal(reasons[at], 0, out=eligible[at])
        if structural:
            structure[at] = st
    return Evaluation(score, value, eligible, reasons, structure)


def _evaluate(pop: Population, plan: _Plan, fixed: _Fixed, cutoff: float | None,
              out: tuple[np.ndarray, np.ndarray, np.ndarray],
              plain: tuple[np.ndarray, ...] | None = None) -> np.ndarray | None:
    """Score, value score and reasons of one block of users, with its ``fixed`` parts, into
    ``out`` (views of the whole arrays); returns (with ``plain``, the offset tables of the
    scenario without offsets) the structural score."""
    scenario = plan.scenario
    cfg = scenario.scoring
    weights = scenario.rollout.value_weights
    score, value, reasons = out
    offsets = fixed.parts["offsets"]
    if offsets is None:
        value.fill(0.0)
    else:
        np.copyto(value, offsets)
    # The value score ranks users for tier-first batches: what they are worth to the bank
    # (the rollout's chosen modules) in the segments the bank prefers (the same offsets).
    # One module at a time, added to both sums in place: no module is kept. The score
    # starts at the first product (``0 + w x`` is ``w x``: weights and module scores are
    # never negative).
    t = np.empty(pop.n, dtype=np.float32)
    terms = _module_terms(pop, cfg)
    for i, m in enumerate(MODULES):
        x = fixed.parts[m] if m in KEPT_MODULES else terms[m]()
        if i == 0:
            np.multiply(x, cfg.weights[m], out=score)
        else:
            np.multiply(x, cfg.weights[m], out=t)
            score += t
        if m in weights:
            np.multiply(x, weights[m], out=t)
            value += t
        del x
    penalty, hard = _penalties(pop, plan.penalties, fixed.parts["flags"])
    structure = None
    if plain is not None:  # the same steps from the module sum, with the plain offsets
        structure = score.copy()
        if plain:
            structure += _offsets(pop, plain)
        structure -= penalty
        structure += pop.other_indicators
        if pop.score_adjust is not None:
            structure += pop.score_adjust
        structure -= pop.other_indicators
    if offsets is not None:
        score += offsets
    score -= penalty
    score += pop.other_indicators
    if pop.score_adjust is not None:  # repayment behaviour: overdue episodes, early repayment
        score += pop.score_adjust
    np.copyto(reasons, fixed.parts["reasons"])
    _flag_changing(reasons, pop, scenario)
    if hard is not None:
        reasons |= hard * np.uint16(REASONS["hard_cutoff"])
    limit = cfg.cutoff if cutoff is None else cutoff
    reasons |= (score < limit) * np.uint16(REASONS["score_below_cutoff"])
    return structure
