"""The simulated population: one row per user, one NumPy array per attribute.

Every process of the engine reads and updates these arrays in bulk; there is no per-user
object. Categorical attributes are small integer codes into :attr:`Population.labels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from statistics import NormalDist

import numpy as np

from sim.scenario import DIMENSIONS, MAX_BOUND_CARDS, PopulationSpec, Release, Scenario  # noqa: F401 (re-exported)

#: The attributes no step of a run writes after synthesis (a test walks ``sim/`` to hold
#: it): what is computed from them alone (score offsets and fixed preconditions, segment
#: codes) may be kept for the whole run.
FIXED = frozenset({
    "archetype", "region", "account_class", "device_grade", "os", "data_sharing",
    "real_name_card", "past_default", "device_closed", "risky_social_graph", "restricted",
    "unknown_sources", "bound_cards", "biometric", "credit_transactions", "contacts",
    "social_quality", "income", "debt_to_income", "utility_payer", "offline_share",
    "night_share", "spend_volatility", "laggard", "visibility_draw", "hazard",
})


@dataclass(eq=False)
class Population:
    """A structure of arrays. ``labels[dim][code]`` names a categorical code."""

    labels: dict[str, tuple[str, ...]]
    weight: float
    # categorical codes
    archetype: np.ndarray
    region: np.ndarray
    account_class: np.ndarray  # 0 = class II, 1 = class III
    device_grade: np.ndarray
    os: np.ndarray
    data_sharing: np.ndarray
    version: np.ndarray
    # verification and hard preconditions
    real_name_card: np.ndarray
    past_default: np.ndarray
    id_expired_months: np.ndarray  # months since the ID card expired; -1 when valid
    device_closed: np.ndarray
    risky_social_graph: np.ndarray
    unknown_sources: np.ndarray
    bound_cards: np.ndarray
    biometric: np.ndarray
    credit_transactions: np.ndarray
    # behaviour
    account_age_months: np.ndarray
    credit_history_years: np.ndarray
    payments_per_month: np.ndarray
    monthly_spend: np.ndarray
    wealth_days: np.ndarray
    wealth_balance: np.ndarray
    contacts: np.ndarray
    social_quality: np.ndarray
    income: np.ndarray
    debt_to_income: np.ndarray
    utility_payer: np.ndarray
    offline_share: np.ndarray
    night_share: np.ndarray
    spend_volatility: np.ndarray
    device_switches: np.ndarray
    dormant: np.ndarray
    awakened_months: np.ndarray  # months left of the "sleeping then awakened" pattern
    laggard: np.ndarray  # never upgrades the client
    visibility_draw: np.ndarray  # stable U(0,1): entry visible when below the version's rate
    other_indicators: np.ndarray  # the score's component from indicators not modelled singly
    # latent truth the bank does not see
    hazard: np.ndarray  # base monthly default hazard
    # the bank's view and the rollout's state
    score: np.ndarray = field(default=None)
    value: np.ndarray = field(default=None)
    eligible: np.ndarray = field(default=None)
    reasons: np.ndarray = field(default=None)
    invited: np.ndarray = field(default=None)
    vintage: np.ndarray = field(default=None)  # batch number of the first invitation; -1 none
    closed: np.ndarray = field(default=None)  # access closed for good (default, R3)
    hidden: np.ndarray = field(default=None)  # entry hidden by a risk level (R1, R2)
    score_adjust: np.ndarray = field(default=None)  # points from repayment behaviour
    # in an excluded industry or an anti-fraud hot-spot of the region (never eligible)
    restricted: np.ndarray = field(default=None)

    @property
    def n(self) -> int:
        return int(self.archetype.shape[0])

    def rows(self, start: int, stop: int) -> Population:
        """Users ``start..stop-1`` as a population of views of these arrays (no copy), for
        steps that work block by block."""
        view = object.__new__(type(self))
        # the instance's attributes, arrays sliced: dataclasses.replace would run __init__
        # over its fifty fields (0.1 ms; 700 blocks a run at a million users)
        view.__dict__.update({name: v[start:stop] if isinstance(v, np.ndarray) else v
                              for name, v in vars(self).items()})
        return view

    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(
            getattr(self, f.name).nbytes
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        )


def _pick(rng: np.random.Generator, shares, draw: np.ndarray) -> np.ndarray:
    """Categorical codes drawn with the given shares (int8), one uniform a user into ``draw``.

    The same codes as ``rng.choice(len(shares), size=n, p=shares / sum)``, which draws
    ``rng.random(n)`` and bisects its cumulative shares, but counted one threshold at a time
    on the small codes: a bisection of a million uniforms costs four times as much.
    """
    p = np.asarray(shares, dtype=float)
    if not (np.all(p >= 0) and p.sum() > 0):
        raise ValueError(f"shares must be non-negative with a positive sum, got {shares}")
    p = p / p.sum()
    cdf = p.cumsum()
    cdf /= cdf[-1]  # the last is 1.0 exactly, above every uniform: never counted
    return _count_below(rng.random(out=draw), cdf[:-1])


def _count_below(u: np.ndarray, thresholds) -> np.ndarray:
    """How many of ``thresholds`` each ``u`` is at or above (int8): with sorted thresholds,
    ``searchsorted(thresholds, u, side="right")``."""
    codes = np.zeros(u.shape[0], dtype=np.int8)
    for t in thresholds:
        codes += u >= t
    return codes


def tilted_shares(arch_shares, shares, odds, iterations: int = 200) -> np.ndarray:
    """Per-archetype category shares with the given odds whose mixture keeps ``shares``.

    ``odds[a, k]`` says how much more likely archetype ``a`` is to fall in category ``k``
    than the population as a whole; iterative proportional fitting (Sinkhorn scaling) finds
    the per-category factors that make ``sum_a arch_shares[a] * p[a, k] == shares[k]``.
    """
    pi = np.asarray(arch_shares, dtype=float)
    s = np.asarray(shares, dtype=float)
    odds = np.asarray(odds, dtype=float)
    c = s.copy()
    for _ in range(iterations):
        p = odds * c
        p /= p.sum(axis=1, keepdims=True)
        mix = pi @ p
        c *= np.divide(s, mix, out=np.zeros_like(s), where=mix > 0)
    p = odds * c
    return p / p.sum(axis=1, keepdims=True)


def _gather(table, codes: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``table[codes]`` as float64 into ``out``. ``codes`` are intp: a smaller code dtype is
    converted to intp on every call (an 8-byte copy of the codes)."""
    return np.take(np.asarray(table, dtype=np.float64), codes, out=out, mode="clip")


