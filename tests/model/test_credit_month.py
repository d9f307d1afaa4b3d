"""Credit's month as named steps: every month the book's money adds up to the fen, each
step does what its name says, and the capital query changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from credit_helpers import risky_vintage, scenario

from sim.engine.simulation import Simulation
from sim.model import capital, credit
from sim.model.streams import Streams


@pytest.fixture(scope="module")
def ran():
    """A simulation two quarters into a risky vintage."""
    return risky_vintage(users=4_000, quarters=2)


def _months(s: Simulation, count: int):
    """Drive ``count`` more credit months on ``s``'s book; yield (before, flows, after)."""
    day = s.horizon
    for m in range(count):
        before = s.book.balance.copy(), s.book.cum_draw.copy(), s.book.cum_loss.copy()
        flows = credit.month(s.book, s.pop, s.scenario, month=7 + m, day=day, days=30,
                             date=s.date(day), visible=s.visible(), macro=1.0,
                             streams=s.streams)
        day += 30
        yield before, flows, s.book


def test_the_balance_identity_holds_to_the_fen_every_month(ran):
    seen = {"draws": 0, "charge_offs": 0, "interest_revenue": 0, "repayments": 0}
    for (balance, _, _), flows, book in _months(ran, 8):
        opening, closing = int(balance.sum()), int(book.balance.sum())
        assert (opening + flows["draws"] + flows["interest_revenue"] - flows["repayments"]
                - flows["charge_offs"]) == closing
        assert (flows["opening_balance"], flows["closing_balance"]) == (opening, closing)
        for key in seen:
            seen[key] += flows[key]
    assert all(v > 0 for v in seen.values()), seen  # every term took part


def test_draws_and_losses_are_what_the_lines_record(ran):
    for (_, cum_draw, cum_loss), flows, book in _months(ran, 4):
        assert flows["draws"] == int((book.cum_draw - cum_draw).sum())
        assert flows["charge_off_loss"] == int((book.cum_loss - cum_loss).sum())
        assert flows["charge_offs"] == flows["charge_off_loss"] + flows["recoveries"]


def test_a_default_closes_access_for_good(ran):
    book, pop = ran.book, ran.pop
    defaulted = book.default_month >= 0
    assert defaulted.any()
    assert pop.closed[defaulted].all() and not pop.invited[defaulted].any()


def test_no_interest_accrues_in_default():
    book = credit.new_book(4)
    book.opened[:3] = True  # only an opened line holds a balance; user 3 has none
    book.balance[:3] = 10_000
    book.rate[:] = 0.001
    book.state[:] = [credit.CURRENT, credit.D61_90, credit.DEFAULT, credit.CURRENT]
    interest = credit.accrue_interest(book, book.balance.copy(), days=30)
    assert interest.tolist() == [300, 300, 0, 0]
    assert book.balance.tolist() == [10_300, 10_300, 10_000, 0]


def test_interest_is_the_rounded_daily_rate_on_the_opening_balance_of_live_lines():
    """Interest is computed for every line and then kept where it accrues: the same fen as
    rounding each accruing line's opening balance x daily rate x days."""
    r = np.random.default_rng(2)
    book = credit.new_book(5_000)
    book.opened[:] = r.random(5_000) < 0.7
    book.lines = np.flatnonzero(book.opened)
    book.balance[book.lines] = r.integers(0, 3, book.lines.size) * r.integers(0, 10**7,
                                                                              book.lines.size)
    book.rate[:] = r.uniform(1e-4, 1e-3, 5_000).astype(np.float32)
    book.state[:] = r.integers(0, 6, 5_000)
    opening = book.balance.copy()
    got = credit.accrue_interest(book, opening, days=31, lines=book.lines)
    accrues = book.opened & (book.state <= credit.D61_90) & (opening > 0)
    want = np.zeros(5_000, dtype=np.int64)
    want[accrues] = np.round(opening[accrues] * book.rate[accrues].astype(np.float64) * 31)
    assert np.array_equal(got, want) and want.any() and (~accrues & (opening > 0)).any()


