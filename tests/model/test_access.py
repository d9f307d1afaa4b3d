"""Access state has one writer: sim/model/invites.py. Credit defaults, fraud levels, the
re-evaluation and the rollout change who is invited, closed, hidden or eligible only through
its functions, so a rule about access (a closed user never comes back) holds in one place."""

from __future__ import annotations

import ast

import numpy as np
from ast_writes import SIM, writes, writes_outside
from credit_helpers import quiet_fraud, raw, scenario

from sim.engine.simulation import Simulation
from sim.model import invites, reevaluation

ACCESS = {"invited", "vintage", "closed", "hidden", "eligible"}
#: The writer, and the population's constructor that creates the arrays.
ALLOWED = {SIM / "model" / "invites.py", SIM / "model" / "population.py"}


def test_access_state_is_written_only_by_invites():
    found = writes_outside(ACCESS, ALLOWED)
    assert not found, "\n".join(found)


def test_the_walk_sees_every_kind_of_write():
    code = ("pop.invited[u] = False\npop.closed = x\npop.hidden |= y\n"
            "np.logical_or(a, b, out=pop.hidden)\nnp.copyto(pop.eligible, z)\n"
            "pop.score, pop.eligible = s, e\n")
    assert sorted(a for _, a in writes(ast.parse(code), ACCESS)) == [
        "closed", "eligible", "eligible", "hidden", "hidden", "invited"]


def _small(**changes):
    return Simulation(scenario({"population.users": 5_000, **quiet_fraud(), **changes}),
                      quarters=1)


def test_a_closed_user_loses_access_and_never_regains_it_at_a_reevaluation():
    s = _small()
    pop = s.pop
    users = np.flatnonzero(pop.eligible)[:200]
    invites.invite(pop, users, 0)
    invites.close(pop, users)
    assert not pop.invited[users].any() and pop.closed[users].all()
    reevaluation.reevaluate(pop, s.scenario, s.state.cutoff, s.holdout,
                            s.streams, 3)
    assert not pop.invited[users].any() and not pop.eligible[users].any()
    assert (pop.vintage[users] == 0).all()  # still counted in the vintage they joined


def test_a_default_ends_eligibility_at_once_a_fraud_closure_at_the_next_scoring():
    s = _small()
    pop = s.pop
    users = np.flatnonzero(pop.eligible)[:10]
    invites.close(pop, users[:5], ineligible=True)
    invites.close(pop, users[5:])
    assert not pop.eligible[users[:5]].any() and pop.eligible[users[5:]].all()


def test_hidden_users_do_not_see_the_entry_and_see_it_again_when_shown():
    s = _small(**{"release.versions": [{**v, "visible": 1.0}
                                       for v in raw()["release"]["versions"]]})
    pop = s.pop
    users = np.flatnonzero(pop.eligible & (s.region_open[pop.region]))[:100]
    invites.invite(pop, users, 0)
    assert s.visible()[users].all()
    invites.hide(pop, users[:30], users[20:40])  # two groups, overlapping
    assert not s.visible()[users[:40]].any() and s.visible()[users[40:]].all()
    assert np.count_nonzero(pop.hidden) == 40
    invites.hide(pop)
    assert s.visible()[users].all()


def test_reevaluation_revokes_exactly_the_invited_no_longer_eligible_except_holdouts():
    s = _small()
    pop = s.pop
    invites.invite(pop, np.arange(pop.n), 0)  # everyone, eligible or not
    s.holdout[:50] = True
    change = reevaluation.reevaluate(pop, s.scenario, s.state.cutoff, s.holdout,
                                     s.streams, 3)
    assert not (pop.invited & ~pop.eligible & ~s.holdout).any()
    assert pop.invited[:50].all()
    assert np.array_equal(change.lost, ~pop.eligible & ~s.holdout)


def test_revoke_and_restore_take_a_mask_or_the_indices_alike():
    from types import SimpleNamespace

    rng = np.random.default_rng(5)
    invited = rng.random(1000) < 0.4
    mask = rng.random(1000) < 0.2
    for step in (invites.revoke, invites.restore):
        by_mask = SimpleNamespace(invited=invited.copy())
        by_index = SimpleNamespace(invited=invited.copy())
        step(by_mask, mask)
        step(by_index, np.flatnonzero(mask))
        assert np.array_equal(by_mask.invited, by_index.invited)
        assert not np.array_equal(by_mask.invited, invited)