def _pick_by(rng: np.random.Generator, group: np.ndarray, table: np.ndarray,
             draw: np.ndarray, work: np.ndarray) -> np.ndarray:
    """Categorical codes drawn row by row from ``table[group]`` (int8; ``group`` intp), one
    uniform a user into ``draw``, each row's thresholds gathered into ``work`` in turn (no
    users x categories array)."""
    cdf = np.cumsum(table, axis=1)
    u = rng.random(out=draw)
    codes = np.zeros(group.shape[0], dtype=np.int8)
    for column in cdf.T[:-1]:  # the last threshold is 1.0: never reached
        codes += u >= _gather(column, group, work)
    return codes


def _lognormal(rng: np.random.Generator, median, sigma: float,
               draw: np.ndarray) -> np.ndarray:
    """``median * exp(sigma * z)`` for standard normals ``z`` drawn into ``draw`` (float32,
    rounded once from the float64 product)."""
    z = rng.standard_normal(out=draw)
    z *= sigma
    np.exp(z, out=z)
    return _times32(z, median)


def _times32(x: np.ndarray, factor) -> np.ndarray:
    """``(x * factor).astype(float32)`` without the float64 product array."""
    return np.multiply(x, factor, out=np.empty(x.shape[0], dtype=np.float32))


def _unit_gamma(rng: np.random.Generator, shape: float, n: int) -> np.ndarray:
    """Gamma draws with mean 1 (spread around an archetype's mean; larger shape, tighter)."""
    return rng.gamma(shape, 1.0 / shape, n)


def _class_iii(rng: np.random.Generator, shares, group: np.ndarray, activity: np.ndarray,
               rho: float, draw: np.ndarray) -> np.ndarray:
    """Class III flags with each group's share, correlated ``rho`` with a standard-normal activity.

    A Gaussian copula: the flag is set where ``rho * activity + sqrt(1 - rho^2) * noise``
    exceeds the normal quantile that leaves the group's share above it, so each archetype
    keeps its share of class III whatever ``rho`` is. ``activity`` (float64) is overwritten
    by the latent; ``group`` is intp; the noise is drawn into ``draw``.
    """
    def cut(share: float) -> float:
        return -np.inf if share >= 1 else np.inf if share <= 0 else NormalDist().inv_cdf(1 - share)

    latent = np.multiply(activity, rho, out=activity)
    noise = rng.standard_normal(out=draw)
    noise *= np.sqrt(1.0 - rho * rho)
    latent += noise
    return latent > _gather([cut(s) for s in shares], group, draw)


