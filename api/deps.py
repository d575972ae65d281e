"""Request dependencies: settings, a database session, the calling actor, role checks, idempotency.

Use them as ``Annotated`` types in route signatures (``session: SessionDep, actor: ActorDep``).
Tests override :func:`get_session` or :func:`current_actor` with ``app.dependency_overrides``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

import store
from api.problems import ProblemError
from api.settings import Settings
from store import Actor, Role
from store.audit import append as audit_append
from store.models import AuditOutcome

ANONYMOUS = Actor("anonymous", Role.VIEWER)
bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer cp_…`")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.sessions


def get_session(sessions: Annotated[sessionmaker[Session], Depends(get_sessions)]) -> Iterator[Session]:
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
    with store.writing(session):
        audit_append(session, ANONYMOUS, action, target, AuditOutcome.REFUSED, {"reason": reason})


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
            session.commit()  # end the read transaction: store writes begin their own
            return Actor.of(key)
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
    """Responses of POSTs sent with ``Idempotency-Key``, in process memory (lost on restart, per replica).

    Keyed by (actor, route, key); holds a fingerprint of the request's meaning (not its raw bytes:
    multipart boundaries differ between retries) and the first successful response. A per-key lock
    makes a concurrent retry wait for the first call instead of running it twice.
    """

    def __init__(self, ttl_s: float = 24 * 3600, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._done: OrderedDict[tuple[str, str, str], tuple[float, str, int, Any]] = OrderedDict()
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, str, str]) -> tuple[str, int, Any] | None:
        with self._guard:
            hit = self._done.get(key)
            if hit is None:
                return None
            if time.monotonic() - hit[0] > self.ttl_s:
                del self._done[key]
                return None
            return hit[1:]

    def put(self, key: tuple[str, str, str], fingerprint: str, status: int, body: Any) -> None:
        with self._guard:
            self._done[key] = (time.monotonic(), fingerprint, status, body)
            while len(self._done) > self.max_entries:
                old, _ = self._done.popitem(last=False)
                self._locks.pop(old, None)


class Idempotency:
    """Per request: ``idem.run(fingerprint, action)`` runs ``action`` once per key; retries replay it."""

    def __init__(self, request: Request, actor: ActorDep) -> None:
        self.key = request.headers.get("idempotency-key")
        self.store: IdempotencyStore = request.app.state.idempotency
        route = request.scope.get("route")
        self.scope = (actor.name, f"{request.method} {getattr(route, 'path', request.url.path)} "
                      f"{json.dumps(request.path_params, sort_keys=True)}")
        if self.key is not None and not (1 <= len(self.key) <= 255):
            raise ProblemError(400, "Idempotency-Key must be 1 to 255 characters")

    def run(self, fingerprint: Any, action: Callable[[], tuple[int, Any]]) -> tuple[int, Any, bool]:
        """(status, body, replayed). Only successes are remembered: a refused call may be retried."""
        if self.key is None:
            return (*action(), False)
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()
        slot = (*self.scope, self.key)
        with self.store.lock(slot):
            hit = self.store.get(slot)
            if hit is not None:
                if hit[0] != digest:
                    raise ProblemError(422, f"Idempotency-Key {self.key!r} was already used with a different "
                                       "request: use a new key for a new request")
                return hit[1], hit[2], True
            status, body = action()
            if 200 <= status < 300:
                self.store.put(slot, digest, status, body)
            return status, body, False


IdempotencyDep = Annotated[Idempotency, Depends()]
