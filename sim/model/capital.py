"""The capital limit: the most the book may lend out. While outstanding is at the limit the
book is capped: no new invitations (rollout batches, re-evaluation admissions), no limit
raises and no new draws (:func:`sim.model.credit.month` scales the month's draws down to the
room left), so outstanding exceeds the limit by at most a month's interest."""

from __future__ import annotations

import math

from sim.model.credit import FEN, Book


def outstanding(book: Book, weight: float) -> float:
    """Total drawn balance in CNY, weighted to real accounts."""
    return real_cny(int(book.balance.sum()), weight)


def real_cny(fen: int, weight: float) -> float:
    """An amount of the simulated book (fen) in CNY of the real accounts it stands for."""
    return float(fen) * weight / FEN


def binds(book: Book, weight: float, limit: float | None,
          lent: float | None = None) -> bool:
    """Whether the book is at the capital ``limit`` (never without one): outstanding has
    reached it, or the last month's draws had to be scaled down to fit under it. ``lent``
    is the book's :func:`outstanding` when the caller has it (only the credit month moves
    balances, so it holds from one credit month to the next)."""
    if limit is None:
        return False
    return book.capital_held or (outstanding(book, weight) if lent is None else lent) >= limit


def simulated_limit(weight: float, limit: float | None) -> int | None:
    """The capital ``limit`` (CNY, real accounts) in fen of the simulated book (None: none)."""
    return None if limit is None else math.floor(limit * FEN / weight)
