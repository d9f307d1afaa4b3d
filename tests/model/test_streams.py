"""Per-user random numbers (issue 13): a user's draw is keyed by (seed, purpose, month, sub)
and its index, never by which other users are drawn or in what order."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import betaincinv

from sim.model import streams as purposes
from sim.model.streams import Streams, beta2_quantile, poisson_quantile


def test_a_users_draw_is_the_same_alone_with_others_and_in_any_order():
    s = Streams(11)
    everyone = s.uniform(purposes.ROLL, 5, 10_000)
    users = np.array([9_999, 3, 4_242, 17])
    assert np.array_equal(s.uniform(purposes.ROLL, 5, users), everyone[users])
    for user in users:
        assert s.uniform(purposes.ROLL, 5, np.array([user]))[0] == everyone[user]
    assert np.array_equal(s.uniform(purposes.ROLL, 5, users[::-1]), everyone[users][::-1])
    # a larger population gives the first users the same draws
    assert np.array_equal(s.uniform(purposes.ROLL, 5, 20_000)[:10_000], everyone)
    # another draw in between changes nothing (no shared state)
    s.normal_pair(purposes.DRIFT, 5, 1_000)
    assert np.array_equal(s.uniform(purposes.ROLL, 5, users), everyone[users])


def _splitmix64(x: int, k: int) -> int:
    """SplitMix64's finaliser over ``x x golden + k``, in Python integers (mod 2^64)."""
    mask = (1 << 64) - 1
    z = (x * 0x9E3779B97F4A7C15 + k) & mask
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_the_keyed_hash_is_splitmix64_and_a_uniform_its_top_53_bits():
    """Across block edges (the hash works a block at a time in reused buffers), each id's
    64 bits are SplitMix64's and its uniform the centre of the cell of their top 53 bits."""
    k = purposes.key(5, purposes.DRAW, 3)
    ids = np.array([0, 1, purposes.BLOCK - 1, purposes.BLOCK, 2 * purposes.BLOCK + 3,
                    2**40 + 7])
    expect = [_splitmix64(int(i), int(k)) for i in ids]
    every = purposes.keyed_hash(np.arange(2 * purposes.BLOCK + 4), k)
    assert [int(h) for h in every[ids[:-1]]] == expect[:-1]
    assert [int(h) for h in purposes.keyed_hash(ids, k)] == expect
    u = Streams(5).uniform(purposes.DRAW, 3, ids)
    assert list(u) == [((h >> 11) + 0.5) / 2.0**53 for h in expect]


def test_seed_purpose_month_and_sub_key_give_independent_draws():
    n = 50_000
    base = Streams(1).uniform(purposes.MISS, 3, n)
    others = [Streams(2).uniform(purposes.MISS, 3, n), Streams(1).uniform(purposes.ROLL, 3, n),
              Streams(1).uniform(purposes.MISS, 4, n),
              Streams(1).uniform(purposes.MISS, 3, n, sub=1)]
    for other in others:
        assert abs(np.corrcoef(base, other)[0, 1]) < 4 / math.sqrt(n)
    with pytest.raises(ValueError, match="unknown purpose"):
        Streams(1).uniform("no.such.purpose", 1, 3)


def test_uniforms_are_uniform_in_the_open_interval():
    s = Streams(3)
    u = s.uniform(purposes.REPAY, 1, 200_000)
    assert u.min() > 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("lam", [0.0, 1e-300, 5.5e-17, 1.1e-16, 0.05, 0.8, 2.5, 6.0, 60.0,
                                 float("nan")])
def test_poisson_by_inversion_is_the_poisson_quantile(lam):
    u = Streams(4).uniform(purposes.DEVICE_SWITCHES, 1, 20_000)
    if not math.isnan(lam):
        assert np.array_equal(poisson_quantile(lam, u), stats.poisson.ppf(u, lam).astype(int))
    # the streams' counts, taken on the uniforms' integer cells, are that quantile's
    counts = Streams(4).poisson(lam, purposes.DEVICE_SWITCHES, 1, 20_000)
    assert counts.dtype == np.int64
    assert np.array_equal(counts, poisson_quantile(lam, u))
    if math.isnan(lam) or lam < 2.0**-54:  # no count: a rate of nothing
        assert not counts.any()
    users = np.array([19_999, 3, 7, 3])
    assert np.array_equal(Streams(4).poisson(lam, purposes.DEVICE_SWITCHES, 1, users),
                          counts[users])


