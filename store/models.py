"""The tables: datasets, scenarios, plans, API keys and the audit log (SQLAlchemy 2, typed).

Choices (see also the migration, which is the schema of record):
- Enumerations are short strings with CHECK constraints, not PostgreSQL ENUM types: the same DDL on
  both databases, and adding a value is a one-line migration instead of an ``ALTER TYPE``.
- JSON payloads (policy, options, result, audit detail) are ``TEXT`` holding canonical JSON, not a
  JSON/JSONB column: hashes are taken over the exact stored bytes, and JSONB would reorder keys and
  renormalize numbers on PostgreSQL only. Query them with ``detail::jsonb`` when needed.
- Dataset content is stored as bytes in the database, not as a path: one backup holds everything,
  several API replicas on one PostgreSQL see the same files, a plan and its inputs commit in one
  transaction, and the stored SHA-256 can always be re-checked. The column is deferred so listings
  never load it. Inputs are canonical CSVs and price books (MBs to a few hundred MB); raw billing
  exports larger than that belong in the DuckDB ledger, not here.
- A price book is a dataset of kind ``prices``, not a table of its own: it is an immutable uploaded
  CSV with a hash and provenance like every other input; its parsed form (:class:`models.PriceBook`)
  is rebuilt from the bytes by the readers.
"""

from __future__ import annotations

import enum
import json
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite has no time zones: it stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone (commitplan stores UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DatasetKind(enum.StrEnum):
    USAGE = "usage"  # canonical usage CSV (or usage history to forecast from)
    BILLING = "billing"  # a billing export (FOCUS / CUR / GCP / Azure)
    PRICES = "prices"  # price book CSV
    COMMITMENTS = "commitments"  # existing commitments CSV


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Approval(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class Role(enum.StrEnum):
    """What a key may do (see :data:`store.keys.PERMISSIONS`)."""

    VIEWER = "viewer"
    PROCUREMENT = "procurement"
    FINANCE = "finance"
    ADMIN = "admin"


class AuditOutcome(enum.StrEnum):
    OK = "ok"
    REFUSED = "refused"


def _one_of(column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=f"{column}_valid")


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, uuid.UUID: Uuid}


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (_one_of("kind", DatasetKind), CheckConstraint("size >= 0", name="size_nonnegative"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100), default="text/csv")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Scenario(Base):
    """A what-if overlay file (YAML text, kept verbatim so its line numbers stay meaningful)."""

    __tablename__ = "scenarios"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    yaml_text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Plan(Base):
    """A planning run (``status``) and its approval (``approval``): two independent state machines.

    The CHECKs restate the workflow rules in the database, so no code path (or hand-written SQL)
    can store a decision by the plan's creator or submitter, or submit an unfinished plan.
    """

    __tablename__ = "plans"
    __table_args__ = (
        _one_of("status", RunStatus),
        _one_of("approval", Approval),
        CheckConstraint("approval = 'draft' OR (status = 'done' AND content_hash IS NOT NULL "
                        "AND submitted_by IS NOT NULL)", name="submitted_plans_are_done"),
        CheckConstraint("(approval IN ('approved', 'rejected')) = (decided_by IS NOT NULL)",
                        name="decided_iff_decider"),
        CheckConstraint("decided_by IS NULL OR (decided_by <> created_by AND decided_by <> submitted_by)",
                        name="no_self_decision"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    approval: Mapped[str] = mapped_column(String(16), default=Approval.DRAFT.value, index=True)
    usage_dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id"))
    prices_dataset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id"))
    commitments_dataset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("datasets.id"))
    scenario_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("scenarios.id"))
    policy_json: Mapped[str] = mapped_column(Text, default="{}")
    horizon_months: Mapped[int | None] = mapped_column(Integer)
    options_json: Mapped[str] = mapped_column(Text, default="{}")
    # deferred: a plan's JSON runs to megabytes; listings never need it, one plan's read loads it
    result_json: Mapped[str | None] = mapped_column(Text, deferred=True)
    error: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decision_comment: Mapped[str | None] = mapped_column(Text)

    @property
    def result(self) -> dict[str, Any] | None:
        return None if self.result_json is None else json.loads(self.result_json)

    @property
    def policy(self) -> dict[str, Any]:
        return json.loads(self.policy_json)


class ApiKey(Base):
    """An API key: only the SHA-256 of the token is stored; ``prefix`` finds the row in O(1).

    ``name`` is the principal (a person or a service), not unique: a rotated key or a second role
    keeps the name, so the rule "nobody decides a plan they created or submitted" holds across keys.
    """

    __tablename__ = "api_keys"
    __table_args__ = (_one_of("role", Role),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One link of the hash chain: ``entry_hash = sha256(prev_hash + canonical JSON of the entry)``.

    ``seq`` is assigned under the chain-head lock (never by a sequence: a rolled-back sequence
    value would leave a gap that looks like a deleted row). ``prev_hash`` is UNIQUE, so two writers
    can never both extend the same link: a fork is a constraint violation, not a silent branch.
    """

    __tablename__ = "audit_log"
    __table_args__ = (_one_of("outcome", AuditOutcome), Index("ix_audit_log_target", "target_type", "target_id"))

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_key_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(50))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    hash_before: Mapped[str | None] = mapped_column(String(64))
    hash_after: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)

    @property
    def detail_obj(self) -> dict[str, Any]:
        return json.loads(self.detail)


class AuditHead(Base):
    """The single row naming the chain's last entry: the lock writers queue on, and the anchor that
    makes deleting the newest entries detectable (the chain alone cannot see a cut tail)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    entry_hash: Mapped[str] = mapped_column(String(64))


class IdempotencyKey(Base):
    """A POST's ``Idempotency-Key`` and the response it produced, written in the same transaction as the
    operation itself: a retry on any replica replays the response instead of applying it twice.

    ``route`` is the method, path template and path parameters; ``fingerprint`` the SHA-256 of the
    request's meaning (a different request under the same key is refused). Only successful (2xx)
    responses are kept; rows older than the service's TTL are ignored and purged.
    """

    __tablename__ = "idempotency_keys"

    actor: Mapped[str] = mapped_column(String(100), primary_key=True)
    route: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
