"""The simulated population: one row per user, one NumPy array per attribute.

Every process of the engine reads and updates these arrays in bulk; there is no per-user
object. Categorical attributes are small integer codes into :attr:`Population.labels`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from statistics import NormalDist

import numpy as np

from sim.scenario import DIMENSIONS, MAX_BOUND_CARDS, PopulationSpec, Release, Scenario  # noqa: F401 (re-exported)


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
        return replace(self, **{f.name: v[start:stop] for f in fields(self)
                                if isinstance(v := getattr(self, f.name), np.ndarray)})

    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(
            getattr(self, f.name).nbytes
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        )


def _pick(rng: np.random.Generator, shares, n: int) -> np.ndarray:
    """Categorical codes drawn with the given shares (int8)."""
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


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


def _pick_by(rng: np.random.Generator, group: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Categorical codes drawn row by row from ``table[group]`` (int8)."""
    cdf = np.cumsum(table, axis=1)
    cdf[:, -1] = 1.0
    u = rng.random(group.shape[0])
    codes = np.zeros(group.shape[0], dtype=np.int8)
    for column in cdf.T:  # one threshold at a time: no (users x categories) array
        codes += u >= column[group]
    return codes


def _lognormal(rng, median: np.ndarray, sigma: float, n: int) -> np.ndarray:
    return (median * np.exp(sigma * rng.standard_normal(n))).astype(np.float32)


def _unit_gamma(rng: np.random.Generator, shape: float, n: int) -> np.ndarray:
    """Gamma draws with mean 1 (spread around an archetype's mean; larger shape, tighter)."""
    return rng.gamma(shape, 1.0 / shape, n)


def _class_iii(rng: np.random.Generator, shares, group: np.ndarray, activity: np.ndarray,
               rho: float) -> np.ndarray:
    """Class III flags with each group's share, correlated ``rho`` with a standard-normal activity.

    A Gaussian copula: the flag is set where ``rho * activity + sqrt(1 - rho^2) * noise``
    exceeds the normal quantile that leaves the group's share above it, so each archetype
    keeps its share of class III whatever ``rho`` is.
    """
    def cut(share: float) -> float:
        return -np.inf if share >= 1 else np.inf if share <= 0 else NormalDist().inv_cdf(1 - share)

    latent = rho * activity + np.sqrt(1.0 - rho * rho) * rng.standard_normal(activity.shape[0])
    return latent > np.array([cut(s) for s in shares])[group]


