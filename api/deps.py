"""Request dependencies: settings, a database session, the calling actor, role checks, idempotency.

Use them as ``Annotated`` types in route signatures (``session: SessionDep, actor: ActorDep``).
Tests override :func:`get_session` or :func:`current_actor` with ``app.dependency_overrides``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

import store
import store.idempotency
from api.jobs import deferred_submits
from api.problems import ProblemError
from api.settings import Settings
from store import Actor, Role

T = TypeVar("T")

log = logging.getLogger("commitplan.api")
ANONYMOUS = Actor("anonymous", Role.VIEWER)
bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer cp_…`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


async def get_session(sessions: Annotated[sessionmaker[Session], Depends(get_sessions)]) -> AsyncIterator[Session]:
    """A session per request, closed on the event loop.

    Async on purpose: the routes are sync and run on Starlette's 40 worker threads. Were this a
    sync generator, closing the session (and so returning its connection) would wait for a free
    worker thread while the threads waited for connections: with 200 reads in flight every request
    stalled until the pool's 30 s timeout. Opening a session does no I/O; closing returns the
    connection to the pool.
    """
    with sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def _audit_refused_auth(request: Request, session: Session, reason: str) -> None:
    """A refused state change is audited too: a POST without a valid key leaves an entry (actor anonymous).

    The action and target come from the route (its ``name`` is the audit action, e.g. ``plan.approve``).
    """
    route = request.scope.get("route")
    action = getattr(route, "name", None) or f"{request.method} {request.url.path}"
    params = request.path_params
    target = ("plan", params["plan_id"]) if "plan_id" in params else (action.split(".")[0], None)
    store.audit_refused(session, ANONYMOUS, action, target, {"reason": reason})


def current_actor(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Actor:
    """The caller, from ``Authorization: Bearer <key>``; 401 problem when missing, unknown or revoked."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        reason = "missing API key: send Authorization: Bearer <key>"
    else:
        key = store.authenticate(session, credentials.credentials)
        if key is not None:
            actor = Actor.of(key)  # read before the commit: after it, the expired key would reload and hold
            session.commit()  # a connection until the request ends (with 200 reads in flight the pool ran dry)
            return actor
        reason = "invalid API key: unknown, malformed or revoked"
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        session.rollback()
        _audit_refused_auth(request, session, reason)
    raise ProblemError(401, reason, headers={"WWW-Authenticate": 'Bearer realm="commitplan"'})


ActorDep = Annotated[Actor, Depends(current_actor)]


def require(permission: str) -> Callable[[Actor], Actor]:
    """A dependency that lets through only actors whose role has ``permission`` (else 403)."""
    def check(actor: ActorDep) -> Actor:
        if not actor.can(permission):
            raise ProblemError(403, f"role {actor.role.value} may not {permission}: "
                               f"{', '.join(r.value for r, p in store.PERMISSIONS.items() if permission in p)} may")
        return actor
    return check


Reader = Annotated[Actor, Depends(require("read"))]
Admin = Annotated[Actor, Depends(require("admin"))]


# --------------------------------------------------------------------------- idempotency

class IdempotencyStore:
    """Settings of the idempotency keys, which live in the database (``store.run_once``, table
    ``idempotency_keys``): shared by every replica on one database and kept across restarts.

    ``ttl_s``: how long a key is remembered. Expired rows are ignored on lookup and purged at most
    every ``purge_every_s`` seconds per process.
    """

    def __init__(self, ttl_s: float = 24 * 3600, purge_every_s: float = 3600.0) -> None:
        self.ttl_s, self.purge_every_s = ttl_s, purge_every_s
        self._last_purge = float("-inf")
        self._guard = threading.Lock()

    def maybe_purge(self, sessions: sessionmaker[Session]) -> None:
        with self._guard:
            if time.monotonic() - self._last_purge < self.purge_every_s:
                return
            self._last_purge = time.monotonic()
        try:
            with sessions() as session:
                store.idempotency.purge(session, self.ttl_s)
        except Exception:  # housekeeping only: never fail a request over it
            log.exception("purging expired idempotency keys failed")


class Idempotency:
    """Per request: ``idem.run(fingerprint, action)`` runs ``action`` once per key; retries replay it.

    Keyed by (actor, route, key) in the database; holds a fingerprint of the request's meaning (not
    its raw bytes: multipart boundaries differ between retries) and the first successful response,
    committed in the same transaction as the action's store writes. Plans the action queues are
    queued only after that commit.
    """

    def __init__(self, request: Request, actor: ActorDep, session: SessionDep) -> None:
        self.key = request.headers.get("idempotency-key")
        self.settings: IdempotencyStore = request.app.state.idempotency
        self.sessions: sessionmaker[Session] = request.app.state.sessions
        self.jobs = getattr(request.app.state, "jobs", None)
        self.session, self.actor = session, actor
        route = request.scope.get("route")
        self.route = (f"{request.method} {getattr(route, 'path', request.url.path)} "
                      f"{json.dumps(request.path_params, sort_keys=True)}")
        if len(self.route) > 300:  # the column's width: long path parameters are kept as their digest
            self.route = self.route[:236] + hashlib.sha256(self.route.encode()).hexdigest()
        if self.key is not None and not (1 <= len(self.key) <= 255):
            raise ProblemError(400, "Idempotency-Key must be 1 to 255 characters")

    def run(self, fingerprint: Any, action: Callable[[], tuple[int, Any]]) -> tuple[int, Any, bool]:
        """(status, body, replayed). Only successes are remembered: a refused call may be retried."""
        if self.key is None:
            return (*action(), False)
        self.settings.maybe_purge(self.sessions)
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
        refusal: list[ProblemError] = []
        queued: list[list[Any]] = []

        def operation() -> tuple[int, Any]:
            refusal.clear()
            with deferred_submits() as pending:
                queued.append(pending)
                try:
                    return action()
                except ProblemError as e:  # refused: its audit entry commits, the key is not kept
                    refusal.append(e)
                    return e.status, None

        try:
            done = store.run_once(self.session, self.actor.name, self.route, self.key, digest, operation,
                                  self.settings.ttl_s)
        except store.KeyReused:
            raise ProblemError(422, f"Idempotency-Key {self.key!r} was already used with a different "
                               "request: use a new key for a new request") from None
        if refusal and not done.replayed:
            raise refusal[0]
        if not done.replayed and queued and self.jobs is not None:
            for plan_id in queued[-1]:  # only the attempt that committed (earlier ones were rolled back)
                self.jobs.submit(plan_id)
        return done.status, done.body, done.replayed


IdempotencyDep = Annotated[Idempotency, Depends()]


def get_or_404(session: Session, model: type[T], row_id: uuid.UUID, what: str) -> T:
    """The row ``row_id`` of ``model``, or a 404 problem naming it (``no plan <id>``)."""
    row = session.get(model, row_id)
    if row is None:
        raise ProblemError(404, f"no {what} {row_id}")
    return row