def _cell_uniform(m):
    """The uniform of cell ``m``, as the streams compute it (float64 on the 53-bit cell)."""
    return min(float(m) * 2.0**-53 + 2.0**-54, 1.0 - 2.0**-53)


@pytest.mark.parametrize("m", [0, 1, 2, 3, 2**20 + 7, 2**52 - 1, 2**52, 2**52 + 1,
                               2**53 - 3, 2**53 - 2, 2**53 - 1])
def test_cells_below_a_rate_are_those_whose_uniform_is_below_it(m):
    """At a cell's own uniform, just below and just above it (where rounding decides), the
    count of cells below a rate is the count of cells whose uniform is below it. The cells'
    uniforms are restated here in Python; test_a_chance_is_a_uniform_below_the_rate holds
    the counts to Streams.uniform's own values."""
    u = _cell_uniform(m)
    for p in (u, np.nextafter(u, 0.0), np.nextafter(u, 2.0)):
        # the first cell at or above p, near m (above 2^52 two cells can share a uniform)
        want = max(m - 4, 0)
        while want < 2**53 and _cell_uniform(want) < p:
            want += 1
        assert want - m <= 3 and int(purposes.cells_below(p)) == want, (m, p)
    assert int(purposes.cells_below(0.0)) == 0 and int(purposes.cells_below(1.0)) == 2**53
    assert int(purposes.cells_below(float("nan"))) == 0
    # one rate at a time (Python floats) and many at once (NumPy) count the same cells
    rates = [u, float(np.nextafter(u, 0.0)), float(np.nextafter(u, 2.0)), 0.0, -1.0, 1.0,
             2.0, float("inf"), float("nan"), 5e-324]
    assert np.array_equal(purposes.cells_below(np.array(rates)),
                          [purposes.cells_below(r) for r in rates])


def test_a_chance_is_a_uniform_below_the_rate():
    s, n = Streams(6), 50_000
    u = s.uniform(purposes.DRAW, 2, n)
    for p in (0.0, 1e-9, 0.3, float(u[17]), float(np.nextafter(u[17], 2.0)), 1.0):
        assert np.array_equal(s.chance(p, purposes.DRAW, 2, n), u < p), p
    rates = np.random.default_rng(2).random(n)
    rates[:5] = u[:5]  # a rate exactly at the user's uniform: not below
    users = np.arange(n)[::-1]
    assert np.array_equal(s.chance(rates[users], purposes.DRAW, 2, users),
                          u[users] < rates[users])
    with pytest.raises(ValueError, match="one rate or one a user"):
        s.chance(rates[:10], purposes.DRAW, 2, n)


@pytest.mark.parametrize("b", [1e-9 + 0.2, 0.5, 2.4444, 9.0, 60.0])
def test_beta2_by_inversion_is_the_beta_quantile(b):
    u = Streams(5).uniform(purposes.DRAW_SHARE, 1, 20_000)
    assert np.abs(beta2_quantile(b, u) - betaincinv(2.0, b, u)).max() < 1e-9