def _clip01(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def initial_versions(release: Release, start, rng: np.random.Generator, n: int) -> np.ndarray:
    """Client version codes at the start, from the shares of versions already released."""
    shares = [v.share if v.released <= start else 0.0 for v in release.versions]
    return _pick(rng, shares, n)


def synthesize(scenario: Scenario, rng: np.random.Generator) -> Population:
    """Draw a population from the scenario's distributions.

    The draw depends only on ``scenario.population``, ``scenario.release``, ``scenario.risk``
    and ``rng``, so strategies that differ elsewhere share one population (common random
    numbers).
    """
    spec: PopulationSpec = scenario.population
    n = spec.users
    arch = list(spec.archetypes.values())
    archetype = _pick(rng, [a.share for a in arch], n)

    def per_arch(attr: str) -> np.ndarray:
        return np.array([getattr(a, attr) for a in arch], dtype=np.float64)[archetype]

    def bern(p) -> np.ndarray:
        return rng.random(n) < p

    def pick(dim: str) -> np.ndarray:
        """A categorical attribute, tilted by archetype where the scenario says so."""
        cats = getattr(spec, dim)
        shares = [c.share for c in cats.values()]
        if not any(a.tilts.get(dim) for a in arch):
            return _pick(rng, shares, n)
        odds = [[a.tilts.get(dim, {}).get(k, 1.0) for k in cats] for a in arch]
        return _pick_by(rng, archetype, tilted_shares([a.share for a in arch], shares, odds))

    spread, var = spec.log_spread, spec.variation
    pay_z, wealth_z = rng.standard_normal(n), rng.standard_normal(n)
    class_iii = _class_iii(rng, [a.class_iii for a in arch], archetype,
                           (pay_z + wealth_z) / np.sqrt(2.0), var.class_iii_activity)
    classes = spec.account_classes
    cls_attr = {k: np.where(class_iii, getattr(classes["III"], k), getattr(classes["II"], k))
                for k in ("bound_cards", "biometric", "credit_transactions")}
    wealth_holder = bern(per_arch("wealth_holder"))
    os_specs = list(spec.os.values())
    os_code = pick("os")
    unknown = np.array([o.unknown_sources for o in os_specs])[os_code]

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
        region=pick("regions"),
        account_class=class_iii.astype(np.int8),
        device_grade=pick("device_grades"),
        os=os_code,
        data_sharing=pick("data_sharing"),
        version=initial_versions(scenario.release, scenario.start, rng, n),
        real_name_card=class_iii | bern(spec.real_name_card),  # class III implies it
        past_default=bern(spec.past_default),
        id_expired_months=np.where(
            bern(spec.id_expired), rng.integers(0, var.id_expired_max_months, n), -1
        ).astype(np.int16),
        device_closed=bern(spec.device_closed),
        risky_social_graph=bern(spec.risky_social_graph),
        unknown_sources=bern(unknown),
        bound_cards=rng.poisson(cls_attr["bound_cards"]).clip(0, MAX_BOUND_CARDS).astype(np.int8),
        biometric=bern(cls_attr["biometric"]),
        credit_transactions=bern(cls_attr["credit_transactions"]),
        account_age_months=np.minimum(
            _lognormal(rng, spec.account_age_months.median, spec.account_age_months.sigma, n),
            var.account_age_max_months,
        ).astype(np.int16),
        credit_history_years=(
            per_arch("credit_history_years") * _unit_gamma(rng, var.credit_history_shape, n)
        ).astype(np.float32),
        payments_per_month=(per_arch("payments_per_month") * np.exp(spread * pay_z)
                            ).astype(np.float32),
        monthly_spend=_lognormal(rng, per_arch("monthly_spend"), spread, n),
        wealth_days=np.where(
            wealth_holder,
            np.minimum(per_arch("wealth_days") * np.exp(spread * wealth_z), 365),
            0,
        ).astype(np.float32),
        wealth_balance=np.where(
            wealth_holder, _lognormal(rng, per_arch("wealth_balance"), 2 * spread, n), 0
        ).astype(np.float32),
        contacts=_lognormal(rng, per_arch("contacts"), spread, n),
        social_quality=_clip01(
            per_arch("social_quality") + var.social_quality_sd * rng.standard_normal(n)
        ),
        income=_lognormal(rng, per_arch("income"), spread, n),
        debt_to_income=np.maximum(
            per_arch("debt_to_income") * _unit_gamma(rng, var.debt_to_income_shape, n), 0
        ).astype(np.float32),
        utility_payer=bern(per_arch("utility_payer")),
        offline_share=_clip01(
            per_arch("offline_share") + var.offline_share_sd * rng.standard_normal(n)
        ),
        night_share=_clip01(per_arch("night_share") * _unit_gamma(rng, var.night_share_shape, n)),
        spend_volatility=_lognormal(rng, per_arch("spend_volatility"), spread, n),
        device_switches=rng.poisson(scenario.behaviour.device_switch_rate, n).astype(np.int8),
        dormant=bern(spec.dormant),
        awakened_months=np.zeros(n, dtype=np.int8),
        laggard=bern(scenario.release.laggards),
        visibility_draw=rng.random(n, dtype=np.float32),
        other_indicators=(
            scenario.scoring.other_indicators.sd * rng.standard_normal(n)
        ).astype(np.float32),
        hazard=np.zeros(n, dtype=np.float32),
    )
    pop.invited = np.zeros(n, dtype=bool)
    pop.vintage = np.full(n, -1, dtype=np.int16)
    pop.closed = np.zeros(n, dtype=bool)
    pop.hidden = np.zeros(n, dtype=bool)
    pop.score_adjust = np.zeros(n, dtype=np.float32)
    # drawn last, so the draws above do not depend on whether a region restricts anyone
    restricted = np.array([r.restricted for r in spec.regions.values()])[pop.region]
    pop.restricted = bern(restricted)
    return pop


def assign_latent_risk(pop: Population, scenario: Scenario, score: np.ndarray,
                       rng: np.random.Generator) -> None:
    """Give every user a latent risk correlated with (not equal to) a score.

    ``risk = -rho * z(score) + sqrt(1 - rho^2) * noise + archetype shift``; the monthly hazard
    is lognormal in the risk and scaled so its population mean is ``risk.monthly_hazard``.
    """
    spec = scenario.risk
    rho = spec.score_correlation
    z = (score - score.mean()) / max(float(score.std()), 1e-9)
    shift = np.array([a.risk_shift for a in scenario.population.archetypes.values()])
    risk = -rho * z + np.sqrt(1 - rho * rho) * rng.standard_normal(pop.n) + shift[pop.archetype]
    rel = np.exp(spec.dispersion * (risk - risk.mean()))
    hazard = spec.monthly_hazard * rel / rel.mean()
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
    order = np.argsort(score)  # ties are corrected to half below: their order is free
    tied = np.zeros(n, dtype=bool)  # equal to the previous user in score order
    wins, below, previous = 0.0, 0.0, None
    for a in range(0, n, AUC_CHUNK):
        at = order[a:a + AUC_CHUNK]
        s = score[at]
        bad = bad_prob[at].astype(np.float64)
        before = np.cumsum(bad)
        before -= 0.5 * bad  # a user's own p x (1 - p) is a tie with itself: half
        before += below
        wins += float(np.dot(1.0 - bad, before))
        below += float(bad.sum())
        tie = tied[a:a + at.size]
        tie[1:] = s[1:] == s[:-1]
        tie[0] = previous is not None and s[0] == previous
        previous = s[-1]
    # a tie group counted each good against the bads before it in the group (and half of
    # its own); it should count half of every good x bad pair of the group
    ties = np.flatnonzero(tied)
    if ties.size:
        members = np.unique(np.concatenate([ties - 1, ties]))  # positions in score order
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
