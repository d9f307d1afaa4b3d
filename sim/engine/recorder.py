"""The recorder: what a run collects at each month end, and the tables it makes.

Counts are weighted: every simulated user stands for ``population.weight`` real users.
Segment counts use ``np.bincount`` over the category codes, so a snapshot costs a few passes
over the arrays whatever the number of segments.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from sim.engine import arms
from sim.engine.tables import Table, columns_of, rows_frame, rows_table
from sim.model import capital, credit, fraud
from sim.model.credit import FEN, line_losses
from sim.model.population import DIMENSIONS, FIXED, Population
from sim.scenario import Scenario

MONTHLY_COLUMNS = (
    "date", "month", "quarter", "population", "eligible", "invited", "visible",
    "gained_access", "lost_access", "invited_share", "visible_share", "eligible_share",
    "new_invites", "batches",
)
SEGMENT_COLUMNS = ("date", "month", "dimension", "value", "population", "eligible", "invited",
                   "visible", "access_rate", "visible_rate", "borrowers", "defaults", "loss")
#: Credit columns of the monthly table (issue 3), in order. Money in CNY, counts weighted.
CREDIT_COLUMNS = (
    "active", "borrowers", "new_activations", "opening_balance", "draws", "interest_revenue",
    "repayments", "charge_offs", "outstanding", "limit_total", "dpd30", "dpd90",
    "new_defaults", "cum_defaults", "default_balance", "default_rate_12m",
    "stock_default_ratio", "lagged_default_rate", "loss_rate_12m", "recoveries",
    "charge_off_loss", "expected_loss", "ecl_12m", "ecl_lifetime", "ecl_allowance", "stage1",
    "stage2", "stage3", "ead", "funding_cost", "net_income", "overdue_episodes", "cures",
    "early_repayments", "limit_raises", "cap_cuts", "r1_hidden", "r2_hidden", "r3_closed",
    "r1_signals", "r2_signals", "r3_signals", "reviews", "reviews_passed", "wrongly_blocked",
    "macro_factor", "capital_bound", "capital_limit", "npl_ratio", "fraud_defaults",
)
#: Credit inputs in fen (converted to CNY); every other count is weighted as users.
MONEY = {"opening_balance", "draws", "interest_revenue", "repayments", "charge_offs",
         "outstanding", "limit_total", "default_balance", "recoveries", "charge_off_loss",
         "expected_loss", "ecl_12m", "ecl_lifetime", "ecl_allowance", "stage1", "stage2",
         "stage3", "ead", "funding_cost"}
UNWEIGHTED = {"macro_factor", "capital_bound", "capital_limit"}  # capital_limit: CNY, NaN if none
VINTAGE_COLUMNS = ("vintage", "vintage_date", "date", "month", "mob", "accounts", "opened",
                   "outstanding", "dpd30_rate", "dpd90_cum_rate", "loss_rate", "immature",
                   "defaults", "opened_defaults", "dpd30_opened", "drawn", "loss")


def band_labels(edges: list[float]) -> tuple[str, ...]:
    """Labels of the bands cut by ``edges``: '<a', 'a-b', ..., '>=z'."""
    def fmt(x: float) -> str:
        return f"{x:g}"
    inner = [f"{fmt(a)}-{fmt(b)}" for a, b in zip(edges, edges[1:], strict=False)]
    return (f"<{fmt(edges[0])}", *inner, f">={fmt(edges[-1])}")


def segment_codes(pop: Population, bands: dict[str, list[float]],
                  crosses: list[tuple[str, str]] = ()):
    """(dimension, codes, labels) for every categorical attribute, every banded one and every
    crossed pair of categorical attributes (``"a x b"``, codes ``a * len(b) + b``)."""
    for dim, labels, _, codes in segment_dims(pop, bands, crosses):
        yield dim, codes(), labels


def segment_dims(pop: Population, bands: dict[str, list[float]],
                 crosses: list[tuple[str, str]] = ()):
    """(dimension, labels, fixed, codes) for every segment dimension, in table order:
    ``codes(at)`` computes the codes of the users ``at`` (a slice or an index array, every
    user by default), ``fixed`` says they never change during a run (read from
    :data:`sim.model.population.FIXED` attributes alone)."""
    every = slice(None)
    for dim in DIMENSIONS:
        yield dim, pop.labels[dim], dim in FIXED, lambda at=every, dim=dim: getattr(pop, dim)[at]
    yield ("utility_payer", ("no", "yes"), True,
           lambda at=every: pop.utility_payer[at].view(np.int8))
    for name, edges in bands.items():
        yield (name, band_labels(edges), name in FIXED,
               lambda at=every, name=name, edges=edges: band_codes(getattr(pop, name)[at], edges))
    for a, b in crosses:
        labels = tuple(f"{x} x {y}" for x in pop.labels[a] for y in pop.labels[b])
        # in int8 when the pair's codes fit (int8 times a Python int stays int8)
        wide = np.int8 if len(labels) <= np.iinfo(np.int8).max else np.int16
        yield (f"{a} x {b}", labels, a in FIXED and b in FIXED,
               lambda at=every, a=a, b=b, wide=wide: getattr(pop, a)[at].astype(wide)
               * len(pop.labels[b]) + getattr(pop, b)[at])


def band_codes(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Band index of each value (``np.digitize`` semantics); a few comparisons beat a search
    (summed as int8: a bool added to int8 is cast element by element)."""
    codes = at_least(values, edges[0]).view(np.int8)
    for edge in edges[1:]:
        codes += at_least(values, edge).view(np.int8)
    return codes


