"""Random numbers: per-user common random numbers keyed by (seed, purpose, month).

Every draw that concerns a user is a keyed hash of the user's index under a key made of the
scenario seed, the purpose of the draw (one of the named constants below) and the month (and a
sub-key when one decision can be taken twice in a month). A user's draw is therefore the same
whichever other users are drawn and in whatever order: two strategies that open different
lines, roll different subsets or call the steps in another order still give user ``i`` the
same uniform for the same decision, so their paired difference measures the strategy and not
the noise (common random numbers for every figure, not only coverage). Prior art: Starsim's
per-decision streams indexed by agent slot (Klein et al. 2024, arXiv 2409.02086) and
Vivarium's simulant x decision point x time randomness.

The hash is SplitMix64's finaliser over ``user x golden + key`` (vectorised in NumPy, platform
independent, in blocks of :data:`BLOCK` users that stay in the core's cache), so drawing a
subset costs only its size. Uniforms take the top 53 bits and sit at the centre of their
cell, inside the open interval (0, 1); Poisson and Beta(2, b) draws are inversions of one
uniform each. A uniform compared with a rate (:meth:`Streams.chance`) and a Poisson count
are decided on the integer cell against the rate's first cell (:func:`cells_below`), the
same decisions without forming the float. Normals (behaviour's drift, the score's
indicators) come by Box-Muller from the two halves of one hash
(:meth:`Streams.normal_pair`, or its first half alone, :meth:`Streams.normal`). A rare
decision draws only for the users whose uniform falls below its rate
(:meth:`Streams.below`).

The population is synthesised once for all users from a sequential generator
(:func:`generator`): every user is drawn, so it is already the same for every strategy.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np

# --------------------------------------------------------------------------- purposes
# One home for the purposes of the per-user draws. Renaming one changes its draws.
DRIFT = "behaviour.drift"  # sub-key: the pair of attributes in behaviour.DRIFTING
STATUS = "behaviour.status"  # sub-key 0 dormancy, 1 ID expiry, 2 renewal
DEVICE_SWITCHES = "behaviour.device_switches"
ADOPTION = "release.adoption"
INDICATORS = "reevaluation.indicators"
FRAUDSTER = "fraud.fraudster"
REVIEW_ASK = "fraud.review_ask"
REVIEW_PASS = "fraud.review_pass"
SIGNAL = "fraud.signal"
SIGNAL_LEVEL = "fraud.signal_level"
ROLL = "credit.roll"  # cure or roll on, for lines in arrears
MISS = "credit.miss"  # a current borrower misses the bill
REPAY = "credit.repay"  # full, minimum or instalment
ACTIVATION = "credit.activation"
DRAW = "credit.draw"  # whether a line draws
DRAW_SHARE = "credit.draw_share"  # the share of the available limit drawn

PURPOSES = (DRIFT, STATUS, DEVICE_SWITCHES, ADOPTION, INDICATORS, FRAUDSTER,
            REVIEW_ASK, REVIEW_PASS, SIGNAL, SIGNAL_LEVEL, ROLL, MISS, REPAY, ACTIVATION, DRAW,
            DRAW_SHARE)

#: Sequential generators for the draws made once over every user (population synthesis and
#: latent risk): ``SeedSequence(seed, spawn_key=(i,))`` in this order.
GENERATORS = ("population", "risk")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))
_TWO_PI = np.float32(2.0 * math.pi)
#: Users hashed per block: the hash's eight passes stay in the core's cache (twice as fast
#: as whole-array passes at a million users).
BLOCK = 65_536


def generator(seed: int, name: str) -> np.random.Generator:
    """The sequential generator ``name`` (one of :data:`GENERATORS`) of ``seed``."""
    return np.random.Generator(np.random.PCG64(
        np.random.SeedSequence(seed, spawn_key=(GENERATORS.index(name),))))


def key(seed: int, purpose: str, month: int, sub: int = 0) -> np.uint64:
    """The 64-bit key of one decision: BLAKE2b of (seed, purpose, month, sub)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; allowed: {PURPOSES}")
    digest = hashlib.blake2b(f"{seed}|{purpose}|{month}|{sub}".encode(), digest_size=8)
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def keyed_hash(ids: np.ndarray, k: np.uint64) -> np.ndarray:
    """SplitMix64's finaliser over ``id x golden + k`` for each id: 64 well-mixed bits an id
    (uint64), block by block. The one hash behind every per-user draw and sticky bucket."""
    z = np.asarray(ids).astype(np.uint64)  # a copy: hashed in place below
    for a in range(0, z.size, BLOCK):
        _mix(z[a:a + BLOCK], k)
    return z


