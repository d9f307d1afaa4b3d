"""The capital limit: the most the book may lend out. When outstanding reaches it, the
book is capped: no new invitations (rollout batches, re-evaluation admissions)."""

from __future__ import annotations

from sim.model.credit import FEN, Book


def outstanding(book: Book, weight: float) -> float:
    """Total drawn balance in CNY, weighted to real accounts."""
    return float(book.balance.sum()) * weight / FEN


def binds(book: Book, weight: float, limit: float | None) -> bool:
    """Whether outstanding has reached the capital ``limit`` (never without one)."""
    return limit is not None and outstanding(book, weight) >= limit