def at_least(values: np.ndarray, edge: float) -> np.ndarray:
    """``values >= edge``; for integer values, against the integer ``ceil(edge)`` (the same
    mask) when the type holds it: comparing integers with a float casts each of them
    (four times slower)."""
    if values.dtype.kind in "iu":
        info, bound = np.iinfo(values.dtype), math.ceil(edge)
        if info.min <= bound <= info.max:
            return values >= bound
    return values >= edge


#: The per-user flags a snapshot counts in every segment, as bits of the status code.
STATUS = ("eligible", "invited", "visible", "borrowers", "defaults")


def status_bits(masks: list[np.ndarray], first: int = 0) -> np.ndarray:
    """Pack boolean masks into one uint8 code per user: bit ``first + i`` is ``masks[i]``.

    Block by block (in cache), each bit placed by multiplying by its power of two: NumPy
    vectorises a uint8 product, not a uint8 shift (ten times slower)."""
    status = np.empty(masks[0].shape, dtype=np.uint8)
    bit = np.empty(min(status.size, COUNT_BLOCK), dtype=np.uint8)
    for a in range(0, status.size, COUNT_BLOCK):
        at = slice(a, a + COUNT_BLOCK)
        out = status[at]
        np.multiply(masks[0][at].view(np.uint8), 1 << first, out=out)
        for i, mask in enumerate(masks[1:], start=first + 1):
            np.multiply(mask[at].view(np.uint8), 1 << i, out=bit[:out.size])
            out |= bit[:out.size]
    return status


#: Most (segment combination x status) bins of one joint bincount: small enough to stay in
#: cache, large enough to count several dimensions in one pass over the population.
JOINT_BINS = 8192


def joint_groups(sizes: list[int], bits: int) -> list[list[int]]:
    """Consecutive units (of ``sizes`` codes each) grouped so each group's joint table has
    at most JOINT_BINS."""
    groups: list[list[int]] = []
    size = 0
    for i, k in enumerate(sizes):
        if groups and size * k << bits <= JOINT_BINS:
            groups[-1].append(i)
            size *= k
        else:
            groups.append([i])
            size = k
    return groups


def joint_units(dims: list[tuple], crosses: list[tuple[str, str]]
                ) -> tuple[list[list[int]], dict[int, tuple[int, int]]]:
    """The units of dimensions counted together (indices into ``dims``, from
    :func:`segment_dims`, whose last ``len(crosses)`` are the crossed pairs), and the
    crossed pairs summed from their parts: ``{cross: (a, b)}``.

    A pair ``a x b`` whose parts are in no other summed pair is the unit ``[a, b]`` (its
    code ``a * len(b) + b`` is theirs side by side in a joint table): its counts are sums of
    the table, without a pass of their own. Every other dimension is a unit alone, in table
    order (a pair's unit where its first part was)."""
    first = len(dims) - len(crosses)
    at = {dims[i][0]: i for i in range(first)}
    summed: dict[int, tuple[int, int]] = {}
    paired: dict[int, list[int]] = {}  # a pair's unit, at its first part
    taken: set[int] = set()
    for j, (a, b) in enumerate(crosses):
        ia, ib = at[a], at[b]
        if ia not in taken and ib not in taken:
            summed[first + j] = (ia, ib)
            paired[min(ia, ib)] = [ia, ib]
            taken |= {ia, ib}
    units = [paired.get(i, [i]) for i in range(len(dims))
             if i in paired or (i not in taken and i not in summed)]
    return units, summed