def _clip01(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to [0, 1] in place, as float32."""
    return np.clip(x, 0.0, 1.0, out=x).astype(np.float32)


def initial_versions(release: Release, start, rng: np.random.Generator,
                     draw: np.ndarray) -> np.ndarray:
    """Client version codes at the start, from the shares of versions already released (one
    uniform a user, drawn into ``draw``)."""
    shares = [v.share if v.released <= start else 0.0 for v in release.versions]
    return _pick(rng, shares, draw)


def synthesize(scenario: Scenario, rng: np.random.Generator) -> Population:
    """Draw a population from the scenario's distributions.

    The draw depends only on ``scenario.population``, ``scenario.release``, ``scenario.risk``
    and ``rng``, so strategies that differ elsewhere share one population (common random
    numbers).

    The generator's calls, their order and sizes fix the population (and its calibration):
    each attribute below is one call, in this order. Uniform and normal draws land in one
    float64 work array and per-archetype parameters in another, each reused, and every
    step finishes in place, so a million users cost their draws and few passes more.
    """
    spec: PopulationSpec = scenario.population
    n = spec.users
    arch = list(spec.archetypes.values())
    draw, work = np.empty(n), np.empty(n)  # reused below: never returned
    archetype = _pick(rng, [a.share for a in arch], draw)
    at = archetype.astype(np.intp)  # gathers index with intp

    def per_arch(attr: str) -> np.ndarray:
        """The archetypes' ``attr`` for each user (float64, in ``work``)."""
        return _gather([getattr(a, attr) for a in arch], at, work)

    def bern(p) -> np.ndarray:
        return rng.random(out=draw) < p

    def bern_by_code(table, codes: np.ndarray) -> np.ndarray:
        """A flag with chance ``table[code]``: ``bern(table[codes])`` without the gather, one
        category at a time (a chance of 0 is never drawn below, so it costs nothing)."""
        u = rng.random(out=draw)
        hit = np.zeros(n, dtype=bool)
        for code, p in enumerate(table):
            if p > 0:
                hit |= (codes == code) & (u < p)
        return hit

    def by_class(k: str) -> np.ndarray:
        """The account classes' ``k`` for each user (float64, in ``work``)."""
        return _gather([getattr(classes[c], k) for c in ("II", "III")],
                       class_iii.view(np.uint8), work)

    def pick(dim: str) -> np.ndarray:
        """A categorical attribute, tilted by archetype where the scenario says so."""
        cats = getattr(spec, dim)
        shares = [c.share for c in cats.values()]
        if not any(a.tilts.get(dim) for a in arch):
            return _pick(rng, shares, draw)
        odds = [[a.tilts.get(dim, {}).get(k, 1.0) for k in cats] for a in arch]
        return _pick_by(rng, at, tilted_shares([a.share for a in arch], shares, odds), draw,
                        work)

    spread, var = spec.log_spread, spec.variation
    pay_z, wealth_z = rng.standard_normal(n), rng.standard_normal(n)
    activity = np.add(pay_z, wealth_z, out=work)
    activity /= np.sqrt(2.0)
    class_iii = _class_iii(rng, [a.class_iii for a in arch], at, activity,
                           var.class_iii_activity, draw)
    classes = spec.account_classes
    wealth_holder = bern(per_arch("wealth_holder"))
    os_specs = list(spec.os.values())
    os_code = pick("os")
    region = pick("regions")
    device_grade = pick("device_grades")
    data_sharing = pick("data_sharing")
    version = initial_versions(scenario.release, scenario.start, rng, draw)
    real_name_card = bern(spec.real_name_card)
    real_name_card |= class_iii  # class III implies it
    past_default = bern(spec.past_default)
    id_expired = bern(spec.id_expired)
    id_expired_months = np.where(
        id_expired, rng.integers(0, var.id_expired_max_months, n).astype(np.int16),
        np.int16(-1))
    device_closed = bern(spec.device_closed)
    risky_social_graph = bern(spec.risky_social_graph)
    unknown_sources = bern_by_code([o.unknown_sources for o in os_specs], os_code)
    bound_cards = rng.poisson(by_class("bound_cards"))
    bound_cards = np.minimum(bound_cards, MAX_BOUND_CARDS, out=bound_cards).astype(np.int8)
    biometric = bern(by_class("biometric"))
    credit_transactions = bern(by_class("credit_transactions"))
    account_age = _lognormal(rng, spec.account_age_months.median,
                             spec.account_age_months.sigma, draw)
    account_age = np.minimum(account_age, var.account_age_max_months, out=account_age)
    credit_history_years = _times32(_unit_gamma(rng, var.credit_history_shape, n),
                                    per_arch("credit_history_years"))
    pay_z *= spread
    payments_per_month = _times32(np.exp(pay_z, out=pay_z), per_arch("payments_per_month"))
    monthly_spend = _lognormal(rng, per_arch("monthly_spend"), spread, draw)
    wealth_z *= spread
    wealth_days = np.exp(wealth_z, out=wealth_z)
    wealth_days *= per_arch("wealth_days")
    wealth_days = np.minimum(wealth_days, 365, out=wealth_days).astype(np.float32)
    # none for non-holders: times 0 or 1, exact for these finite positive amounts and many
    # times faster than a select on a random mask
    wealth_days *= wealth_holder
    wealth_balance = _lognormal(rng, per_arch("wealth_balance"), 2 * spread, draw)
    wealth_balance *= wealth_holder
    contacts = _lognormal(rng, per_arch("contacts"), spread, draw)
    social_quality = _normal_around(rng, per_arch("social_quality"), var.social_quality_sd,
                                    draw)
    income = _lognormal(rng, per_arch("income"), spread, draw)
    debt_to_income = _unit_gamma(rng, var.debt_to_income_shape, n)
    debt_to_income *= per_arch("debt_to_income")
    debt_to_income = np.maximum(debt_to_income, 0, out=debt_to_income).astype(np.float32)
    utility_payer = bern(per_arch("utility_payer"))
    offline_share = _normal_around(rng, per_arch("offline_share"), var.offline_share_sd, draw)
    night_share = _unit_gamma(rng, var.night_share_shape, n)
    night_share *= per_arch("night_share")
    night_share = _clip01(night_share)
    spend_volatility = _lognormal(rng, per_arch("spend_volatility"), spread, draw)
    device_switches = rng.poisson(scenario.behaviour.device_switch_rate, n).astype(np.int8)
    dormant = bern(spec.dormant)
    laggard = bern(scenario.release.laggards)
    visibility_draw = rng.random(n, dtype=np.float32)
    other_indicators = _times32(rng.standard_normal(out=draw),
                                scenario.scoring.other_indicators.sd)
    # drawn last, so the draws above do not depend on whether a region restricts anyone
    restricted = bern_by_code([r.restricted for r in spec.regions.values()], region)

    pop = Population(
        labels={
            "archetype": tuple(spec.archetypes),
            "region": tuple(spec.regions),
            "account_class": ("II", "III"),
            "device_grade": tuple(spec.device_grades),
            "os": tuple(spec.os),
            "data_sharing": tuple(spec.data_sharing),
            "version": tuple(v.name for v in scenario.release.versions),
        },
        weight=float(spec.weight),
        archetype=archetype,
        region=region,
        account_class=class_iii.astype(np.int8),
        device_grade=device_grade,
        os=os_code,
        data_sharing=data_sharing,
        version=version,
        real_name_card=real_name_card,
        past_default=past_default,
        id_expired_months=id_expired_months,
        device_closed=device_closed,
        risky_social_graph=risky_social_graph,
        unknown_sources=unknown_sources,
        bound_cards=bound_cards,
        biometric=biometric,
        credit_transactions=credit_transactions,
        account_age_months=account_age.astype(np.int16),
        credit_history_years=credit_history_years,
        payments_per_month=payments_per_month,
        monthly_spend=monthly_spend,
        wealth_days=wealth_days,
        wealth_balance=wealth_balance,
        contacts=contacts,
        social_quality=social_quality,
        income=income,
        debt_to_income=debt_to_income,
        utility_payer=utility_payer,
        offline_share=offline_share,
        night_share=night_share,
        spend_volatility=spend_volatility,
        device_switches=device_switches,
        dormant=dormant,
        awakened_months=np.zeros(n, dtype=np.int8),
        laggard=laggard,
        visibility_draw=visibility_draw,
        other_indicators=other_indicators,
        hazard=np.zeros(n, dtype=np.float32),
    )
    pop.invited = np.zeros(n, dtype=bool)
    pop.vintage = np.full(n, -1, dtype=np.int16)
    pop.closed = np.zeros(n, dtype=bool)
    pop.hidden = np.zeros(n, dtype=bool)
    pop.score_adjust = np.zeros(n, dtype=np.float32)
    pop.restricted = restricted
    return pop


def _normal_around(rng: np.random.Generator, mean: np.ndarray, sd: float,
                   draw: np.ndarray) -> np.ndarray:
    """``mean + sd * z`` for standard normals ``z`` drawn into ``draw``, clipped to [0, 1]
    (float32)."""
    z = rng.standard_normal(out=draw)
    z *= sd
    z += mean
    return _clip01(z)


def assign_latent_risk(pop: Population, scenario: Scenario, score: np.ndarray,
                       rng: np.random.Generator) -> None:
    """Give every user a latent risk correlated with (not equal to) a score.

    ``risk = -rho * z(score) + sqrt(1 - rho^2) * noise + archetype shift``; the monthly hazard
    is lognormal in the risk and scaled so its population mean is ``risk.monthly_hazard``.
    """
    spec = scenario.risk
    rho = spec.score_correlation
    z = score - score.mean()
    z /= max(float(score.std()), 1e-9)
    z *= -rho
    shift = np.array([a.risk_shift for a in scenario.population.archetypes.values()])
    # each step in place, in the formula's order of operations (the same hazards)
    risk = rng.standard_normal(pop.n)
    risk *= np.sqrt(1 - rho * rho)
    risk += z
    risk += shift[pop.archetype]
    risk -= risk.mean()
    risk *= spec.dispersion
    rel = np.exp(risk, out=risk)
    mean = rel.mean()
    rel *= spec.monthly_hazard
    hazard = np.divide(rel, mean, out=rel)
    pop.hazard = hazard.astype(np.float32)  # checked by the engine, never clipped


#: Users per chunk of the AUC's pass over the sorted scores.
AUC_CHUNK = 65_536


def weighted_auc(score: np.ndarray, bad_prob: np.ndarray) -> float:
    """AUC of ``score`` (higher = better) against an expected outcome, weight p bad, 1-p good.

    Exact in expectation: each user counts as ``p`` of a bad and ``1 - p`` of a good, so
    no outcome needs to be drawn. Ties count one half.

    One pass in score order, in chunks, counts each good against the bad mass before it;
    the few tied users are then corrected to count half of their group's pairs. Beyond the
    sort order the pass holds one flag a user, so the AUC of a large run stays small.
    """
    n = score.size
    bad_total = float(np.sum(bad_prob, dtype=np.float64))
    good_total = n - bad_total
    if n == 0 or bad_total <= 0 or good_total <= 0:
        return float("nan")
    # ties are corrected to half below, so their order is free (NumPy's default sort may
    # order them by CPU: the AUC then differs in its last bits, never in the six printed)
    order = np.argsort(score)
    tied = np.zeros(n, dtype=bool)  # equal to the previous user in score order
    wins, below, previous = 0.0, 0.0, None
    for a in range(0, n, AUC_CHUNK):
        at = order[a:a + AUC_CHUNK]
        s = score[at]
        bad = bad_prob[at].astype(np.float64)
        before = np.cumsum(bad)
        before -= 0.5 * bad  # a user's own p x (1 - p) is a tie with itself: half
        before += below
        # summed, not np.dot: OpenBLAS threads a dot this long, and its idle threads spin
        # for a while after, taking a core from the next run (or the other pool worker)
        before *= 1.0 - bad
        wins += float(before.sum())
        below += float(bad.sum())
        tie = tied[a:a + at.size]
        tie[1:] = s[1:] == s[:-1]
        tie[0] = previous is not None and s[0] == previous
        previous = s[-1]
    # a tie group counted each good against the bads before it in the group (and half of
    # its own); it should count half of every good x bad pair of the group
    ties = np.flatnonzero(tied)
    if ties.size:
        # positions in score order tied to their previous or next user (np.unique of the
        # two would hash them: 17 ms at a million users)
        members = np.flatnonzero(tied | np.append(tied[1:], False))
        start = np.r_[True, ~tied[members[1:]]]  # a member not tied to its previous starts
        group = np.cumsum(start) - 1
        bad = bad_prob[order[members]].astype(np.float64)
        good = 1.0 - bad
        first = np.flatnonzero(start)
        bad_before = np.cumsum(bad) - bad
        bad_before -= (np.cumsum(bad) - bad)[first][group]  # within the group only
        counted = np.bincount(group, weights=good * (bad_before + 0.5 * bad))
        half = 0.5 * np.bincount(group, weights=good) * np.bincount(group, weights=bad)
        wins += float(np.sum(half - counted))
    return wins / (bad_total * good_total)