def _mix(z: np.ndarray, k: np.uint64) -> None:
    """``z <- finalise(z x golden + k)``, in place (uint64)."""
    with np.errstate(over="ignore"):
        z *= _GOLDEN
        z += k
    _finalise(z)


@functools.cache
def _golden_steps() -> np.ndarray:
    """``i x golden`` for ``i`` in ``0..BLOCK-1`` (uint64, mod 2^64): a block of
    consecutive users ``first + i`` hashes ``first x golden + k + i x golden``, one addition
    instead of counting the users, multiplying and adding the key (512 KB, made once)."""
    with np.errstate(over="ignore"):
        return np.arange(BLOCK, dtype=np.uint64) * _GOLDEN


def _size(users: np.ndarray | int | range) -> int:
    if isinstance(users, (int, np.integer)):
        return int(users)
    return len(users) if isinstance(users, range) else int(np.size(users))


def _finalise(z: np.ndarray) -> np.ndarray:
    """SplitMix64's mixing of ``z`` (uint64, in place)."""
    with np.errstate(over="ignore"):
        z ^= z >> _S30
        z *= _M1
        z ^= z >> _S27
        z *= _M2
        z ^= z >> _S31
    return z


class Streams:
    """The per-user random numbers of one run (one seed).

    ``users`` is an array of user indices, an int ``n`` for users ``0..n-1`` or a ``range``
    of users (a block of the population, step 1). Every method
    returns one value per user, in the order of ``users``; user ``i``'s value depends only on
    (seed, purpose, month, sub, i).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed})"

    def _blocks(self, purpose: str, month: int, users: np.ndarray | int | range, sub: int):
        """The keyed hash of ``users``, :data:`BLOCK` users at a time: (slice, uint64 block).
        Each draw is finished block by block, so its passes stay in the core's cache. The
        block is one buffer, reused: a caller reads (or changes) it before asking for the
        next, and keeps no reference to it."""
        k = key(self.seed, purpose, month, sub)
        if isinstance(users, (int, np.integer)):
            users = range(int(users))
        elif isinstance(users, range) and users.step != 1:
            users = np.asarray(users)
        first = users.start if isinstance(users, range) else None
        index = None if first is not None else np.asarray(users)
        n = _size(users)
        # one block's hash, reused block after block: the caller's to change until it asks
        # for the next
        hashed = np.empty(min(n, BLOCK), dtype=np.uint64)
        for a in range(0, n, BLOCK):
            b = min(a + BLOCK, n)
            z = hashed[:b - a]
            if first is not None:
                # users first + a + i: (first + a) x golden + k, plus i x golden
                start = np.uint64(((first + a) * int(_GOLDEN) + int(k)) % 2**64)
                np.add(_golden_steps()[:b - a], start, out=z)
                _finalise(z)
            else:
                np.copyto(z, index[a:b], casting="unsafe")  # as astype(uint64)
                _mix(z, k)
            yield slice(a, b), z

    def uniform(self, purpose: str, month: int, users: np.ndarray | int | range,
                sub: int = 0) -> np.ndarray:
        """Uniforms in the open interval (0, 1), 53 bits each (float64)."""
        out = np.empty(_size(users), dtype=np.float64)
        for at, z in self._blocks(purpose, month, users, sub):
            z >>= _S11
            _cell_value(z, out=out[at])
        return out

    def normal_pair(self, purpose: str, month: int, users: np.ndarray | int | range,
                    sub: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Two independent standard normals a user from one hash (float32), by Box-Muller on
        the top 23 bits of each half: exact float32 uniforms in (0, 1), so ``|z|`` stays
        below 5.8. For drifts and noise, where float32 and that tail are plenty."""
        return self._box_muller(purpose, month, users, sub, (np.cos, np.sin))

    def normal(self, purpose: str, month: int, users: np.ndarray | int | range,
               sub: int = 0) -> np.ndarray:
        """One standard normal a user: the first of :meth:`normal_pair` (the same numbers),
        without computing the second."""
        return self._box_muller(purpose, month, users, sub, (np.cos,))[0]

    def _box_muller(self, purpose: str, month: int, users: np.ndarray | int | range,
                    sub: int, trigs: tuple) -> tuple[np.ndarray, ...]:
        n = _size(users)
        outs = tuple(np.empty(n, dtype=np.float32) for _ in trigs)
        work = np.empty((2, min(n, BLOCK)), dtype=np.float32)
        for at, z in self._blocks(purpose, month, users, sub):
            radius, angle = _uniform_halves(z, work[:, :at.stop - at.start])
            np.log(radius, out=radius)
            radius *= np.float32(-2.0)
            np.sqrt(radius, out=radius)
            angle *= _TWO_PI
            for out, trig in zip(outs, trigs, strict=True):
                trig(angle, out=out[at])
                out[at] *= radius
        return outs

    def below(self, p: float, purpose: str, month: int, n: int,
              sub: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The users of ``0..n-1`` whose uniform for this decision falls below ``p``, in
        index order, and those uniforms (each uniform on (0, ``p``)): a rare decision
        (``u < rate`` for ``rate <= p``) without a draw for every user.

        The same law as one independent uniform a user: the gaps between successive users
        below ``p`` are geometric (by inversion, from a generator keyed by (seed, purpose,
        month, sub)) and a user's uniform below ``p`` is ``p`` times a uniform from a second
        generator of that key. Both are read in order from user 0, so user ``i``'s draw is
        the same in every population of more than ``i`` users and whichever users the
        decision then concerns. Draws at another ``p`` are other numbers: strategies share
        them user by user, futures with other rates do not."""
        if not 0.0 < p <= 1.0 or n <= 0:
            if p <= 0.0 or n <= 0:
                return np.empty(0, dtype=np.int64), np.empty(0)
            raise ValueError(f"p must be at most 1, not {p}")
        seed = np.random.SeedSequence([self.seed, int(key(self.seed, purpose, month, sub))])
        gaps_rng, level_rng = (np.random.Generator(np.random.PCG64(s)) for s in seed.spawn(2))
        log_stay = math.log1p(-p) if p < 1.0 else -math.inf
        found: list[np.ndarray] = []
        last = -1
        chunk = int(n * p + 6.0 * math.sqrt(n * p) + 64)
        while last < n - 1:
            # 1 - random() is in (0, 1]: the geometric number of trials to the next user
            trials = np.log1p(-gaps_rng.random(chunk)) / log_stay
            # a gap past n ends the search: capped there, no cast can overflow at tiny p
            np.clip(np.ceil(trials), 1.0, n + 1.0, out=trials)
            at = last + np.cumsum(trials).astype(np.int64)
            found.append(at)
            last = int(at[-1])
        users = np.concatenate(found)
        users = users[:np.searchsorted(users, n)]
        # (0, 1) from [0, 1): 1 - random() is in (0, 1]; the top value 1 has measure zero
        u = p * (1.0 - level_rng.random(users.size))
        return users, np.minimum(u, np.nextafter(p, 0.0))

    def chance(self, p: float | np.ndarray, purpose: str, month: int,
               users: np.ndarray | int | range, sub: int = 0) -> np.ndarray:
        """Whether each user's uniform for this decision falls below ``p`` (a rate, or one
        a user): ``uniform(...) < p`` exactly, compared on the uniform's 53-bit cell
        (:func:`cells_below`) without forming the float."""
        n = _size(users)
        out = np.empty(n, dtype=bool)
        limit = cells_below(p)
        per_user = limit.ndim > 0
        if per_user and limit.shape != (n,):
            raise ValueError(f"p must be one rate or one a user ({n}), not shape {limit.shape}")
        for at, z in self._blocks(purpose, month, users, sub):
            z >>= _S11
            np.less(z, limit[at] if per_user else limit, out=out[at])
        return out

    def poisson(self, lam: float, purpose: str, month: int, users: np.ndarray | int | range,
                sub: int = 0) -> np.ndarray:
        """Poisson(``lam``) counts by inversion of one uniform a user (int64):
        ``poisson_quantile(lam, uniform(...))``, counted on the uniform's 53-bit cell: the
        number of the cells above each CDF value (:func:`_poisson_cells`) at or below it."""
        n = _size(users)
        cells = _poisson_cells(float(lam)) if lam > 0 else np.empty(0, dtype=np.uint64)
        # compared with the whole hash: its top 53 bits reach a cell when the hash reaches
        # the cell shifted up; a cell of 2^53 (no uniform above a CDF value) none reaches
        tops = cells[cells < _CELLS] << _S11
        if tops.size == 0:  # a rate so small (or NaN) that every count is 0
            return np.zeros(n, dtype=np.int64)
        k = np.empty(n, dtype=np.int64)
        head = np.empty((2, min(n, BLOCK)), dtype=np.int8)
        for at, z in self._blocks(purpose, month, users, sub):
            count, reached = head[:, :at.stop - at.start]
            # the first few cells by comparison over every user (most counts are small),
            # in bytes; the rare users past them by a search
            np.greater_equal(z, tops[0], out=count.view(bool))
            for top in tops[1:3]:
                np.greater_equal(z, top, out=reached.view(bool))
                count += reached
            block = k[at]
            np.copyto(block, count)
            if tops.size > 3:
                more = np.flatnonzero(reached.view(bool))
                block[more] = np.searchsorted(tops, z[more], side="right")
        return k

    def beta2(self, b: float, purpose: str, month: int, users: np.ndarray | int | range,
              sub: int = 0) -> np.ndarray:
        """Beta(2, ``b``) draws by inversion of one uniform a user."""
        return beta2_quantile(b, self.uniform(purpose, month, users, sub))


def _uniform_halves(z: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The high and the low 32 bits of each of ``z`` (uint64, overwritten) as float32
    uniforms at the centre of their cell in (0, 1), into the two rows of ``out`` (float32,
    of ``z``'s size): the top 23 bits ``k`` of a half give ``(2k + 1) / 2^24``, which needs
    24 significant bits, so it is exact (24 bits would round the top cell to 1).

    Under the exponent of 1.0, ``k`` is the float32 ``1 + k / 2^23``, exactly; less
    ``1 - 2^-24`` that is the uniform, exactly: no integer conversion. The halves are first
    copied apart, so every pass is contiguous (on a strided view of them the shift and the
    conversion cost about twice as much)."""
    bits = out.view(np.uint32)
    high, low = bits
    np.copyto(low, z, casting="unsafe")  # the low 32 bits
    low >>= np.uint32(9)
    z >>= np.uint64(41)
    np.copyto(high, z, casting="unsafe")
    bits |= np.uint32(0x3F800000)
    out -= np.float32(1.0 - 2.0**-24)
    return out[0], out[1]