#: Users per block of the joint segment count: the block's codes, status and keys stay in
#: the core's cache.
COUNT_BLOCK = 65_536

#: The codes of some users: ``codes(at)`` for a slice (or an index array) of the population.
Codes = Callable[[slice], np.ndarray]


def joint_block(codes: list[Codes], ks: list[int]) -> Codes:
    """The mixed-radix code of several dimensions (``codes[0] x ks[1] x ... + codes[-1]``),
    as a function of the users ``at``: in the smallest of int8, int16 and int64 that holds
    ``prod(ks)`` values (the narrower, the cheaper each step)."""
    size = int(np.prod(ks))
    wide = next(t for t in (np.int8, np.int16, np.int64) if size <= np.iinfo(t).max)

    def joint(at: slice) -> np.ndarray:
        key = codes[0](at).astype(wide)
        for c, k in zip(codes[1:], ks[1:], strict=True):
            key *= k
            key += c(at)
        return key
    return joint


def joint_code(codes: list[Codes], ks: list[int], n: int) -> np.ndarray:
    """:func:`joint_block` of the ``n`` users, block by block, kept in the smallest unsigned
    integer type that holds ``prod(ks)`` values."""
    joint = np.empty(n, dtype=np.min_scalar_type(max(int(np.prod(ks)) - 1, 0)))
    block = joint_block(codes, ks)
    for a in range(0, n, COUNT_BLOCK):
        at = slice(a, a + COUNT_BLOCK)
        joint[at] = block(at)
    return joint


def status_tables(joints: list[Codes], sizes: list[int], status: np.ndarray,
                  bits: int) -> list[np.ndarray]:
    """For each joint code (``joints[g](at)``, codes ``0..sizes[g]-1``), the users per
    (code, status) pair: ``table[code << bits | status]``, with ``status`` from
    :func:`status_bits` (below ``2**bits``).

    One pass over the population, block by block of :data:`COUNT_BLOCK` users: a block's
    codes are computed in cache (a changing dimension's never fill a whole array), and its
    keys are built in 16 bits (a quarter of the memory traffic of a native integer)
    before their ``np.bincount``.
    """
    n = status.size
    tables = [np.zeros(size << bits, dtype=np.int64) for size in sizes]
    kinds = [np.dtype(np.int16 if (size << bits) <= np.iinfo(np.int16).max else np.int64)
             for size in sizes]
    keys = {kind: np.empty(min(n, COUNT_BLOCK), dtype=kind) for kind in kinds}
    for a in range(0, n, COUNT_BLOCK):
        m = min(COUNT_BLOCK, n - a)
        at = slice(a, a + m)
        block = {kind: status[at].astype(kind) for kind in keys}
        for joint, table, kind in zip(joints, tables, kinds, strict=True):
            key = keys[kind][:m]
            # codes << bits | status, each step between arrays of one type (vectorised,
            # where a cast inside an operation is not), the shift as a product
            np.copyto(key, joint(at), casting="unsafe")
            key *= 1 << bits
            key |= block[kind]
            table += np.bincount(key, minlength=table.size)
    return tables


def margins(table: np.ndarray, ks: list[int], bits: int,
            keep: list[tuple[int, ...]] | None = None) -> list[list[np.ndarray]]:
    """For each dimension ``i`` of a :func:`status_tables` table over dimensions of ``ks``
    codes: users per code, then per code those with each status bit set (integer sums:
    exact). ``keep`` names the axes of each margin (each dimension alone by default); two
    neighbouring axes ``(a, a + 1)`` give their crossed code ``a * ks[a + 1] + b``."""
    # per cell: users, then users with each bit (one product with the statuses' bits)
    statuses = np.arange(1 << bits)
    has = np.stack([np.ones_like(statuses)] + [(statuses >> b) & 1 for b in range(bits)],
                   axis=1)
    cells = (table.reshape(-1, 1 << bits) @ has).reshape(*ks, 1 + bits)
    keep = [(i,) for i in range(len(ks))] if keep is None else keep
    return [list(cells.sum(axis=tuple(j for j in range(len(ks)) if j not in axes))
                 .reshape(-1, 1 + bits).T)
            for axes in keep]


