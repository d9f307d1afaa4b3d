"""The credit line's life, month by month, in bulk over arrays.

Every invited user who can see the entry may open a line (activation); an open line is drawn,
accrues interest at its daily rate, is repaid, may miss payments and roll through the
delinquency buckets to default (90+ days past due) and charge-off. Money is held in int64
fen (1/100 CNY) per simulated user, so the month's balance identity

    opening + draws + interest - repayments - charge-offs = closing

holds exactly, to the fen, in the simulated book (and in the weighted book for whole-number
weights). Nothing here does I/O; every draw is per user, from
:class:`sim.model.streams.Streams` keyed by the month and the decision, so a user's draws are
the same whichever other users draw (common random numbers across strategies).

States (:data:`STATES`): current, 1-30, 31-60, 61-90 days past due, 90+ (the default) and
charged off. A month is one step: an account in 1-30 / 31-60 / 61-90 cures (pays its arrears
and returns to current) with the scenario's cure probability scaled by the user's latent risk,
``logistic(logit(cure[k]) - cure_elasticity x log(own hazard / mean hazard))``, or rolls one
bucket on (riskier users cure less, no chance reaches 1); a current
borrower with a bill misses it with probability ``hazard x macro / roll-through``, where the
roll-through is the user's chance of rolling from 1-30 all the way to 90+. So the monthly
default hazard of a borrower is exactly the latent ``pop.hazard`` times the macro factor, and
the cure probabilities only set how many missed payments come with each default. Interest is
not accrued on defaulted (90+) balances. A default closes access for good (through
:func:`sim.model.invites.close`).
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sim.model import invites, risk
from sim.model import streams as purposes
from sim.model.population import Population
from sim.model.streams import Streams
from sim.scenario import Credit, Scenario

FEN = 100  # fen per CNY
CURRENT, D1_30, D31_60, D61_90, DEFAULT, CHARGED_OFF = range(6)
STATES = ("current", "1-30", "31-60", "61-90", "90+", "charged_off")
#: Per-user cap bits: 3 per cap rule (amount, amount halved by region, income share).
CAP_KINDS = ("amount", "regional", "income")


@dataclass(eq=False)
class Book:
    """The credit lines: one row per simulated user (structure of arrays)."""

    opened: np.ndarray  # line opened (activated)
    open_month: np.ndarray  # month index of activation; -1 never
    limit: np.ndarray  # fen
    balance: np.ndarray  # fen
    rate: np.ndarray  # daily interest rate (float32: a few parts in 1e8)
    state: np.ndarray  # index into STATES
    missed: np.ndarray  # months past due (0 when current)
    frozen_until: np.ndarray  # day before which the limit is frozen (no draws, no raises)
    window_months: np.ndarray  # months in the current limit-review window
    window_on_time: np.ndarray  # of which paid on time
    minimum_streak: np.ndarray  # minimum-only payments in a row
    cum_draw: np.ndarray  # fen drawn since opening
    cum_loss: np.ndarray  # fen of net charge-off loss
    default_month: np.ndarray  # month index of the default; -1 never
    last_draw_month: np.ndarray  # month index of the last draw; -1 never
    cap_bound: np.ndarray  # bit 3*i+k: cap rule i of kind CAP_KINDS[k] ever held the limit
    #: the last month's draws were scaled down to fit under the capital limit: the book is at
    #: the limit (see :mod:`sim.model.capital`)
    capital_held: bool = False
    #: the cap rules in force when every live line was last held under them (cap_limits)
    caps_applied: tuple[int, ...] | None = None
    #: sorted scores of the users eligible at the last scoring, and (weakly) that scoring's
    #: score array: new lines rank against the bank's last scoring (_rank_pool)
    rank_pool: np.ndarray | None = None
    rank_pool_of: weakref.ref | None = None
    #: the users with a line, in index order (``np.flatnonzero(opened)``, kept by
    #: ``_open_lines``, the one place lines open: every month's steps and the recorder
    #: select among them; a book whose ``opened`` is set by hand has no lines here)
    lines: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.intp))

    @property
    def n(self) -> int:
        return int(self.balance.shape[0])


def new_book(n: int) -> Book:
    never = np.full(n, -1, dtype=np.int16)
    return Book(
        opened=np.zeros(n, dtype=bool),
        open_month=never.copy(),
        limit=np.zeros(n, dtype=np.int64),
        balance=np.zeros(n, dtype=np.int64),
        rate=np.zeros(n, dtype=np.float32),
        state=np.zeros(n, dtype=np.int8),
        missed=np.zeros(n, dtype=np.int8),
        frozen_until=np.zeros(n, dtype=np.int32),
        window_months=np.zeros(n, dtype=np.int8),
        window_on_time=np.zeros(n, dtype=np.int8),
        minimum_streak=np.zeros(n, dtype=np.int8),
        cum_draw=np.zeros(n, dtype=np.int64),
        cum_loss=np.zeros(n, dtype=np.int64),
        default_month=never.copy(),
        last_draw_month=never.copy(),
        cap_bound=np.zeros(n, dtype=np.uint32),
    )


# --------------------------------------------------------------------------- limits


def caps_for(pop: Population, scenario: Scenario, date: dt.date,
             users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-borrower cap in fen and the bit of the binding rule, for ``users`` (default all).

    Every rule in force on ``date`` applies (the tightest wins): its ``amount`` times the
    region's ``limit_multiplier`` and its ``income_share`` of annual income.
    """
    idx = np.arange(pop.n) if users is None else users
    mult = np.array([r.limit_multiplier for r in scenario.population.regions.values()])[
        pop.region[idx]]
    cap = np.full(idx.size, np.iinfo(np.int64).max, dtype=np.int64)
    bit = np.zeros(idx.size, dtype=np.uint32)
    for i, rule in enumerate(scenario.credit.limits.caps):
        if rule.start > date:
            continue
        if rule.amount is not None:
            amount = np.floor(rule.amount * mult * FEN).astype(np.int64)
            kind = np.where(mult < 1.0, 1, 0)
            tighter = amount < cap
            cap = np.where(tighter, amount, cap)
            bit = np.where(tighter, np.uint32(1) << (3 * i + kind).astype(np.uint32), bit)
        if rule.income_share is not None:
            income = np.floor(rule.income_share * 12.0 * pop.income[idx].astype(np.float64)
                              * FEN).astype(np.int64)
            tighter = income < cap
            cap = np.where(tighter, income, cap)
            bit = np.where(tighter, np.uint32(1 << (3 * i + 2)), bit)
    return cap, bit.astype(np.uint32)