_CELLS = 2**53  # the uniforms' cells: uniform m of 0..2^53-1 is (m + 1/2) / 2^53


def _cell_value(m: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The uniform of each cell ``m`` (uint64), ``(m + 1/2) / 2^53``, into ``out`` (float64)
    when given: the uniforms of :meth:`Streams.uniform`."""
    # in one pass that converts: scaling by a power of two is exact, so this rounds once,
    # like the two-step sum
    u = np.multiply(m, 2.0**-53, out=out, dtype=np.float64)
    u += 2.0**-54
    # the top cell's centre, 1 - 2^-54, rounds to 1.0: keep it in the open interval
    return np.minimum(u, 1.0 - 2.0**-53, out=u)


def cells_below(p: float | np.ndarray) -> np.ndarray:
    """The number of cells whose uniform is below ``p``, for each ``p`` (uint64): a
    uniform is below ``p`` exactly when its cell is below this. Exact: the cell is
    estimated from ``p x 2^53``, then stepped up to the first whose uniform (computed as
    :meth:`Streams.uniform` does) reaches ``p``."""
    if np.ndim(p) == 0:  # one rate, asked for again and again (each block, each month)
        return np.uint64(_first_cell_at_or_above(float(p)))
    shape = np.shape(p)
    p = np.atleast_1d(np.asarray(p, dtype=np.float64))
    # no uniform is below NaN: zero cells
    m = np.clip(np.nan_to_num(np.floor(p * _CELLS) - 2.0), 0.0, _CELLS).astype(np.uint64)
    for _ in range(6):  # the estimate is within two cells; the uniform rises monotonically
        low = (m < _CELLS) & (_cell_value(np.minimum(m, _CELLS - 1)) < p)
        if not low.any():
            return m.reshape(shape)
        m += low
    raise AssertionError("cells_below did not settle")  # pragma: no cover


@functools.lru_cache(maxsize=256)
def _first_cell_at_or_above(p: float) -> int:
    """:func:`cells_below` of one rate, in Python's floats (the same IEEE doubles)."""
    if not p > 0.0:  # NaN too: no uniform is below it
        return 0
    if p >= 1.0:  # every uniform is below 1
        return _CELLS
    m = max(math.floor(p * _CELLS) - 2, 0)
    while m < _CELLS and min(float(m) * 2.0**-53 + 2.0**-54, 1.0 - 2.0**-53) < p:
        m += 1
    return m


@functools.lru_cache(maxsize=16)
def _poisson_cells(lam: float) -> np.ndarray:
    """For each value of the Poisson(``lam``) CDF table of :func:`poisson_quantile`, the
    first cell whose uniform lies above it (sorted, uint64): a draw's count is the number
    of these at or below its cell."""
    cdf = _poisson_cdf(lam)
    return cells_below(np.nextafter(cdf[:-1], 2.0))


def _poisson_cdf(lam: float) -> list[float]:
    """The Poisson(``lam``) CDF from 0 up to where the remaining mass is below the
    resolution of a 53-bit uniform, then 1.0."""
    cdf, p, k = [], math.exp(-lam), 0
    total = p
    while total < 1.0 - 2.0**-54 and k < lam + 40.0 * math.sqrt(lam) + 40:
        cdf.append(total)
        k += 1
        p *= lam / k
        total += p
    cdf.append(1.0)
    return cdf


def poisson_quantile(lam: float, u: np.ndarray) -> np.ndarray:
    """The Poisson(``lam``) quantile of ``u``: the least k with CDF(k) >= u."""
    if lam <= 0:
        return np.zeros(u.shape, dtype=np.int64)
    cdf = _poisson_cdf(lam)
    # k is the number of CDF values below u: most draws fall in the first few cells, which
    # are counted by comparison; the rest search the CDF
    head = cdf[:3]
    k = (u > head[0]).astype(np.int64)
    for c in head[1:]:
        k += u > c
    more = np.flatnonzero(u > head[-1])
    k[more] = np.searchsorted(np.asarray(cdf), u[more], side="left")
    return k


#: Points of the table that starts the Beta(2, b) quantile's Newton steps.
BETA2_GRID = 4096


def beta2_quantile(b: float, u: np.ndarray, iterations: int = 50) -> np.ndarray:
    """The Beta(2, ``b``) quantile of ``u``: solves ``1 - (1 - x)^b (1 + b x) = u``.

    Newton steps kept inside a bisection bracket (the CDF is monotone), on the draws not yet
    converged to 1e-12, from the quantile interpolated (linearly, on the even grid) in a
    table of :data:`BETA2_GRID` exact quantiles for this ``b`` (:func:`_beta2_table`): two
    steps for most draws.
    """
    u = np.asarray(u, dtype=np.float64)
    _, table = _beta2_table(float(b))
    # linear between the table's points (an even grid: the cell is u x BETA2_GRID)
    at = u * BETA2_GRID
    cell = np.minimum(at.astype(np.intp), BETA2_GRID - 1)
    at -= cell
    low = table[cell]
    start = table[cell + 1]
    start -= low
    start *= at
    start += low
    return _beta2_newton(b, u, start, iterations)


@functools.lru_cache(maxsize=8)
def _beta2_table(b: float) -> tuple[np.ndarray, np.ndarray]:
    """The even grid of [0, 1] and the exact Beta(2, ``b``) quantiles on it, from the tail
    approximations (``x^2 b (b + 1) / 2`` below the mode, ``(1 - x)^b (1 + b)`` above)."""
    grid = np.linspace(0.0, 1.0, BETA2_GRID + 1)
    inner = grid[1:-1]
    table = np.concatenate([[0.0], _beta2_newton(b, inner, _beta2_tails(b, inner), 200),
                            [1.0]])
    return grid, table


def _beta2_tails(b: float, u: np.ndarray) -> np.ndarray:
    """A first guess at the Beta(2, ``b``) quantile from its two tail approximations."""
    low = np.sqrt(2.0 * u / (b * (b + 1.0)))
    high = 1.0 - ((1.0 - u) / (1.0 + b)) ** (1.0 / b)
    return np.where(low < 1.0 / (1.0 + b), low, high)


def _beta2_newton(b: float, u: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    """Newton steps on the Beta(2, ``b``) CDF from ``x`` towards the quantile of ``u``,
    inside a bisection bracket, until each step moves less than 1e-12 (relative).

    With ``L = log(1 - x)`` and ``p = exp(b L) = (1 - x)^b``: the CDF is
    ``1 - p (1 + b x)`` and the density ``b (b + 1) x p / (1 - x)``. While most draws
    still move (the first two steps from the table's start) a step runs over all of them
    and keeps the moving ones' results; then over the moving ones alone: the same numbers
    either way, without gathering and scattering nearly every draw. A step over all of
    them also moves the brackets of the draws that had stopped; their steps are thrown away
    (a stopped draw never moves again), so those brackets never reach a result."""
    x = np.clip(x, 1e-12, 1.0 - 1e-12)
    lo, hi = np.zeros(u.size), np.ones(u.size)
    moving = None  # every draw
    for done in range(iterations):
        if moving is not None and np.count_nonzero(moving) * 2 < u.size:
            return _beta2_sparse(b, u, x, lo, hi, np.flatnonzero(moving), iterations - done)
        new = _beta2_step(b, u, x, lo, hi)
        step = _beta2_moves(new, x)
        if moving is None:
            moving = step
        else:  # the draws that had stopped keep their values
            stopped = np.flatnonzero(~moving)
            new[stopped] = x[stopped]
            moving &= step
        x = new
        if not moving.any():
            break
    return x


def _beta2_sparse(b: float, u: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  todo: np.ndarray, iterations: int) -> np.ndarray:
    """The last Newton steps of :func:`_beta2_newton`, on the draws ``todo`` alone."""
    for _ in range(iterations):
        xt, lo_t, hi_t = x[todo], lo[todo], hi[todo]
        new = _beta2_step(b, u[todo], xt, lo_t, hi_t)
        x[todo], lo[todo], hi[todo] = new, lo_t, hi_t
        todo = todo[_beta2_moves(new, xt)]
        if todo.size == 0:
            break
    return x


def _beta2_moves(new: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether the step from ``x`` to ``new`` moved more than 1e-12 (relative)."""
    step = np.subtract(new, x)
    np.abs(step, out=step)
    tol = np.maximum(x, 1e-3)
    tol *= 1e-12
    return np.greater(step, tol)


def _beta2_step(b: float, u: np.ndarray, x: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> np.ndarray:
    """One bracketed Newton step of :func:`_beta2_newton`: the new ``x``; the bracket
    ``lo <= x <= hi`` narrowed in place (``lo`` to ``x`` where the CDF is below ``u``,
    ``hi`` to ``x`` where above).

    The bracket holds ``x`` (the start is in [0, 1], each step stays in its bracket), so
    the narrowing is a maximum and a minimum: ``max(lo, x - [f >= 0])`` and
    ``min(hi, x + [f <= 0])`` (``x - 1 <= 0 <= lo``, ``x + 1 >= 1 >= hi``; ``f``, the CDF
    less ``u``, is finite). The same numbers as choosing by the sign of ``f`` with
    ``np.where``, without its unpredictable branches (a third of the step's time)."""
    one_minus = np.subtract(1.0, x)
    np.maximum(one_minus, 1e-300, out=one_minus)
    p = np.log(one_minus)
    p *= b
    np.exp(p, out=p)
    f = np.multiply(x, b)
    f += 1.0
    f *= p
    np.subtract(1.0, f, out=f)
    f -= u  # 1 - p (1 + b x) - u
    side = np.greater_equal(f, 0.0, out=np.empty(x.size))
    np.subtract(x, side, out=side)
    np.maximum(lo, side, out=lo)
    np.less_equal(f, 0.0, out=side)
    side += x
    np.minimum(hi, side, out=hi)
    pdf = np.maximum(x, 1e-300)
    pdf *= b * (b + 1.0)
    pdf *= p
    pdf /= one_minus
    np.maximum(pdf, 1e-300, out=pdf)
    np.divide(f, pdf, out=f)
    new = np.subtract(x, f, out=f)
    inside = np.greater(new, lo)
    inside &= np.less(new, hi)
    if not inside.all():  # outside the bracket: bisect it
        out = np.flatnonzero(~inside)
        new[out] = 0.5 * (lo[out] + hi[out])
    return new