def segment_counts(codes: list[np.ndarray], ks: list[int],
                   masks: list[np.ndarray]) -> list[list[np.ndarray]]:
    """For each dimension ``i`` (codes ``0..ks[i]-1``): users per code, then per code those
    with each mask set. One ``np.bincount`` over the joint code of all the dimensions and
    the status bits of the masks (:func:`status_tables`), then integer marginal sums."""
    joint = joint_block([lambda at, c=c: c[at] for c in codes], ks)
    table, = status_tables([joint], [int(np.prod(ks))], status_bits(masks), len(masks))
    return margins(table, ks, len(masks))


@dataclass
class Flows:
    """What happened during one month, owned by the month-end process: it starts a new one
    after the recorder has read it.

    ``access`` counts users (new invites, batches, access gained and lost); ``credit`` and
    ``fraud`` are the month's credit and fraud steps' figures (unweighted, money in fen);
    ``capital_bound`` is set by a step that held invitations back under the capital limit.
    """

    access: dict[str, float] = field(default_factory=dict)
    credit: dict[str, int] = field(default_factory=dict)
    fraud: dict[str, int] = field(default_factory=dict)
    capital_bound: bool = False

    def count(self, key: str, amount: float) -> None:
        self.access[key] = self.access.get(key, 0) + amount


@dataclass(frozen=True)
class Observation:
    """What the recorder sees at one month end: the model's state, to read, never to change."""

    date: dt.date
    month: int
    scenario: Scenario
    pop: Population
    visible: np.ndarray
    book: credit.Book
    fraud: fraud.FraudBook
    flows: Flows
    macro: float
    batches: list[dict]
    batch_months: list[int]
    arm: np.ndarray
    arm_names: tuple[str, ...]

    @cached_property
    def lines(self) -> np.ndarray:
        """The users with a credit line, in index order: the only ones the book holds a
        balance, arrears, a default or a loss for."""
        return self.book.lines

    @cached_property
    def coverage(self) -> dict[str, int]:
        """Users eligible, invited and seeing the entry now (unweighted): the monthly row's
        and, without A/B arms, the one arm's."""
        return {"eligible": int(np.count_nonzero(self.pop.eligible)),
                "invited": int(np.count_nonzero(self.pop.invited)),
                "visible": int(np.count_nonzero(self.visible))}

    @cached_property
    def view(self) -> credit.LineView:
        """The book's columns of the users with a line (:attr:`lines`), gathered once for
        every figure that reads them."""
        return credit.line_view(self.book, self.pop, self.lines)

    @cached_property
    def per_line(self) -> dict[str, np.ndarray]:
        """The per-user credit figures of the users with a line (:attr:`lines`): borrowers,
        ever defaulted, 30+ days past due now, balance and drawn (fen), and the lines with a
        net charge-off loss (``lossy``, positions among the lines) with their ``loss`` (fen).

        A loss is a charge-off's, and a line is charged off in default: the loss is read
        from the few lines that ever defaulted (2% of them), not gathered for every line.
        """
        book, lines, view = self.book, self.lines, self.view
        defaulted = np.flatnonzero(view.defaulted)
        loss = np.take(book.cum_loss, np.take(lines, defaulted))
        lost = loss != 0
        return {"borrowers": view.borrowers,
                "defaults": view.defaulted,
                "dpd30": view.dpd30,
                "balance": view.balance, "cum_draw": np.take(book.cum_draw, lines),
                "lossy": defaulted[lost], "loss": loss[lost]}


#: A reporter reads an observation and returns the rows it adds to its table.
Reporter = Callable[[Observation], list[dict]]