def test_charge_off_comes_after_charge_off_dpd_in_default(ran):
    cfg = ran.scenario.credit
    book = credit.new_book(2)
    book.opened[:] = True
    book.balance[:] = 50_000
    book.state[:] = credit.DEFAULT
    book.missed[:] = [3, cfg.loss.charge_off_dpd // 30]
    due, gross, recovered = credit.charge_off(book, cfg)
    assert due.tolist() == [1]
    assert book.state.tolist() == [credit.DEFAULT, credit.CHARGED_OFF]
    assert book.balance.tolist() == [50_000, 0]
    assert int(gross.sum()) == 50_000 and book.cum_loss[1] == 50_000 - int(recovered.sum())


def test_funding_cost_is_a_day_count_share_of_the_yearly_rate():
    assert credit.funding_cost(365_000, 0.05, 30) == 1_500


def test_capital_query_changes_nothing(ran):
    limit = capital.outstanding(ran.book, ran.pop.weight)
    balance = ran.book.balance.copy()
    assert capital.binds(ran.book, ran.pop.weight, limit)
    assert not capital.binds(ran.book, ran.pop.weight, limit * 2)
    assert not capital.binds(ran.book, ran.pop.weight, None)
    assert not ran.flows.capital_bound and np.array_equal(ran.book.balance, balance)


def test_the_book_keeps_its_lines_in_index_order(ran):
    """``Book.lines``, which every month's steps and the recorder select among, is the users
    with a line in index order."""
    assert ran.book.lines.size > 0
    assert np.array_equal(ran.book.lines, np.flatnonzero(ran.book.opened))


def test_the_line_view_reads_the_books_columns_of_its_lines(ran):
    """The month-end figures read the book through one gather of its lines: the same
    borrowers and arrears as the masks over every user."""
    book, pop = ran.book, ran.pop
    view = credit.line_view(book, pop)
    assert np.array_equal(view.users, np.flatnonzero(book.opened))
    assert np.array_equal(view.borrowers, credit.borrowers(book)[view.users])
    assert np.array_equal(view.dpd30, credit.dpd30(book)[view.users])
    assert view.borrowers.any() and view.dpd30.any()
    assert credit.stock(book, pop)["outstanding"] == int(book.balance.sum())


class _Checked(Simulation):
    """A simulation that checks, after every credit month, that the outstanding it keeps
    for the rollout's capital queries is the book's (summed afresh)."""

    def credit_month(self, month):
        super().credit_month(month)
        self.months_checked = getattr(self, "months_checked", 0) + 1
        assert self.flows.credit["closing_balance"] == int(self.book.balance.sum())
        assert self._outstanding() == capital.outstanding(self.book, self.pop.weight)


def test_the_kept_outstanding_is_the_books_under_a_binding_limit_and_fraud():
    """The closing balance (and the outstanding kept from it) stays the book's own sum when
    the capital limit scales draws down and fraudsters draw their whole limit."""
    s = _Checked(scenario({"population.users": 10_000, "capital.equity": 1.0e7,
                           "capital.max_leverage": 10.0, "fraud.fraudsters": 0.05}),
                 quarters=2)
    result = s.run()
    assert s.months_checked == s.months  # the rollout and its run-off
    assert result.monthly["capital_bound"].any() and result.monthly["fraud_defaults"].sum() > 0


def _plain_draw(book, cfg, can_use, *, month, day, streams, room, greedy):
    """The draw step as its docstring says it: the current, unfrozen lines with room under
    the limit, of which those whose chance comes up draw a beta share and the greedy all."""
    users = np.flatnonzero(book.opened & can_use & (book.state == credit.CURRENT)
                           & (book.frozen_until <= day) & (book.balance < book.limit))
    keep = streams.chance(cfg.draw_rate, "credit.draw", month, users)
    share = np.ones(users.size)
    share[keep] = streams.beta2(2.0 * (1.0 - cfg.draw_share) / cfg.draw_share + 1e-9,
                                "credit.draw_share", month, users[keep])
    keep |= greedy[users]
    users, share = users[keep], np.where(greedy[users], 1.0, share)[keep]
    available = book.limit[users] - book.balance[users]
    wanted = available * share
    held = room is not None and wanted.sum() > room
    if held:
        wanted *= room / wanted.sum()
    amount = np.clip((np.floor(wanted / 100) * 100).astype(np.int64), 0, available)
    book.balance[users] += amount
    book.cum_draw[users] += amount
    book.last_draw_month[users[amount > 0]] = month
    return int(amount.sum()), int(np.count_nonzero(amount)), held


@pytest.mark.parametrize("room", [None, 10**8])
def test_draw_is_the_plain_selection_of_lines_that_draw(room):
    """The draw decides who draws before it reads balances (a faster order): the same lines
    draw the same amounts as the plain selection, greedy (fraud) lines included."""
    rng = np.random.default_rng(5)
    n, cfg, streams = 20_000, scenario().credit, Streams(3)
    books = []
    for _ in range(2):
        book = credit.new_book(n)
        r = np.random.default_rng(9)
        book.opened[:] = r.random(n) < 0.6
        book.lines = np.flatnonzero(book.opened)
        book.limit[:] = np.where(book.opened, r.integers(1, 50, n) * 100_000, 0)
        book.balance[:] = np.minimum(r.integers(0, 5_000_000, n), book.limit)
        book.state[:] = np.where(r.random(n) < 0.8, credit.CURRENT, r.integers(1, 6, n))
        book.frozen_until[:] = r.integers(0, 400, n)
        books.append(book)
    can_use = rng.random(n) < 0.9
    greedy = rng.random(n) < 0.02
    got = credit.draw(books[0], cfg, can_use, month=4, day=300, streams=streams, room=room,
                      greedy=greedy, lines=books[0].lines)
    want = _plain_draw(books[1], cfg, can_use, month=4, day=300, streams=streams, room=room,
                       greedy=greedy)
    assert got[:2] == want[:2] and got[0] > 0 and got[2] == want[2] == (room is not None)
    for name in ("balance", "cum_draw", "last_draw_month"):
        np.testing.assert_array_equal(getattr(books[0], name), getattr(books[1], name))