def _plain_beta2(b, u, iterations=50):
    """The Beta(2, b) quantile's bracketed Newton written plainly: every draw stepped each
    time, the bracket chosen by the sign of the CDF less u, stopped draws kept by np.where."""
    table = purposes._beta2_table(b)[1]
    at = u * purposes.BETA2_GRID
    cell = np.minimum(at.astype(np.intp), purposes.BETA2_GRID - 1)
    low = table[cell]
    x = np.clip((table[cell + 1] - low) * (at - cell) + low, 1e-12, 1.0 - 1e-12)
    lo, hi, moving = np.zeros(u.size), np.ones(u.size), np.ones(u.size, dtype=bool)
    for _ in range(iterations):
        one_minus = 1.0 - x
        p = np.exp(b * np.log(np.maximum(one_minus, 1e-300)))
        f = 1.0 - p * (1.0 + b * x) - u
        lo_t, hi_t = np.where(f < 0, x, lo), np.where(f > 0, x, hi)
        pdf = b * (b + 1.0) * np.maximum(x, 1e-300) * p / np.maximum(one_minus, 1e-300)
        new = x - f / np.maximum(pdf, 1e-300)
        new = np.where((new > lo_t) & (new < hi_t), new, 0.5 * (lo_t + hi_t))
        step = np.abs(new - x) > 1e-12 * np.maximum(x, 1e-3)
        x, lo, hi = (np.where(moving, a, z) for a, z in ((new, x), (lo_t, lo), (hi_t, hi)))
        moving &= step
        if not moving.any():
            break
    return x


@pytest.mark.parametrize("b", [1e-9 + 0.2, 2.0 * 0.55 / 0.45 + 1e-9, 60.0])
def test_beta2_quantile_is_the_plain_bracketed_newton_bit_for_bit(b):
    # the in-place steps, the bracket narrowed by max/min and the sparse last steps give
    # the very floats of the plain formulation, the table's edge cells and the tails included
    grid = np.arange(purposes.BETA2_GRID + 1) / purposes.BETA2_GRID
    u = np.concatenate([Streams(8).uniform(purposes.DRAW_SHARE, 1, 100_000),
                        np.nextafter(grid, -1.0)[1:], np.nextafter(grid, 2.0)[:-1],
                        [2.0**-54, 1e-20, 1.0 - 2.0**-53]])
    assert np.array_equal(beta2_quantile(b, u).view(np.int64), _plain_beta2(b, u).view(np.int64))
    assert np.array_equal(beta2_quantile(b, u, 3), _plain_beta2(b, u, 3))


def test_normal_pairs_from_one_hash_are_keyed_per_user_and_independent():
    s = Streams(6)
    users = np.array([7, 40_000, 123])
    first, second = s.normal_pair(purposes.DRIFT, 2, 50_000)
    alone = s.normal_pair(purposes.DRIFT, 2, users)
    assert np.array_equal(alone[0], first[users]) and np.array_equal(alone[1], second[users])
    assert abs(np.corrcoef(first, second)[0, 1]) < 4 / math.sqrt(first.size)
    other = s.normal_pair(purposes.DRIFT, 3, 50_000)[0]  # another month: another draw
    assert abs(np.corrcoef(first, other)[0, 1]) < 4 / math.sqrt(first.size)


def test_normal_pairs_are_normal_and_one_normal_is_the_first_of_the_pair():
    s = Streams(7)
    z1, z2 = s.normal_pair(purposes.DRIFT, 1, 200_000)
    assert z1.dtype == np.float32
    for z in (z1, z2):
        assert stats.kstest(z.astype(np.float64), "norm").pvalue > 1e-3
        assert np.abs(z).max() < 5.8  # 23-bit uniforms bound the tail
    # the radius and the angle: z1^2 + z2^2 is chi-square with 2 degrees of freedom
    r2 = z1.astype(np.float64) ** 2 + z2.astype(np.float64) ** 2
    assert stats.kstest(r2, "chi2", args=(2,)).pvalue > 1e-3
    assert np.array_equal(s.normal(purposes.DRIFT, 1, 200_000), z1)


