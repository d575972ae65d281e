"""API keys and roles: who is calling, and what that role may do.

A token is ``cp_<prefix>_<secret>``: the 12-hex-digit prefix is public (shown in listings, indexed
to find the row), the secret is 256 random bits. Only ``sha256(token)`` is stored. A fast hash is
right here (unlike for passwords): a 256-bit random secret cannot be guessed or looked up in a
dictionary, so a slow KDF (bcrypt, argon2) would add per-request cost and no security. The stored
hash is compared in constant time all the same.
"""

from __future__ import annotations

import getpass
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store import audit
from store.db import writing
from store.hashing import row_hash, sha256_hex
from store.models import ApiKey, AuditOutcome, Role, utcnow

__all__ = ["PERMISSIONS", "Actor", "Role", "authenticate", "create_key", "revoke_key"]

TOKEN_PREFIX = "cp_"

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset({"read"}),
    Role.PROCUREMENT: frozenset({"read", "create", "submit"}),
    Role.FINANCE: frozenset({"read", "create", "submit", "decide"}),
    Role.ADMIN: frozenset({"read", "create", "submit", "decide", "admin"}),
}
"""Actions per role. ``decide`` is approve and reject alike: procurement proposes, finance decides."""


@dataclass(frozen=True)
class Actor:
    """Who does something: the principal ``name`` (shared by all its keys), its role, the key used."""

    name: str
    role: Role
    key_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # accept "finance" as well as Role.FINANCE

    def can(self, action: str) -> bool:
        return action in PERMISSIONS[self.role]

    @classmethod
    def of(cls, key: ApiKey) -> Actor:
        return cls(key.name, Role(key.role), str(key.id))

    @classmethod
    def local(cls) -> Actor:
        """Someone at the database itself (the CLI): whoever can open the database is its admin."""
        return cls(f"local:{getpass.getuser()}", Role.ADMIN)


def _hash(token: str) -> str:
    return sha256_hex(token)


def create_key(session: Session, name: str, role: Role | str, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its token: the only time the token exists in plain text."""
    role = Role(role)
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("a key name is 1 to 100 characters: the person or service that uses it")
    actor = actor or Actor.local()
    with writing(session):
        while True:  # a 48-bit prefix collides about never; the loop makes "never" exact
            prefix = secrets.token_hex(6)
            if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
                break
        token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(id=uuid.uuid4(), name=name, role=role.value, prefix=prefix, key_hash=_hash(token),
                     created_by=actor.name, created_at=utcnow())
        session.add(key)
        session.flush()
        audit.append(session, actor, "key.create", ("api_key", str(key.id)), AuditOutcome.OK,
                     {"name": name, "role": role.value, "prefix": prefix}, None, row_hash(key))
    return key, token


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The live key for ``token``, or None (unknown, malformed, wrong secret or revoked)."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or f"{parts[0]}_" != TOKEN_PREFIX or len(parts[1]) != 12:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or not hmac.compare_digest(key.key_hash, _hash(token.strip())):
        return None
    return None if key.revoked_at is not None else key


def revoke_key(session: Session, key_id: uuid.UUID | str, actor: Actor | None = None) -> bool:
    """Revoke a key (kept for the audit trail, never deleted); False when unknown or already revoked."""
    actor = actor or Actor.local()
    kid = uuid.UUID(str(key_id))
    with writing(session):
        key = session.get(ApiKey, kid)
        before = row_hash(key) if key else None
        done = session.execute(update(ApiKey).where(ApiKey.id == kid, ApiKey.revoked_at.is_(None))
                               .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
        if key is not None:
            session.refresh(key)
        outcome = AuditOutcome.OK if done else AuditOutcome.REFUSED
        audit.append(session, actor, "key.revoke", ("api_key", str(kid)), outcome,
                     {} if done else {"reason": "unknown or already revoked"}, before, row_hash(key) if key else None)
    return bool(done)