class Recorder:
    """Collects a run's tables at each month end (in the spirit of Mesa's DataCollector).

    The reporters are declared up front, by table: ``monthly`` (one row a month, with the
    credit columns and their trailing rates), ``segments`` (one row per segment value a
    month, the ``arm`` dimension too in an A/B scenario), ``arms`` (one row per A/B arm a
    month) and ``vintages`` (one row per invite batch a month); :meth:`declare` adds more.
    :meth:`collect` calls each once in that order; a reporter only reads the model.
    """

    def __init__(self, bands: dict[str, list[float]] | None = None,
                 crosses: list[tuple[str, str]] | None = None, maturity: int = 0,
                 capital_limit: float | None = None,
                 segment_months: frozenset[int] | None = None):
        #: The months whose segment rows are recorded (None: every month).
        self.segment_months = segment_months
        #: The months whose expected credit loss is computed (None: every month).
        self.ecl_months: frozenset[int] | None = None
        self.bands = dict(bands or {})
        self.crosses = list(crosses or [])
        self.maturity = maturity
        self.capital_limit = capital_limit
        self.reporters: dict[str, Reporter] = {
            "monthly": self.monthly_row, "segments": self.segment_rows,
            "arms": self.arm_rows, "vintages": self.vintage_rows}
        self.rows: dict[str, list[dict]] = {name: [] for name in self.reporters}
        #: the joint codes of the fixed segment dimensions, kept from the first snapshot
        self._fixed_codes: dict[tuple[str, ...], np.ndarray] = {}

    def declare(self, name: str, reporter: Reporter) -> None:
        """Collect one more table, ``name``, with ``reporter`` at every month end."""
        if name in self.reporters:
            raise ValueError(f"the recorder already collects {name!r}")
        self.reporters[name] = reporter
        self.rows[name] = []

    def collect(self, obs: Observation) -> None:
        """Record the month that ends at ``obs``: every reporter, once, in declared order."""
        for name, report in self.reporters.items():
            self.rows[name].extend(report(obs))

    # ------------------------------------------------------------------ reporters
    def monthly_row(self, obs: Observation) -> list[dict]:
        """Coverage, the month's access flows and the credit and fraud figures."""
        pop, flows, month = obs.pop, obs.flows.access, obs.month
        w = pop.weight
        population = pop.n * w
        eligible = float(obs.coverage["eligible"]) * w
        invited = float(obs.coverage["invited"]) * w
        shown = float(obs.coverage["visible"]) * w
        row = {
            "date": obs.date,
            "month": month,
            "quarter": (month - 1) // 3 + 1,
            "population": population,
            "eligible": eligible,
            "invited": invited,
            "visible": shown,
            "gained_access": flows.get("gained_access", 0) * w,
            "lost_access": flows.get("lost_access", 0) * w,
            "invited_share": invited / population,
            "visible_share": shown / population,
            "eligible_share": eligible / population,
            "new_invites": flows.get("new_invites", 0) * w,
            "batches": flows.get("batches", 0),
        }
        row.update(self._credit_row(self.credit_figures(obs), row, w))
        return [row]

    def credit_figures(self, obs: Observation) -> dict:
        """The month's credit and fraud figures, unweighted (money in fen)."""
        book, pop = obs.book, obs.pop
        row = {**obs.flows.credit, **obs.flows.fraud}
        row.update(credit.stock(book, pop, view=obs.view))
        row.update(fraud.stock(obs.fraud))
        row.update(credit.expected_loss(
            book, pop, obs.scenario, obs.macro, obs.month, obs.fraud.fraudster,
            with_pd=self.ecl_months is None or obs.month in self.ecl_months, view=obs.view))
        row["macro_factor"] = obs.macro
        # bound if a step held invitations back this month, or if the book is at the limit
        row["capital_bound"] = (obs.flows.capital_bound or capital.binds(
            book, pop.weight, self.capital_limit, capital.real_cny(row["outstanding"],
                                                                   pop.weight)))
        row["capital_limit"] = (np.nan if self.capital_limit is None
                                else float(self.capital_limit))
        return row

    def _credit_row(self, figures: dict, current: dict, w: float) -> dict:
        """Weighted credit columns, with the trailing 12-month rates from the history."""
        history = self.rows["monthly"]
        row = {}
        for key in CREDIT_COLUMNS:
            if key not in figures:
                continue
            value = figures[key]
            if key in MONEY:
                row[key] = value * w / FEN
            elif key in UNWEIGHTED:
                row[key] = value
            else:
                row[key] = value * w
        row["net_income"] = (row["interest_revenue"] - row["charge_off_loss"]
                             - row["funding_cost"])
        # trailing window: this month and up to 11 before it
        window = [*history[-11:], {**current, **row}]
        months = len(window)
        scale = 12.0 / months  # annualise a window shorter than a year
        defaults = sum(r["new_defaults"] for r in window)
        default_balance = sum(r["default_balance"] for r in window)
        borrowers = np.mean([r["borrowers"] for r in window])
        outstanding = np.mean([r["outstanding"] for r in window])
        loss = sum(r["charge_off_loss"] for r in window)
        row["default_rate_12m"] = defaults * scale / borrowers if borrowers > 0 else np.nan
        row["stock_default_ratio"] = (default_balance * scale / row["outstanding"]
                                      if row["outstanding"] > 0 else np.nan)
        year_ago = history[-12] if len(history) >= 12 else None
        row["lagged_default_rate"] = (
            default_balance / year_ago["outstanding"]
            if year_ago is not None and year_ago.get("outstanding", 0) > 0 else np.nan)
        row["loss_rate_12m"] = loss * scale / outstanding if outstanding > 0 else np.nan
        # NPL-style ratio: balance 90+ days past due (not yet charged off) per outstanding
        row["npl_ratio"] = (row["stage3"] / row["outstanding"] if row["outstanding"] > 0
                            else np.nan)
        return {k: row[k] for k in CREDIT_COLUMNS if k in row}

    def segment_rows(self, obs: Observation) -> list[dict]:
        """Counts per value of every segment dimension (and per arm in an A/B scenario), in
        the months :attr:`segment_months` names."""
        if self.segment_months is not None and obs.month not in self.segment_months:
            return []
        rows = segment_rows(obs.pop, obs.visible, obs.lines, obs.per_line, self.bands,
                            self.crosses,
                            date=obs.date, month=obs.month, fixed=self._fixed_codes)
        if obs.scenario.ab is not None:  # "arm" as one more segment dimension
            rows += self.arm_rows(obs)
        return rows

    def arm_rows(self, obs: Observation) -> list[dict]:
        """The segment figures of each A/B arm (one arm, ``all``, without an ``ab`` section)."""
        return arms.arm_segment_rows(obs.arm, obs.arm_names, obs.pop, obs.visible,
                                     obs.lines, obs.per_line, date=obs.date, month=obs.month,
                                     coverage=obs.coverage)

    def vintage_rows(self, obs: Observation) -> list[dict]:
        """Every invite batch's rates by months on book."""
        per_line = obs.per_line
        # a user is invited once, into one batch: the ledger counts each batch's users
        accounts = np.array([b["users"] for b in obs.batches], dtype=np.float64)
        return vintage_rows(
            obs.pop.vintage, obs.batches, obs.batch_months, date=obs.date, month=obs.month,
            weight=obs.pop.weight, maturity=self.maturity, lines=obs.lines,
            accounts=accounts,
            arrays={"dpd30": per_line["dpd30"], "ever_default": per_line["defaults"],
                    "balance": per_line["balance"], "cum_draw": per_line["cum_draw"],
                    "lossy": per_line["lossy"], "loss": per_line["loss"]})

    # ------------------------------------------------------------------ tables
    def monthly_table(self, rollout_months: int) -> Table:
        """The monthly table, with ``run_off`` (the months after the rollout horizon)."""
        rows = self.rows["monthly"]
        names = list(rows[0]) if rows else list(MONTHLY_COLUMNS)
        columns = columns_of(rows, names)
        columns["run_off"] = [month > rollout_months for month in columns["month"]]

        def make():
            df = rows_frame(rows, names, ("date",))
            df["run_off"] = df["month"] > rollout_months
            return df
        return Table(columns, make, ("date",), rows=len(rows))

    def segment_table(self) -> Table:
        return rows_table(self.rows["segments"], SEGMENT_COLUMNS, ("date",))

    def vintage_table(self, batch_arms: list[str]) -> Table:
        """The vintage table, with each vintage's A/B ``arm`` (``batch_arms``: the arm of
        every batch, by vintage) as its second column."""
        rows, dates = self.rows["vintages"], ("vintage_date", "date")
        names = list(VINTAGE_COLUMNS)
        columns = columns_of(rows, names)
        arm = [batch_arms[v] for v in columns["vintage"]]
        columns = {"vintage": columns.pop("vintage"), "arm": arm, **columns}

        def make():
            import pandas as pd

            df = rows_frame(rows, names, dates)
            df.insert(1, "arm", np.array(batch_arms, dtype=object)[df["vintage"].to_numpy()]
                      if len(df) else pd.Series(dtype=object))
            return df
        return Table(columns, make, dates, rows=len(rows))


