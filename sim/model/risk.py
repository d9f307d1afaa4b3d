"""The monthly default hazard of a credit line: individual x lifecycle x environment.

* **individual**: ``pop.hazard``, the user's latent hazard (population mean
  ``risk.monthly_hazard``), fixed at the start (:func:`sim.model.population.assign_latent_risk`);
* **lifecycle**: a multiplier by months on book (seasoning, ``risk.lifecycle``): new lines
  rarely default, defaults ramp up over 3-6 months, peak around 12-18 and then decline;
* **environment**: the macro factor of the calendar month (``macro.shocks``), the same for
  every line alive that month.

Vintage quality is not a parameter: it is the mean individual hazard of the users each batch
invites. The default of a line at months on book ``t`` comes from a payment missed three
monthly rolls earlier (1-30 -> 31-60 -> 61-90 -> 90+), so the chance of missing a bill at
months on book ``t`` is set to deliver the hazard at ``t + ROLL_MONTHS``.

PD (:func:`default_probability`) follows the same chain forward from each line's state, so
the bank's expected loss is the model's own dynamics, not ``1 - (1 - h)^12``.
Nothing here does I/O or draws random numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.model import scoring
from sim.model.population import Population
from sim.scenario import Scenario
from sim.scenario.scoring import Lifecycle

#: Monthly rolls from a missed payment (1-30 days past due) to the default (90+).
ROLL_MONTHS = 3


def structural_score(pop: Population, scenario: Scenario) -> np.ndarray:
    """What a user's behaviour and attributes say about creditworthiness: the score's six
    modules (income, credit history, payments, assets, stability, debt) and its behaviour
    penalties (volatility, night activity, device switches, dormancy then a burst, no
    utility bills), without the segment offsets fitted to access rates (and so without the
    unknown-sources deduction, which is read along the device grades' offsets) and without
    the transient "other indicators". Latent risk is built on this, so refitting
    an access offset moves access, never hazards; a segment (region, device grade, data
    sharing) differs in risk only through who is in it. (:func:`scoring.evaluate` gives it
    beside a scoring, from the same module scores.)"""
    return scoring.evaluate(pop, scenario, structural=True).structural


def lifecycle_curve(spec: Lifecycle, months: int) -> np.ndarray:
    """Multipliers for months on book 0..``months`` (index = months on book), normalised to
    mean 1 over months on book 1..``spec.normalise_months``. Month 0 (the month of opening)
    carries no balance and has multiplier 0."""
    top = max(months, spec.normalise_months)
    t = np.arange(1, top + 1, dtype=np.float64)
    if spec.form == "flat":
        raw = np.ones_like(t)
    elif spec.form == "table":
        table = np.asarray(spec.table, dtype=np.float64)
        raw = table[np.minimum(t.astype(int), table.size) - 1]
    else:
        x = t / spec.scale
        raw = x ** (spec.shape - 1.0) / (1.0 + x ** spec.shape)
    raw = raw / raw[:spec.normalise_months].mean()
    return np.concatenate([[0.0], raw])[: months + 1]


def lifecycle(mob: np.ndarray, spec: Lifecycle) -> np.ndarray:
    """Lifecycle multiplier at months on book ``mob`` (integers >= 0)."""
    mob = np.asarray(mob, dtype=np.int64)
    curve = lifecycle_curve(spec, int(mob.max(initial=0)))
    return curve[np.clip(mob, 0, None)]


def peak_month(spec: Lifecycle, months: int = 120) -> int:
    """Months on book at which the lifecycle multiplier is highest."""
    return int(np.argmax(lifecycle_curve(spec, months)))


def hazard(individual: np.ndarray, mob: np.ndarray, macro: float, spec: Lifecycle) -> np.ndarray:
    """Monthly default hazard at months on book ``mob``: individual x lifecycle x macro."""
    return individual.astype(np.float64) * lifecycle(mob, spec) * macro


#: Lines per block of the PD chain: its thirty-odd float32 working arrays (about 2 MB) stay
#: near the core; half the calls of 8,192 (3-5% off the expected loss at a million users),
#: and no slower than 32,768 or 65,536.
CHAIN_BLOCK = 16_384


#: The cure columns of some lines, as :func:`default_probability` takes them: (lines, 3),
#: the three columns, or a function of the lines' indices and individual hazards giving
#: their three columns and roll-through.
Cures = (np.ndarray | list[np.ndarray]
         | Callable[[np.ndarray, np.ndarray], tuple[list[np.ndarray], np.ndarray]])


def default_probability(*, individual: np.ndarray, mob: np.ndarray, state: np.ndarray,
                        has_balance: np.ndarray, cures: Cures, macro: float,
                        spec: Lifecycle, horizons: tuple[int, ...], full: float,
                        draw_rate: np.ndarray, through: np.ndarray | None = None,
                        certain: np.ndarray | None = None) -> np.ndarray:
    """Chance that each live line reaches 90+ within each horizon (months), from the chain
    the simulation runs: shape (lines, len(horizons)).

    States: 0 current with a balance, 1 current without, 2/3/4 = 1-30/31-60/61-90 days past
    due, 5 default (absorbing). A current line with a balance misses its bill with
    ``hazard(mob + ROLL_MONTHS) / through`` (the engine's entry chance), else repays in full
    with ``full`` and draws again with ``draw_rate``; a line without a balance draws with
    ``draw_rate``; a line in arrears cures (back to current with a balance) or rolls on. The
    environment is held at today's ``macro``. ``certain`` marks lines that never repay
    (fraud: they miss every bill, never cure, draw at once); lines already at 90+ have PD 1.
    ``cures`` is (lines, 3), or its three columns, or a function giving the three columns
    and the roll-through of some lines from their indices and ``individual`` hazards
    (``through``, the roll-through of every line, is then not given): the chain asks it for
    one block's lines at a time, which it computes in cache and for the lines it runs only.

    The chain runs in float32 on blocks of :data:`CHAIN_BLOCK` lines (PDs to about 1e-6).
    Lines whose PD the chain would leave exact are not run: 90+ (PD 1: nothing is added to
    a default) and lines without a balance that cannot draw (PD 0: they never leave). The
    others run in one months-on-book order (all the lines given: a whole book's are a few
    windows a block, not a few dozen), so a block's lines share a few lifecycle windows
    (:func:`_chain`). A line's arithmetic is the same whichever lines share its block, so
    neither the skipping nor the order changes a PD.
    """
    n = individual.size
    if n == 0:
        return np.zeros((n, len(horizons)))
    top = max(horizons)
    curve = lifecycle_curve(spec, int(mob.max(initial=0)) + top + ROLL_MONTHS).astype(np.float32)
    start = np.minimum(state, 4).astype(np.int8)
    start += 1
    start -= ((state == 0) & has_balance).view(np.int8)  # from 1 to 0: no scattered write
    # by horizon (rows), returned transposed: each horizon's PDs are one contiguous column
    out = np.empty((len(horizons), n))
    out[:] = start == 5  # PD 1 at 90+, 0 until the chain below says otherwise
    d = np.where(certain, 1.0, draw_rate) if certain is not None else draw_rate
    order = _run_order(mob, (start < 5) & ((start != 1) | (d != 0.0)))
    if not callable(cures):
        columns = [cures[:, j] for j in range(3)] if isinstance(cures, np.ndarray) else cures
        cures = _gathered(columns, through)
    for a in range(0, order.size, CHAIN_BLOCK):
        at = order[a:a + CHAIN_BLOCK]
        latent = individual[at]
        columns, rolls = cures(at, latent)
        base = (latent.astype(np.float64) * macro
                / np.maximum(rolls, 1e-12)).astype(np.float32)
        pd = _block(start[at], base, columns, d[at], full, mob[at] + ROLL_MONTHS, curve,
                    horizons, None if certain is None else certain[at])
        for row, values in zip(out, pd, strict=True):
            row[at] = values  # a row at a time: twice as fast as out[:, at]
    return out.T


def _gathered(columns: list[np.ndarray], through: np.ndarray) -> Callable:
    """The :data:`Cures` function of cure columns and a roll-through given for every line."""
    return lambda at, _: ([column[at] for column in columns], through[at])


def _block(start: np.ndarray, base: np.ndarray, cures: list[np.ndarray], d: np.ndarray,
           full: float, at: np.ndarray, curve: np.ndarray, horizons: tuple[int, ...],
           certain: np.ndarray | None) -> np.ndarray:
    """:func:`_chain` on one block of the run order, its inputs made float32 (the cure
    columns as rows, the lines that never repay with no cure and no repayment in full)."""
    c = np.empty((3, start.size), dtype=np.float32)
    for j, column in enumerate(cures):
        c[j] = column
    f = np.full(start.size, full, dtype=np.float32)
    if certain is not None and certain.any():
        c[:, certain] = 0.0
        f[certain] = 0.0
        certain = np.flatnonzero(certain)
    else:
        certain = None
    return _chain(start, base, c, d.astype(np.float32), f, at, curve, horizons, certain)


def _run_order(mob: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Indices of the lines marked ``run``, by months on book (index order within a month).
    Months on book fit a byte or two, which NumPy's stable sort orders by radix; the lines
    not run sort last, under a key above every month."""
    top = int(mob.max(initial=0)) + 1
    small = np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int64
    key = np.where(run, mob.astype(small), small(top))  # top in the key's type: no wrap
    return np.argsort(key, kind="stable")[:np.count_nonzero(run)]


def _chain(start: np.ndarray, base: np.ndarray, c: np.ndarray, d: np.ndarray, f: np.ndarray,
           at: np.ndarray, curve: np.ndarray, horizons: tuple[int, ...],
           certain: np.ndarray | None) -> np.ndarray:
    """The PD chain of one block of lines (float32): see :func:`default_probability`. ``c``
    holds the three cure columns as rows, ``at`` (each line's lifecycle index at step 0) is
    sorted and ``certain`` indexes the lines that never repay. Returns (horizons, lines).

    A line 31-60 days late was 1-30 late a step before and rolled on (``r0 = 1 - c0``); one
    61-90 late, two steps before, and rolled on twice. So the chain keeps only the mass
    that entered 1-30 in each of the last three steps (``a1``, ``a2``, ``a3``, newest
    first) and the products of the rolls and cures on the way (``g1 = r0 c1``,
    ``g2 = r0 r1 c2``, ``g3 = r0 r1 r2``). Each step, term by term and in order::

        e     = min(base x curve[at + k], 1)     (1 for the certain)
        enter = cur x e                          (misses the bill: 1-30 days late)
        pay   = cur - enter
        move  = pay x lapse - idle x d           (repaid and left idle, less drawn again)
        idle  = idle + move
        cur   = pay - move + a1 x c0 + a2 x g1 + a3 x g2
        rolled = rolled + a3
        a1, a2, a3 = enter, a1, a2

    and the PD at horizon ``h`` is ``dflt + g3 x rolled``: what entered 1-30 three steps
    before and rolled through to 90+. Lines that start 31-60 or 61-90 days late add their
    known cures and defaults in steps 1 and 2. Fifteen float32 operations a step, in place
    in a few buffers (no array is allocated inside the loop). Lines with the same ``at``
    take the same lifecycle value at every step: ``e`` is one product with a scalar per run
    of them, and the cap at 1 is applied where the run's largest product reaches it
    (rounding is monotone, so the others cannot)."""
    n = start.size
    out = np.empty((len(horizons), n))
    one = np.float32(1.0)
    # one contiguous array per state and per cure column
    cur, idle, a1, late2, late3, dflt = ((start == j).astype(np.float32) for j in range(6))
    c0, c1, c2 = c
    r0, r1, r2 = one - c
    g1 = r0 * c1
    both = r0 * r1
    g2 = both * c2
    g3 = both * r2
    lapse = f * (one - d)
    # the cures and defaults of the lines that start 31-60 or 61-90 days late (steps 1, 2)
    late = None
    if late2.any() or late3.any():
        late = ((late2 * c1 + late3 * c2, late3 * r2),
                (late2 * (r1 * c2), late2 * (r1 * r2)))
    want = {h: i for i, h in enumerate(horizons)}
    edges = np.flatnonzero(at[1:] != at[:-1]) + 1
    runs = [(int(lo), int(hi), curve[int(at[lo]):], base[lo:hi].max())
            for lo, hi in zip([0, *edges], [*edges, n], strict=True)]
    entry, enter, move, term = (np.empty(n, dtype=np.float32) for _ in range(4))
    a2, a3, rolled = (np.zeros(n, dtype=np.float32) for _ in range(3))
    for k in range(1, max(horizons) + 1):
        for lo, hi, window, largest in runs:
            np.multiply(base[lo:hi], window[k], out=entry[lo:hi])
            if largest * window[k] > one:
                np.minimum(entry[lo:hi], one, out=entry[lo:hi])
        if certain is not None:
            entry[certain] = one
        np.multiply(cur, entry, out=enter)
        cur -= enter  # pay
        np.multiply(cur, lapse, out=move)
        np.multiply(idle, d, out=term)
        move -= term
        idle += move
        cur -= move
        for entered, cure in ((a1, c0), (a2, g1), (a3, g2)):
            np.multiply(entered, cure, out=term)
            cur += term
        rolled += a3
        if late is not None and k <= 2:
            cur += late[k - 1][0]
            dflt += late[k - 1][1]
        a1, a2, a3, enter = enter, a1, a2, a3
        if k in want:
            np.multiply(rolled, g3, out=term)
            np.add(dflt, term, out=out[want[k]])  # a float32 sum, kept as float64
    return out