def test_the_halves_uniforms_are_the_centres_of_their_top_23_bits_cells():
    """The uniforms of the two halves of each hash, built under a float's exponent, are the
    plain ``(top 23 bits + 1/2) / 2^23`` of each half, bit for bit, and never 0 or 1."""
    z = np.random.default_rng(2).integers(0, 2**64, 5_000, dtype=np.uint64, endpoint=False)
    z[:4] = [0, 2**64 - 1, 2**32 - 1, (2**32 - 1) << 32]  # the extreme cells of each half
    halves = z.view(np.uint32)
    high, low = (halves[1::2], halves[0::2]) if np.little_endian else (halves[0::2],
                                                                       halves[1::2])
    plain = [((h >> np.uint32(9)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0**-23)
             for h in (high, low)]
    out = np.empty((2, z.size), dtype=np.float32)
    got = purposes._uniform_halves(z.copy(), out)
    for g, p in zip(got, plain, strict=True):
        assert np.array_equal(g.view(np.uint32), p.view(np.uint32))
        assert g.min() > 0.0 and g.max() < 1.0


def test_a_range_of_users_draws_what_the_whole_population_draws_for_them():
    s = Streams(9)
    for draw in (s.uniform, s.normal, s.normal_pair):
        whole = draw(purposes.DRIFT, 4, 150_000)
        for users in (range(70_000, 140_001), range(5, 150_000, 7)):
            part = draw(purposes.DRIFT, 4, users)
            for w, p in zip(whole if isinstance(whole, tuple) else (whole,),
                            part if isinstance(part, tuple) else (part,), strict=True):
                assert np.array_equal(p, w[users.start:users.stop:users.step])


def test_users_below_a_rare_rate_follow_one_uniform_a_user():
    s, n, p = Streams(10), 400_000, 0.01
    users, u = s.below(p, purposes.SIGNAL, 3, n)
    assert np.all(np.diff(users) > 0) and users[0] >= 0 and users[-1] < n
    # as many as n Bernoulli(p) trials give (within 4 sd), spread evenly over the users,
    # each with a uniform on (0, p)
    assert abs(users.size - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert stats.kstest(users / n, "uniform").pvalue > 1e-3
    assert u.min() > 0.0 and u.max() < p
    assert stats.kstest(u / p, "uniform").pvalue > 1e-3
    # the gaps between them are geometric: P(gap = 1) = p
    assert abs(np.mean(np.diff(users) == 1) - p) < 4 * math.sqrt(p / users.size)
    # keyed: a smaller population keeps the first users' draws; other keys, other users
    few, fu = s.below(p, purposes.SIGNAL, 3, 1_000)
    assert np.array_equal(few, users[users < 1_000]) and np.array_equal(fu, u[:few.size])
    other, _ = s.below(p, purposes.SIGNAL, 4, n)
    assert np.intersect1d(other, users).size < 3 * n * p * p
    assert s.below(0.0, purposes.SIGNAL, 3, n)[0].size == 0
    assert s.below(p, purposes.SIGNAL, 3, 0)[0].size == 0
    with warnings.catch_warnings():  # a gap beyond int64 at a tiny rate is capped, not cast
        warnings.simplefilter("error")
        assert s.below(1e-19, purposes.SIGNAL, 3, n)[0].size == 0
    assert s.below(1.0, purposes.SIGNAL, 3, 50)[0].tolist() == list(range(50))


@pytest.mark.parametrize("lam", [1e-12, 1e-7, 1e-5, 1e-3, 0.3, 2.5])
def test_poisson_counts_at_each_cell_edge_are_the_quantile(lam, monkeypatch):
    """A count is decided on the hash against each CDF value's first cell: hashes just below,
    at and above every cell edge (1, 2, 3, 4 and more edges, by the rate) count as the
    Poisson quantile of their uniform."""
    edges = purposes._poisson_cells(lam)
    edges = edges[edges < purposes._CELLS]
    # each number of edges the counting treats apart: one to three compared, more searched
    few = {1e-12: 1, 1e-7: 2, 1e-5: 3, 1e-3: 4}
    assert (edges.size == few[lam]) if lam in few else (edges.size > 4)
    ends = np.array([0, purposes._CELLS - 1], dtype=np.uint64)
    one = np.uint64(1)
    cells = np.unique(np.concatenate([edges - one, edges, np.minimum(edges + one, ends[1]), ends]))
    z = (cells << np.uint64(11)) | np.uint64(2**11 - 1)  # the hash's low bits are not read
    s = Streams(4)
    monkeypatch.setattr(s, "_blocks", lambda *a: iter([(slice(0, z.size), z.copy())]))
    u = np.array([_cell_uniform(m) for m in cells])
    assert np.array_equal(s.poisson(lam, purposes.DEVICE_SWITCHES, 1, z.size),
                          poisson_quantile(lam, u))
