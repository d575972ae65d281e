"""Idempotency keys: run an operation once per (actor, route, key); a retry replays the stored response.

:func:`run_once` opens one write transaction (:func:`store.db.writing`) and, in it: looks the key up
(a hit replays, or refuses a different request under the same key), claims the key by INSERTing its
row, runs the operation (whose store writes join the transaction: ``writing`` is re-entrant), stores
a 2xx response in the claimed row, and commits: the operation and its record commit together or not
at all, so no retry on any replica can apply it twice.

Concurrent calls with one key: on SQLite writers run one at a time (``BEGIN IMMEDIATE``). On
PostgreSQL the second INSERT of the same primary key waits for the first transaction; when that
commits, the INSERT fails, everything the second call did is rolled back, and it starts over, now
finding the stored response to replay. A refused (non-2xx) operation is committed (its audit entry
stays) but its claim is deleted first: a refused call may be retried with the same key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.db import writing
from store.models import IdempotencyKey, utcnow

PENDING = 0  # status of a claimed row while its operation runs (never committed)
ATTEMPTS = 3


class KeyReused(Exception):
    """The key was already used (by this actor, on this route) for a different request."""


class _Raced(Exception):
    """Another transaction committed the same key first: roll back and start over."""


@dataclass(frozen=True)
class Stored:
    """What a call answered: ``replayed`` when it is the stored response of an earlier call."""

    status: int
    body: Any
    replayed: bool = False


def run_once(
    session: Session,
    actor: str,
    route: str,
    key: str,
    fingerprint: str,
    operation: Callable[[], tuple[int, Any]],
    ttl_s: float = 24 * 3600,
) -> Stored:
    """Run ``operation`` (returning ``(status, JSON-able body)``) at most once per (actor, route, key).

    Raises :class:`KeyReused` when the key's stored request had another ``fingerprint``. The
    operation may be called more than once only if an attempt was rolled back because a concurrent
    call with the same key committed first (and then this call replays that one's response).
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _attempt(session, actor, route, key, fingerprint, operation, ttl_s)
        except _Raced:
            if attempt == ATTEMPTS:
                raise RuntimeError(f"idempotency key {key!r}: could not claim it after {ATTEMPTS} attempts") from None
    raise AssertionError("unreachable")


def _attempt(session: Session, actor: str, route: str, key: str, fingerprint: str,
             operation: Callable[[], tuple[int, Any]], ttl_s: float) -> Stored:
    ident = {"actor": actor, "route": route, "key": key}
    with writing(session):
        hit = session.execute(
            select(IdempotencyKey.fingerprint, IdempotencyKey.status_code, IdempotencyKey.response_json,
                   IdempotencyKey.created_at).filter_by(**ident)).first()
        if hit is not None and hit.created_at < utcnow() - timedelta(seconds=ttl_s):  # expired: forget it
            session.execute(delete(IdempotencyKey).filter_by(**ident).execution_options(synchronize_session=False))
            hit = None
        if hit is not None:
            if hit.fingerprint != fingerprint:
                raise KeyReused(key)
            return Stored(hit.status_code, json.loads(hit.response_json), True)
        row = IdempotencyKey(**ident, fingerprint=fingerprint, status_code=PENDING, response_json="null",
                             created_at=utcnow())
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            raise _Raced from None
        status, body = operation()
        if 200 <= status < 300:
            row.status_code, row.response_json = status, json.dumps(body, sort_keys=True, separators=(",", ":"))
        else:
            session.delete(row)
        session.flush()
    return Stored(status, body)


def purge(session: Session, older_than_s: float) -> int:
    """Delete keys older than ``older_than_s`` seconds; returns how many."""
    with writing(session):
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
                               .execution_options(synchronize_session=False)).rowcount
