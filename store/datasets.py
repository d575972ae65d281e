"""Uploaded inputs: datasets (usage, billing, price book, commitments) and what-if scenarios.

Both are immutable once stored (a database trigger refuses UPDATEs): a plan refers to exact bytes,
identified by their SHA-256, so "the inputs of an approved plan" never drift.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit
from store.db import writing
from store.hashing import row_hash, sha256_hex
from store.keys import Actor
from store.models import AuditOutcome, Dataset, DatasetKind, Scenario, utcnow
from store.rules import Outcome, Result


def _refuse(session: Session, actor: Actor, action: str, target_type: str, name: str) -> Result[None]:
    reason = f"role {actor.role.value} cannot upload {target_type}s"
    with writing(session):
        audit.append(session, actor, action, (target_type, None), AuditOutcome.REFUSED, {"name": name, "reason": reason})
    return Result(Outcome.FORBIDDEN, None, reason)


def add_dataset(
    session: Session, actor: Actor, kind: DatasetKind | str, name: str, content: bytes, media_type: str = "text/csv"
) -> Result[Dataset]:
    """Store ``content`` as a new dataset (never deduplicated away: provenance is per upload)."""
    kind = DatasetKind(kind)
    if not actor.can("create"):
        return _refuse(session, actor, "dataset.create", "dataset", name)  # type: ignore[return-value]
    with writing(session):
        ds = Dataset(id=uuid.uuid4(), kind=kind.value, name=name, media_type=media_type, sha256=sha256_hex(content),
                     size=len(content), content=content, created_by=actor.name, created_at=utcnow())
        session.add(ds)
        session.flush()
        audit.append(session, actor, "dataset.create", ("dataset", str(ds.id)), AuditOutcome.OK,
                     {"kind": kind.value, "name": name, "sha256": ds.sha256, "size": ds.size}, None,
                     row_hash(ds, exclude=("content",)))
    return Result(Outcome.OK, ds)


def dataset_content(session: Session, dataset_id: uuid.UUID) -> bytes | None:
    """The stored bytes (loaded only on demand: the column is deferred)."""
    return session.scalar(select(Dataset.content).where(Dataset.id == dataset_id))


def add_scenario(session: Session, actor: Actor, name: str, yaml_text: str) -> Result[Scenario]:
    """Store a what-if overlay file verbatim (validation belongs to :mod:`scenarios`, before this)."""
    if not actor.can("create"):
        return _refuse(session, actor, "scenario.create", "scenario", name)  # type: ignore[return-value]
    with writing(session):
        sc = Scenario(id=uuid.uuid4(), name=name, yaml_text=yaml_text, sha256=sha256_hex(yaml_text),
                      created_by=actor.name, created_at=utcnow())
        session.add(sc)
        session.flush()
        audit.append(session, actor, "scenario.create", ("scenario", str(sc.id)), AuditOutcome.OK,
                     {"name": name, "sha256": sc.sha256}, None, row_hash(sc))
    return Result(Outcome.OK, sc)