def segment_months(choice: str | list[int], months: int) -> frozenset[int] | None:
    """The months of ``months`` a ``reporting.segment_months`` (or ``ecl_months``) choice
    names: None for ``all``; every third month and the last for ``quarter_ends``; else the
    list."""
    if choice == "all":
        return None
    if choice == "quarter_ends":
        return frozenset(range(3, months + 1, 3)) | {months}
    return frozenset(choice)


def segment_rows(pop: Population, visible: np.ndarray, lines: np.ndarray | None,
                 per_line: dict[str, np.ndarray] | None,
                 bands: dict[str, list[float]], crosses: list[tuple[str, str]], *,
                 date: dt.date, month: int,
                 fixed: dict[tuple[str, ...], np.ndarray] | None = None) -> list[dict]:
    """One row per value of every segment dimension at one month end.

    ``per_line`` holds the credit arrays the segment table sums (``borrowers`` and
    ``defaults`` masks, ``cum_loss`` in fen) of the users with a line, ``lines`` (in index
    order: no one else borrows, defaults or loses); without it those columns are NaN.
    ``fixed`` keeps the joint codes of the dimensions that never change
    (:func:`segment_dims`) between the calls of one run: computed at the first, read at
    the others.
    """
    w = pop.weight
    # one bincount per group of dimensions over (joint code, status bits) pairs; the loss
    # sums only the few users with a loss (skipping zeros leaves every float sum unchanged)
    status = status_bits([pop.eligible, pop.invited, visible])
    bits = 3
    loss_at = loss_w = None
    if per_line is not None:
        status[lines] |= status_bits([per_line["borrowers"], per_line["defaults"]], first=3)
        bits = len(STATUS)
        lossy, loss = line_losses(per_line)
        loss_at = lines[lossy]
        loss_w = loss.astype(np.float64)
    dims = list(segment_dims(pop, bands, crosses))
    units, summed = joint_units(dims, crosses)
    groups, joints = [], []  # the fixed dimensions together, then the others
    for kept in (True, False):
        among = [u for u in units if all(dims[i][2] for i in u) == kept]
        sizes = [int(np.prod([len(dims[i][1]) for i in u])) for u in among]
        for grouped in joint_groups(sizes, bits):
            group = [i for j in grouped for i in among[j]]
            ks = [len(dims[i][1]) for i in group]
            codes = [dims[i][3] for i in group]
            if kept and fixed is not None:
                name = tuple(dims[i][0] for i in group)
                if name not in fixed:
                    fixed[name] = joint_code(codes, ks, pop.n)
                joints.append(fixed[name].__getitem__)
            else:
                joints.append(joint_block(codes, ks))
            groups.append((group, ks))
    counted = status_tables(joints, [int(np.prod(ks)) for _, ks in groups], status, bits)
    tables: dict[int, list[np.ndarray]] = {}
    for (group, ks), table in zip(groups, counted, strict=True):
        pairs = {c: (group.index(a), group.index(b)) for c, (a, b) in summed.items()
                 if a in group}
        keep = [(axis,) for axis in range(len(group))] + list(pairs.values())
        tables.update(zip([*group, *pairs], margins(table, ks, bits, keep), strict=True))
    rows = []
    nan = float("nan")
    for i, (dim, labels, _, _) in enumerate(dims):
        k = len(labels)
        # Python numbers: the same IEEE arithmetic as NumPy scalars, a tenth of the cost
        counts = dict(zip(("population", *STATUS), (c.tolist() for c in tables[i]),
                          strict=False))
        if per_line is not None:
            loss = np.bincount(dims[i][3](loss_at), weights=loss_w, minlength=k) * (w / FEN)
            credit_columns = zip(counts["borrowers"], counts["defaults"], loss.tolist(),
                                 strict=True)
        else:
            credit_columns = ((None, None, nan),) * k
        for label, n, eligible, invited, shown, (borrowers, defaults, lost) in zip(
                labels, counts["population"], counts["eligible"], counts["invited"],
                counts["visible"], credit_columns, strict=True):
            rows.append({
                "date": date,
                "month": month,
                "dimension": dim,
                "value": label,
                "population": n * w,
                "eligible": eligible * w,
                "invited": invited * w,
                "visible": shown * w,
                "access_rate": invited / n if n else nan,
                "visible_rate": shown / n if n else nan,
                "borrowers": nan if borrowers is None else borrowers * w,
                "defaults": nan if defaults is None else defaults * w,
                "loss": lost,
            })
    return rows