def _apply_caps(book: Book, pop: Population, scenario: Scenario, date: dt.date,
                users: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Set ``users``' limits to ``wanted`` (fen) held under the caps; returns those bound."""
    cap, bit = caps_for(pop, scenario, date, users)
    bound = wanted > cap
    book.limit[users] = np.minimum(wanted, cap)
    book.cap_bound[users[bound]] |= bit[bound]
    return users[bound]


def _round_limit(cny: np.ndarray, step: float) -> np.ndarray:
    """Limits in whole steps of ``step`` CNY (at least one step), as fen."""
    steps = np.maximum(np.round(cny / step), 1.0)
    return (steps * step * FEN).astype(np.int64)


# --------------------------------------------------------------------------- risk


def cure_probabilities(pop: Population, scenario: Scenario,
                       users: np.ndarray | None = None) -> np.ndarray:
    """Cure chance from 1-30, 31-60, 61-90 per user: shape (users, 3)."""
    return np.stack(_cure_columns(pop, scenario, users), axis=1)


def _cure_columns(pop: Population, scenario: Scenario,
                  users: np.ndarray | None) -> list[np.ndarray]:
    """:func:`cure_probabilities`, one bucket's column at a time (no (users, 3) temporaries)."""
    return _cures_at(pop.hazard if users is None else pop.hazard[users], scenario)


def _cure_logits(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """The buckets' cure probabilities at the mean hazard and their logits (inside (0, 1))."""
    base = np.asarray(scenario.credit.delinquency.cure, dtype=np.float64)
    inner = np.clip(base, 1e-12, 1 - 1e-12)
    return base, np.log(inner / (1.0 - inner))


def _cures_at(hazard: np.ndarray, scenario: Scenario,
              logits: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
    """:func:`_cure_columns` of the users whose latent hazards are ``hazard``, given the
    scenario's :func:`_cure_logits` when the caller has them."""
    shift = -scenario.credit.delinquency.cure_elasticity * np.log(
        np.maximum(hazard.astype(np.float64), 1e-12) / scenario.risk.monthly_hazard)
    base, logit = _cure_logits(scenario) if logits is None else logits
    columns = []
    for k, b in enumerate(base):
        if b <= 0.0 or b >= 1.0:  # a cure probability of exactly 0 or 1 stays exact
            columns.append(np.full(shift.size, 0.0 if b <= 0.0 else 1.0))
            continue
        cure = np.add(shift, logit[k])
        np.negative(cure, out=cure)
        np.exp(cure, out=cure)
        cure += 1.0
        columns.append(np.divide(1.0, cure, out=cure))
    return columns


def roll_through(cures: list[np.ndarray]) -> np.ndarray:
    """Chance of rolling from 1-30 days past due through to 90+, from the three buckets'
    cure columns (:func:`_cure_columns`): each bucket's roll, from the last one back."""
    c0, c1, c2 = cures
    return (1.0 - c0) * ((1.0 - c1) * ((1.0 - c2) * 1.0))


#: Borrowers per block of :func:`entry_probability`: its dozen working arrays stay in the
#: core's cache (a third faster than whole-array passes at a million users).
ENTRY_BLOCK = 16384


def entry_probability(pop: Population, scenario: Scenario, macro: float,
                      users: np.ndarray | None = None,
                      mob: np.ndarray | None = None) -> np.ndarray:
    """Chance that a current borrower misses this month's payment: the default hazard
    (:func:`sim.model.risk.hazard`: individual x lifecycle x macro) of the months on book
    the default would land in (``mob + ROLL_MONTHS``), over the user's roll-through from
    1-30 to 90+. Without ``mob`` the lifecycle is left out (multiplier 1)."""
    individual = pop.hazard if users is None else pop.hazard[users]
    logits = _cure_logits(scenario)
    mob = None if mob is None else np.asarray(mob, dtype=np.int64)
    # risk.hazard block by block: risk.lifecycle's curve (to the same last month) and its
    # products in the same order
    curve = None if mob is None else risk.lifecycle_curve(
        scenario.risk.lifecycle,
        int(mob.max(initial=-risk.ROLL_MONTHS)) + risk.ROLL_MONTHS)
    chance = np.empty(individual.size)
    for a in range(0, individual.size, ENTRY_BLOCK):
        at = slice(a, a + ENTRY_BLOCK)
        through = roll_through(_cures_at(individual[at], scenario, logits))
        hazard = individual[at].astype(np.float64)
        if curve is not None:
            later = mob[at] + risk.ROLL_MONTHS  # the months on book of the default
            hazard *= curve[np.clip(later, 0, None, out=later)]
        hazard *= macro
        np.divide(hazard, np.maximum(through, 1e-12), out=chance[at])
    over = chance > 1.0
    if over.any():  # the hazard cannot be delivered: say so, never clip
        raise HazardTooHigh(int(over.sum()), int(chance.size), float(chance.max()))
    return chance


class HazardTooHigh(ArithmeticError):
    """The chance of missing a payment that delivers a user's hazard would exceed 1."""

    def __init__(self, users: int, of: int, largest: float):
        self.users, self.of, self.largest = users, of, largest
        super().__init__(f"would exceed 1 for {users:,} of {of:,} borrowers (largest "
                         f"{largest:.4g})")


# --------------------------------------------------------------------------- the month


def month(book: Book, pop: Population, scenario: Scenario, *, month: int, day: int,
          days: int, date: dt.date, visible: np.ndarray, macro: float,
          streams: Streams, capital: int | None = None,
          fraudster: np.ndarray | None = None) -> dict[str, int]:
    """One month of every credit line; returns the month's flows (unweighted fen, counts).

    ``day`` is the day index of the month end, ``days`` the days in the month, ``visible``
    who can see the entry now, ``capital`` the most the simulated book may lend (fen; None:
    no limit). The steps, in order: interest on the opening balance, charge-off of lines long
    in default, delinquency (arrears cure or roll on, current borrowers miss a bill),
    repayment, limit reviews, activation of new lines, draws, caps, and the funding cost of
    the opening balance. Each step draws from ``streams`` for month ``month``, per user.
    While the book is at the capital limit (outstanding at it, or last month's draws scaled
    down to fit under it) limits are not raised; the month's draws are scaled down to the
    room left under it (``capital_capped`` is 1 when the limit held raises or draws back).
    ``fraudster`` marks users who never meant to repay (``FraudBook.fraudster``): those who
    pass detection and open a line draw their whole limit and miss every bill without a
    cure (a first-payment default); they take the same random draws as everyone else.
    """
    cfg: Credit = scenario.credit
    flows: dict[str, int] = {}
    # only users with a line hold a balance or a state other than current: every step
    # selects among them, in index order (the same users as a mask over everyone)
    lines = book.lines
    held = book.balance[lines]  # the opening balances
    state = book.state[lines]
    flows["opening_balance"] = int(held.sum())
    # per line (aligned with ``lines``): the later steps find their users' by position
    interest = _interest(book, lines, held, state, days)
    # the lines' balances as the month moves them, stored in the book once, after the
    # repayments (charge-off, roll and miss read no balance the interest moved)
    balance = held + interest
    flows["interest_revenue"] = int(interest.sum())

    due, gross, recovered = charge_off(book, cfg, lines)
    balance[np.searchsorted(lines, due)] = 0  # as charge_off left them in the book
    # charge-off only moves lines from 90+ to charged off: neither is late nor billed
    late_at = np.flatnonzero((state >= D1_30) & (state <= D61_90))
    billed_at = np.flatnonzero((state == CURRENT) & (held > 0))
    late, billed = lines[late_at], lines[billed_at]
    del state
    u_late = streams.uniform(purposes.ROLL, month, late)
    u_billed = streams.uniform(purposes.MISS, month, billed)
    crook = np.zeros(book.n, dtype=bool) if fraudster is None else fraudster
    cured, arrears, defaulted = roll(book, pop, scenario, late, u_late, month=month,
                                     never_cure=crook[late])
    missing = miss(book, pop, scenario, billed, u_billed, macro=macro, day=day,
                   month=month, certain=crook[billed])

    paying = np.ones(billed.size, dtype=bool)
    paying[np.searchsorted(billed, missing)] = False  # both in index order
    payers_at = np.compress(paying, billed_at)
    # neither roll nor miss moves a balance: a payer's or a cured line's is its opening
    # balance plus the month's interest
    repaid, full = repay(book, pop, cfg, lines, held, interest, payers_at,
                         np.searchsorted(lines, cured), arrears,
                         streams.uniform(purposes.REPAY, month, lines[payers_at]), balance)
    book.balance[lines] = balance
    del interest, balance  # the rest of the month does not need them
    flows["repayments"] = int(repaid)
    flows["charge_offs"] = int(gross.sum())
    flows["recoveries"] = int(recovered.sum())
    flows["charge_off_loss"] = int((gross - recovered).sum())
    flows["charge_off_accounts"] = int(due.size)
    flows["new_defaults"] = int(defaulted.size)
    flows["default_balance"] = int(book.balance[defaulted].sum())
    flows["overdue_episodes"] = int(missing.size)
    flows["cures"] = int(cured.size)
    flows["early_repayments"] = int(full)

    can_use = np.greater(visible, pop.closed)  # visible and not closed, in one pass
    # what is lent after the repayments: reviews and new lines (none drawn yet) move no
    # balance until the draws, and only the draws after them. The balance identity gives
    # it to the fen without a pass over the lines (test_the_balance_identity_holds...)
    lent = (flows["opening_balance"] + flows["interest_revenue"] - flows["repayments"]
            - flows["charge_offs"])
    capped = capital is not None and (book.capital_held or lent >= capital)
    flows["limit_raises"] = (0 if capped else
                             review_limits(book, pop, scenario, day=day, date=date, lines=lines))
    new = activate(book, pop, scenario, can_use, month=month, date=date, streams=streams)
    flows["new_activations"] = int(new.size)
    lines = book.lines  # with the new lines
    room = None if capital is None else max(capital - lent, 0)
    flows["draws"], flows["draw_accounts"], held = draw(
        book, cfg, can_use, month=month, day=day, streams=streams, room=room, greedy=crook,
        lines=lines)
    book.capital_held = held
    flows["capital_capped"] = int(capped or held)
    flows["fraud_defaults"] = int(np.count_nonzero(crook[defaulted]))
    flows["cap_cuts"] = cap_limits(book, pop, scenario, date)
    flows["closing_balance"] = lent + flows["draws"]  # caps cut limits, not balances
    flows["funding_cost"] = funding_cost(flows["opening_balance"], cfg.loss.funding_rate, days)
    return flows


def _lines(book: Book, lines: np.ndarray | None) -> np.ndarray:
    """The users with a line, in index order (``lines`` when the caller has them)."""
    return np.flatnonzero(book.opened) if lines is None else lines


def accrue_interest(book: Book, opening: np.ndarray, days: int,
                    lines: np.ndarray | None = None) -> np.ndarray:
    """Interest in fen at each line's daily rate on its opening balance, for lines not in
    default; added to the balance and returned (for every user)."""
    lines = _lines(book, lines)
    interest = np.zeros(book.n, dtype=np.int64)
    interest[lines] = _interest(book, lines, opening[lines], book.state[lines], days)
    book.balance[lines] += interest[lines]
    return interest


def _interest(book: Book, lines: np.ndarray, opening: np.ndarray, state: np.ndarray,
              days: int) -> np.ndarray:
    """:func:`accrue_interest`'s interest by line (aligned with ``lines``), given their
    opening balances and states; the balances are left to the caller."""
    # over every line, then kept where it accrues: cheaper than selecting those first
    accrued = np.multiply(opening, book.rate[lines])  # float64, as int64 x float32 is
    accrued *= days
    np.round(accrued, out=accrued)
    interest = accrued.astype(np.int64)
    interest *= (state <= D61_90) & (opening > 0)
    return interest


def charge_off(book: Book, cfg: Credit,
               lines: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines in default one more month past due; those beyond ``charge_off_dpd`` are charged
    off, recovering ``1 - lgd`` of the balance. Returns (users, gross fen, recovered fen)."""
    lines = _lines(book, lines)
    in_default = np.compress(book.state[lines] == DEFAULT, lines)
    book.missed[in_default] += 1
    due = in_default[book.missed[in_default].astype(np.int32) * 30 > cfg.loss.charge_off_dpd]
    gross = book.balance[due]
    recovered = np.round(gross * (1.0 - cfg.loss.lgd)).astype(np.int64)
    book.cum_loss[due] += gross - recovered
    book.balance[due] = 0
    book.state[due] = CHARGED_OFF
    return due, gross, recovered


def roll(book: Book, pop: Population, scenario: Scenario, late: np.ndarray, u: np.ndarray, *,
         month: int, never_cure: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines in arrears (``late``, uniform draws ``u``) cure or roll one bucket on; a roll
    into 90+ is a default, which closes the user's access for good. Lines marked
    ``never_cure`` (fraud) always roll on. Returns (cured, their months of arrears,
    defaulted)."""
    state = book.state[late].astype(np.int64)
    cure = cure_probabilities(pop, scenario, late)[np.arange(late.size), state - 1]
    if never_cure is not None:
        cure = np.where(never_cure, 0.0, cure)
    cured = np.compress(u < cure, late)
    rolled = np.compress(u >= cure, late)
    arrears = book.missed[cured].astype(np.int64)
    book.state[rolled] += 1
    book.missed[rolled] += 1
    defaulted = rolled[book.state[rolled] == DEFAULT]
    book.default_month[defaulted] = month
    invites.close(pop, defaulted, ineligible=True)
    book.state[cured] = CURRENT
    book.missed[cured] = 0
    return cured, arrears, defaulted


def miss(book: Book, pop: Population, scenario: Scenario, billed: np.ndarray, u: np.ndarray,
         *, macro: float, day: int, month: int | None = None,
         certain: np.ndarray | None = None) -> np.ndarray:
    """Current borrowers with a bill (``billed``, uniform draws ``u``) who miss it: into
    1-30, limit frozen and cut, review window restarted, score points lost. The chance
    follows each line's months on book at ``month`` (the lifecycle; none without
    ``month``); lines marked ``certain`` (fraud) always miss. Returns them."""
    cfg = scenario.credit
    mob = None if month is None else month - book.open_month[billed].astype(np.int64)
    chance = entry_probability(pop, scenario, macro, billed, mob)
    if certain is not None:
        chance = np.where(certain, 1.0, chance)
    missing = billed[u < chance]
    book.state[missing] = D1_30
    book.missed[missing] = 1
    book.frozen_until[missing] = day + cfg.limits.freeze_days
    cut = _round_limit(book.limit[missing] / FEN * (1.0 - cfg.limits.cut_on_delinquency),
                       cfg.limits.round_to)
    book.limit[missing] = np.minimum(book.limit[missing], cut)
    book.window_months[missing] = 0
    book.window_on_time[missing] = 0
    eff = cfg.score
    pop.score_adjust[missing] = np.maximum(pop.score_adjust[missing] - eff.overdue_points,
                                           eff.floor)
    return missing


def repay(book: Book, pop: Population, cfg: Credit, lines: np.ndarray, opening: np.ndarray,
          interest: np.ndarray, payers: np.ndarray, cured: np.ndarray, arrears: np.ndarray,
          v: np.ndarray, balances: np.ndarray) -> tuple[int, int]:
    """Current borrowers with a bill (``payers``, uniform draws ``v``) pay in full, the
    minimum or an instalment; the cured pay their arrears. Returns (fen repaid, users who
    paid in full). ``payers`` and ``cured`` are positions in ``lines``, whose opening
    balances and month's accrued interest are ``opening`` and ``interest``: only the
    interest has moved a payer's or a cured line's balance since the month opened. The
    payments come off ``balances`` (the lines' balances, aligned with ``lines``), which the
    caller stores in the book."""
    # four disjoint groups, so amounts are computed and paid on their positions only
    # (np.compress, not payers[mask]: several times faster on a scattered mask)
    term = cfg.repayment.instalment_months
    full = np.compress(v < cfg.repayment.full, payers)
    minimum = np.compress((v >= cfg.repayment.full)
                          & (v < cfg.repayment.full + cfg.repayment.minimum_only), payers)
    instal = np.compress(v >= cfg.repayment.full + cfg.repayment.minimum_only, payers)
    paying = np.concatenate([full, minimum, instal, cured])
    balance = balances[paying]  # opening + interest
    repaid = np.concatenate([
        balance[:full.size],
        interest[minimum] + np.ceil(opening[minimum] * cfg.repayment.minimum_share).astype(
            np.int64),
        interest[instal] + -(-opening[instal] // term),
        interest[cured] + -(-opening[cured] * (arrears + 1) // term),
    ])
    np.minimum(repaid, balance, out=repaid)
    balances[paying] = balance - repaid
    minimum, full, instal = lines[minimum], lines[full], lines[instal]
    book.minimum_streak[minimum] = np.minimum(book.minimum_streak[minimum], 100) + 1
    book.minimum_streak[full] = 0
    book.minimum_streak[instal] = 0
    eff = cfg.score
    pop.score_adjust[full] = np.minimum(pop.score_adjust[full] + eff.early_repayment_points,
                                        eff.ceiling)
    return int(repaid.sum()), int(full.size)


def review_limits(book: Book, pop: Population, scenario: Scenario, *, day: int,
                  date: dt.date, lines: np.ndarray | None = None) -> int:
    """Limit reviews of open lines: a window of good months earns a raise (under the caps).
    Returns how many limits rose."""
    lim = scenario.credit.limits
    lines = _lines(book, lines)
    # the review windows of every line at once (one gather and one store per column)
    state = book.state[lines]
    open_ = state <= D61_90
    months, on_time = book.window_months[lines], book.window_on_time[lines]
    months += open_
    on_time += open_ & (state == CURRENT)
    at = np.flatnonzero(open_ & (months >= lim.raise_after_months))
    review = lines[at]
    share = on_time[at] / np.maximum(months[at], 1)
    good = review[(share > lim.raise_on_time_share - 1e-12)
                  & (state[at] == CURRENT)
                  & (book.frozen_until[review] <= day)
                  & (book.minimum_streak[review] < lim.minimum_streak_cancels_raise)
                  & pop.invited[review] & ~pop.closed[review]]
    months[at] = 0
    on_time[at] = 0
    book.window_months[lines] = months
    book.window_on_time[lines] = on_time
    wanted = _round_limit(book.limit[good] / FEN * lim.raise_factor, lim.round_to)
    before = book.limit[good].copy()
    _apply_caps(book, pop, scenario, date, good, wanted)
    return int(np.count_nonzero(book.limit[good] > before))


def activate(book: Book, pop: Population, scenario: Scenario, can_use: np.ndarray, *,
             month: int, date: dt.date, streams: Streams) -> np.ndarray:
    """Users who can use the entry and have no line open one with their archetype's
    activation chance. Returns them (in index order)."""
    candidates = np.flatnonzero(np.greater(can_use, book.opened))  # can use, no line yet
    p = np.array([scenario.credit.activation[a] for a in pop.labels["archetype"]])[
        pop.archetype[candidates]]
    new = np.compress(streams.uniform(purposes.ACTIVATION, month, candidates) < p, candidates)
    _open_lines(book, pop, scenario, new, month, date)
    return new


def draw(book: Book, cfg: Credit, can_use: np.ndarray, *, month: int, day: int,
         streams: Streams, room: int | None = None, greedy: np.ndarray | None = None,
         lines: np.ndarray | None = None) -> tuple[int, int, bool]:
    """Current, unfrozen lines with room under the limit draw with ``draw_rate`` a beta share
    (mean ``draw_share``) of what is available, in whole CNY; lines marked ``greedy`` (fraud)
    draw everything available. When the draws would take more than ``room`` (fen left under
    the capital limit; None: no limit), every draw is scaled down by the same factor, so no
    user's draw depends on the order of the others. Returns (fen drawn, lines that drew,
    whether the capital limit held draws back)."""
    lines = _lines(book, lines)
    users = np.compress(can_use[lines] & (book.state[lines] == CURRENT), lines)
    # whether a line draws is its own uniform, whatever the others: decided first, so the
    # balances, limits and freezes are read for the third of lines that draw only
    keep = streams.chance(cfg.draw_rate, purposes.DRAW, month, users)
    fraud = None
    if greedy is not None:  # fraud takes no draws of its own: it draws everything
        fraud = greedy[users]
        if fraud.any():
            keep |= fraud
        else:
            fraud = None
    users = np.compress(keep, users)
    balance, limit = book.balance[users], book.limit[users]
    able = (book.frozen_until[users] <= day) & (balance < limit)
    users, balance, limit = (np.compress(able, x) for x in (users, balance, limit))
    b = 2.0 * (1.0 - cfg.draw_share) / cfg.draw_share + 1e-9
    if fraud is None:
        share = streams.beta2(b, purposes.DRAW_SHARE, month, users)
    else:
        fraud = np.compress(able, np.compress(keep, fraud))
        share = np.ones(users.size)
        share[~fraud] = streams.beta2(b, purposes.DRAW_SHARE, month, users[~fraud])
    available = limit - balance
    wanted = available * share
    held = room is not None and float(wanted.sum()) > room
    if held:
        wanted *= room / float(wanted.sum())
    amount = (np.floor(wanted / FEN) * FEN).astype(np.int64)
    amount = np.clip(amount, 0, available)
    book.balance[users] = balance + amount
    book.cum_draw[users] += amount
    drew = users[amount > 0]
    book.last_draw_month[drew] = month
    return int(amount.sum()), int(drew.size), held


def cap_limits(book: Book, pop: Population, scenario: Scenario, date: dt.date) -> int:
    """Hold every live line under the caps in force now (a new rule may cut limits already
    granted). Returns how many the caps held. Every limit is set under the caps in force
    (opening, raises), so only a change in the rules in force can cut one: the lines are
    checked when it happens."""
    in_force = tuple(i for i, rule in enumerate(scenario.credit.limits.caps)
                     if rule.start <= date)
    if in_force == book.caps_applied:
        return 0
    book.caps_applied = in_force
    lines = np.compress(book.state[book.lines] <= D61_90, book.lines)
    return int(_apply_caps(book, pop, scenario, date, lines, book.limit[lines]).size)


def funding_cost(opening: int, rate: float, days: int) -> int:
    """The month's cost in fen of funding the opening balance at the yearly ``rate``."""
    return round(opening * rate * days / 365.0)


def _open_lines(book: Book, pop: Population, scenario: Scenario, users: np.ndarray,
                month: int, date: dt.date) -> None:
    """Open lines for ``users``: a first limit and a daily rate from the score's rank among
    the eligible (better rank, higher limit and lower rate), in the region's range."""
    if users.size == 0:
        return
    cfg = scenario.credit
    pool = _rank_pool(book, pop)
    rank = np.clip(_search(pool, pop.score[users]) / max(pool.size, 1), 0.0, 1.0)
    mult = np.array([r.limit_multiplier for r in scenario.population.regions.values()])[
        pop.region[users]]
    lim = cfg.limits
    first = (lim.first_min + (lim.first_max - lim.first_min) * rank) * mult
    book.opened[users] = True
    # two sorted runs, which the stable sort (timsort) merges: twice as fast as np.insert
    book.lines = np.sort(np.concatenate([book.lines, np.sort(users)]), kind="stable")
    book.open_month[users] = month
    book.rate[users] = cfg.pricing.max_daily - (cfg.pricing.max_daily
                                                - cfg.pricing.min_daily) * rank
    _apply_caps(book, pop, scenario, date, users, _round_limit(first, lim.round_to))


def _search(pool: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``np.searchsorted(pool, scores)``, searched in sorted order: NumPy narrows each
    search from the last when the keys ascend, a few times faster over a large pool."""
    order = np.argsort(scores, kind="stable")
    at = np.empty(scores.size, dtype=np.intp)
    at[order] = np.searchsorted(pool, scores[order])
    return at


def _rank_pool(book: Book, pop: Population) -> np.ndarray:
    """Sorted scores of the users eligible at the last scoring (everyone's when none is):
    the bank ranks new lines against its last scoring, kept until the next one (users who
    default in between stay in it, as in the bank's quarterly score distribution). A scoring
    replaces ``pop.score`` (never updates it in place), which is what renews the pool."""
    if book.rank_pool_of is None or book.rank_pool_of() is not pop.score:
        pool = (np.compress(pop.eligible, pop.score) if pop.eligible is not None
                else pop.score)
        book.rank_pool = np.sort(pool) if pool.size else np.sort(pop.score)
        book.rank_pool_of = weakref.ref(pop.score)  # a weak reference keeps no old scores
    return book.rank_pool


# --------------------------------------------------------------------------- expected loss

#: Live lines per block of the expected-loss sums (each block's losses summed, then the
#: blocks' sums in order).
ECL_BLOCK = 32_768


def expected_loss(book: Book, pop: Population, scenario: Scenario, macro: float,
                  month: int | None = None, fraudster: np.ndarray | None = None, *,
                  with_pd: bool = True, lines: np.ndarray | None = None,
                  view: LineView | None = None) -> dict:
    """IFRS 9 view of the book at a month end (fen, float): stage balances, 12-month and
    lifetime expected credit loss, and the staged allowance (NaN without ``with_pd``: the
    PD chain is the costly part, so a run computes it in ``reporting.ecl_months`` only).

    PD comes from the model's own dynamics (:func:`pd_12m_lifetime`): an oracle PD, what a
    perfectly calibrated bank model would hold. EAD = balance + CCF x undrawn limit for lines
    that can still draw; stage 1 < 30 days past due, stage 2 30-89, stage 3 90+.
    """
    cfg = scenario.credit
    view = line_view(book, pop, lines) if view is None else view
    state, balance = view.state, view.balance
    # EAD a line, over every line (the same values), then the live ones (not charged off)
    # kept in order: the same float sum
    ead = np.maximum(view.limit - balance, 0).astype(np.float64)  # undrawn
    ead *= cfg.loss.ccf
    ead *= np.greater(state == CURRENT, view.closed)  # can draw: x 1 or x 0, both exact
    ead += balance
    alive = state <= DEFAULT
    everyone = bool(alive.all())
    if not everyone:
        ead = np.compress(alive, ead)
    # stage balances: sums of whole fen by state (exact below 2^53 fen, in any order)
    by_state = np.bincount(state, weights=balance, minlength=CHARGED_OFF + 1)
    out = {
        "ead": float(ead.sum()),
        "expected_loss": np.nan, "ecl_12m": np.nan, "ecl_lifetime": np.nan,
        "ecl_allowance": np.nan,
        "stage1": float(by_state[CURRENT] + by_state[D1_30]),
        "stage2": float(by_state[D31_60] + by_state[D61_90]),
        "stage3": float(by_state[DEFAULT]),
    }
    if with_pd:
        live, state = (view.users, state) if everyone else (
            np.compress(alive, view.users), np.compress(alive, state))
        stage1 = state < D31_60
        # the chain runs the whole book in one run order (risk.default_probability blocks
        # it); the losses are summed by blocks of ECL_BLOCK lines
        pd12, pdl = pd_12m_lifetime(book, pop, scenario, macro, live, month=month,
                                    fraudster=fraudster)
        sums = np.zeros(3)
        for a in range(0, live.size, ECL_BLOCK):
            at = slice(a, a + ECL_BLOCK)
            ecl12 = pd12[at] * cfg.loss.lgd * ead[at]
            ecll = pdl[at] * cfg.loss.lgd * ead[at]
            sums += (ecl12.sum(), ecll.sum(), np.where(stage1[at], ecl12, ecll).sum())
        out["expected_loss"] = out["ecl_12m"] = float(sums[0])
        out["ecl_lifetime"], out["ecl_allowance"] = float(sums[1]), float(sums[2])
    return out


def pd_12m_lifetime(book: Book, pop: Population, scenario: Scenario, macro: float,
                    lines: np.ndarray, *, month: int | None = None,
                    fraudster: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """12-month and lifetime (``credit.loss.lifetime_months``) PD of ``lines`` at the end of
    ``month``: the chance of reaching 90+ within the horizon along the simulation's own
    chain (:func:`sim.model.risk.default_probability`): the roll and cure of the delinquency
    buckets, the lifecycle at each line's months on book, the macro factor held at today's,
    and months without a balance (no bill, no miss). Lines at 90+ have PD 1. Without
    ``month`` the lifecycle is left out (multiplier 1)."""
    cfg = scenario.credit
    spec = scenario.risk.lifecycle
    if month is None:
        spec = spec.model_copy(update={"form": "flat", "table": None})
        mob = np.zeros(lines.size, dtype=np.int16)
    else:  # in the book's int16 (the whole book's inputs are held at once: kept narrow)
        mob = np.maximum(month - book.open_month[lines], 0)
    balance = book.balance[lines]
    has_balance = balance > 0
    can_draw = balance < book.limit[lines]
    del balance
    can_draw &= pop.invited[lines] & ~pop.closed[lines] & ~pop.hidden[lines]
    pd = risk.default_probability(
        individual=pop.hazard[lines], mob=mob, state=book.state[lines],
        has_balance=has_balance, cures=_cures_by_hazard(scenario), macro=macro,
        spec=spec, horizons=(12, cfg.loss.lifetime_months), full=cfg.repayment.full,
        # float32, as the chain takes it
        draw_rate=np.where(can_draw, np.float32(cfg.draw_rate), np.float32(0.0)),
        certain=None if fraudster is None else fraudster[lines])
    return pd[:, 0], pd[:, 1]


def _cures_by_hazard(scenario: Scenario) -> risk.Cures:
    """The cure columns and roll-through of lines from their latent hazards, as the PD chain
    asks for them block by block (:data:`sim.model.risk.Cures`)."""
    logits = _cure_logits(scenario)

    def cures(_, hazard: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        columns = _cures_at(hazard, scenario, logits)
        return columns, roll_through(columns)
    return cures


@dataclass(frozen=True)
class LineView:
    """The columns of the book's lines that the month-end figures read, gathered once (one
    value a line, in the index order of ``users``); the masks made of them are made once
    too, for the stock and the recorder's per-line figures alike."""

    users: np.ndarray
    state: np.ndarray
    balance: np.ndarray  # fen
    limit: np.ndarray  # fen
    default_month: np.ndarray
    closed: np.ndarray  # the user's access is closed

    @cached_property
    def borrowers(self) -> np.ndarray:
        """Lines with a drawn balance not in default (:func:`borrowers`)."""
        return _borrowing(self.state, self.balance)

    @cached_property
    def dpd30(self) -> np.ndarray:
        """Lines 30 or more days past due now (:func:`dpd30`)."""
        return _late30(self.state)

    @cached_property
    def defaulted(self) -> np.ndarray:
        """Lines that ever defaulted."""
        return self.default_month >= 0


def line_losses(per_line: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The positions (among the lines, ascending) of the lines with a loss and their loss in
    fen, from the recorder's per-line figures: their ``lossy`` and ``loss``
    (:attr:`sim.engine.recorder.Observation.per_line`), or found from a ``cum_loss`` of every
    line. Summing these leaves out zeros alone: the same float sums, in the same order."""
    if "lossy" in per_line:
        return per_line["lossy"], per_line["loss"]
    lossy = np.flatnonzero(per_line["cum_loss"] != 0)  # of a mask: 3x faster than of ints
    return lossy, per_line["cum_loss"][lossy]


def line_view(book: Book, pop: Population, lines: np.ndarray | None = None) -> LineView:
    """The :class:`LineView` of the users with a line (``lines`` when the caller has them)."""
    lines = _lines(book, lines)
    return LineView(lines, book.state[lines], book.balance[lines], book.limit[lines],
                    book.default_month[lines], pop.closed[lines])


def stock(book: Book, pop: Population, lines: np.ndarray | None = None, *,
          view: LineView | None = None) -> dict[str, int]:
    """Counts and sums of the book at a month end (unweighted; money in fen), over the users
    with a line (``lines``, in index order, or their ``view`` when the caller has them):
    without one a user holds no balance, no limit, no arrears and no default."""
    view = line_view(book, pop, lines) if view is None else view
    state = view.state
    active = (state <= D61_90) & ~view.closed
    return {
        "active": int(np.count_nonzero(active)),
        "borrowers": int(np.count_nonzero(view.borrowers)),
        "outstanding": int(view.balance.sum()),
        "limit_total": int(np.compress(active, view.limit).sum()),
        "dpd30": int(np.count_nonzero(view.dpd30)),
        "dpd90": int(np.count_nonzero(state == DEFAULT)),
        "cum_defaults": int(np.count_nonzero(view.defaulted)),
    }


def dpd30(book: Book) -> np.ndarray:
    """Users 30 or more days past due now (31-60, 61-90 and 90+)."""
    return _late30(book.state)


def borrowers(book: Book) -> np.ndarray:
    """Users with a drawn balance that is not in default."""
    return book.opened & _borrowing(book.state, book.balance)


def _late30(state: np.ndarray) -> np.ndarray:
    """States 30 or more days past due (31-60, 61-90 and 90+)."""
    return (state >= D31_60) & (state <= DEFAULT)


def _borrowing(state: np.ndarray, balance: np.ndarray) -> np.ndarray:
    """A drawn balance not in default."""
    return (state <= D61_90) & (balance > 0)