def vintage_accounts(vintage: np.ndarray, k: int) -> np.ndarray:
    """Users invited in each of the first ``k`` batches (``vintage`` is -1 for the others)."""
    return np.bincount(vintage[vintage >= 0], minlength=k)[:k].astype(np.float64)


def vintage_rows(vintage: np.ndarray, batches: list[dict], batch_months: list[int], *,
                 date: dt.date, month: int, weight: float, maturity: int,
                 arrays: dict[str, np.ndarray], lines: np.ndarray | None = None,
                 accounts: np.ndarray | None = None) -> list[dict]:
    """One row per vintage (invite batch) at this month end: its cumulative 30+ / 90+ rates
    and loss rate by months on book.

    ``arrays`` holds the ``dpd30`` and ``ever_default`` masks and the ``balance``,
    ``cum_draw`` and ``cum_loss`` in fen of the users with a line, ``lines`` (in index
    order), or instead of ``cum_loss`` the lines with a loss as :func:`line_losses` reads
    them; without ``lines``, ``arrays`` holds every user's (``cum_loss`` too), with an
    ``opened`` mask, and users without a line hold zeros and are never late or in default.
    ``accounts`` (users invited in each batch) is counted from ``vintage`` when not given.

    Rates are per account of the vintage (every invited user of the batch), so the cumulative
    default rate of a vintage can only grow; ``loss_rate`` is net charge-off loss over the
    amount drawn. Cells younger than ``maturity`` months on book are ``immature``.

    The counts behind the per-opened-line rates are recorded too (weighted, money in CNY):
    ``defaults`` (ever defaulted), ``opened_defaults`` (ever defaulted among users who opened
    a line), ``dpd30_opened`` (30+ now among them), ``drawn`` and ``loss``; the analysis
    divides them (:mod:`sim.analysis.metrics`), the engine only counts.
    """
    k = len(batches)
    if k == 0:
        return []
    if lines is None:
        lines = np.flatnonzero(arrays["opened"])
        arrays = {name: values[lines] for name, values in arrays.items()}
    if accounts is None:
        accounts = vintage_accounts(vintage, k)
    of = vintage[lines]
    lossy, lost = line_losses(arrays)  # few users have a loss: sum theirs
    lost_of = of[lossy].astype(np.intp)
    invited = of >= 0  # a line is opened by an invited user; kept safe all the same
    if not invited.all():
        of = of[invited]
        arrays = {name: arrays[name][invited]
                  for name in ("dpd30", "ever_default", "balance", "cum_draw")}
        lost, lost_of = lost[lost_of >= 0], lost_of[lost_of >= 0]
    of = of.astype(np.intp)  # what bincount reads: cast once, not per count

    def count(mask):  # only users with a line are late or in default
        return np.bincount(np.compress(mask, of), minlength=k)[:k].astype(np.float64)

    def amount(values):  # summed in user order, zeros left out: the same float sums
        return np.bincount(of, weights=values, minlength=k)[:k]  # weights: as float64

    opened = np.bincount(of, minlength=k)[:k].astype(np.float64)
    dpd30 = count(arrays["dpd30"])
    ever = count(arrays["ever_default"])
    balance = amount(arrays["balance"])
    drawn = amount(arrays["cum_draw"])
    loss = np.bincount(lost_of, weights=lost, minlength=k)[:k]
    # Python numbers: the same IEEE arithmetic as NumPy scalars, a tenth of the cost
    accounts, opened, dpd30, ever, balance, drawn, loss = (
        a.tolist() for a in (accounts, opened, dpd30, ever, balance, drawn, loss))
    rows = []
    for i, batch in enumerate(batches):
        mob = month - batch_months[i]
        n = accounts[i]
        rows.append({
            "vintage": batch["vintage"],
            "vintage_date": batch["date"],
            "date": date,
            "month": month,
            "mob": mob,
            "accounts": n * weight,
            "opened": opened[i] * weight,
            "outstanding": balance[i] * weight / FEN,
            "dpd30_rate": dpd30[i] / n if n else np.nan,
            "dpd90_cum_rate": ever[i] / n if n else np.nan,
            "loss_rate": loss[i] / drawn[i] if drawn[i] > 0 else np.nan,
            "immature": mob < maturity,
            "defaults": ever[i] * weight,
            "opened_defaults": ever[i] * weight,  # every default is of an opened line
            "dpd30_opened": dpd30[i] * weight,
            "drawn": drawn[i] * weight / FEN,
            "loss": loss[i] * weight / FEN,
        })
    return rows
