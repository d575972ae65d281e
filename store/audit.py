"""The audit log: an append-only hash chain of every state change and every refused one.

``entry_hash = sha256(prev_hash + canonical JSON of the entry)``, the entry holding its ``seq``,
time (UTC ISO), actor, action, target, outcome, detail (stored as its canonical JSON text) and the
hashes of the target's row before and after. Editing a row breaks its hash; deleting one leaves a
gap in ``seq``; moving rows breaks the links; cutting the newest rows disagrees with the chain head.

The chain stays linear under concurrency because every writer first locks the single
``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the writer already holds the
database's only write lock, taken by ``BEGIN IMMEDIATE`` in :func:`store.db.writing`), reads the
last seq and hash from it, appends, and moves the head, all in the caller's transaction. The
UNIQUE ``prev_hash`` makes a fork impossible even if that protocol were bypassed. A rewrite of the
whole tail plus the head is not detectable from inside the database: publish the head hash
(``commitplan audit verify`` prints it) somewhere else to anchor it.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.db import writing
from store.hashing import GENESIS, canonical_json, sha256_hex, utc_iso
from store.models import AuditEntry, AuditHead, AuditOutcome, utcnow

if TYPE_CHECKING:
    from store.keys import Actor

Target = tuple[str, str | None]
"""(target type, target id): ``("plan", "<uuid>")``, ``("api_key", "<uuid>")`` …"""


def entry_payload(e: AuditEntry) -> str:
    """The canonical JSON an entry's hash covers: every column but ``entry_hash``."""
    return canonical_json({
        "seq": e.seq, "at": utc_iso(e.at), "actor": e.actor, "actor_role": e.actor_role,
        "actor_key_id": e.actor_key_id, "action": e.action, "target_type": e.target_type,
        "target_id": e.target_id, "outcome": e.outcome, "detail": e.detail,
        "hash_before": e.hash_before, "hash_after": e.hash_after, "prev_hash": e.prev_hash,
    })


def compute_hash(e: AuditEntry) -> str:
    return sha256_hex(e.prev_hash + entry_payload(e))


def append(
    session: Session,
    actor: Actor,
    action: str,
    target: Target,
    outcome: AuditOutcome | str,
    detail: Mapping[str, Any] | None = None,
    before: str | None = None,
    after: str | None = None,
) -> AuditEntry:
    """Add the next entry, in the caller's write transaction (see :func:`store.db.writing`)."""
    head = session.execute(
        select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == 1).with_for_update()
    ).one()
    entry = AuditEntry(
        seq=head.seq + 1, at=utcnow(), actor=actor.name, actor_role=actor.role.value, actor_key_id=actor.key_id,
        action=action, target_type=target[0], target_id=target[1], outcome=AuditOutcome(outcome).value,
        detail=canonical_json(dict(detail or {})), hash_before=before, hash_after=after, prev_hash=head.entry_hash,
    )
    entry.entry_hash = compute_hash(entry)
    session.add(entry)
    session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=entry.seq, entry_hash=entry.entry_hash))
    return entry


def refused(
    session: Session, actor: Actor, action: str, target: Target, detail: Mapping[str, Any] | None = None
) -> AuditEntry:
    """Record a refused attempt (e.g. a POST without a valid key) as its own write transaction."""
    with writing(session):
        return append(session, actor, action, target, AuditOutcome.REFUSED, detail)


class Problem(enum.StrEnum):
    EDITED = "edited"  # the row's content no longer matches its hash
    MISSING = "missing"  # a gap in seq, or the newest rows cut off (the head is ahead)
    REORDERED = "reordered"  # the row links to a later row: rows were moved
    BROKEN_LINK = "broken_link"  # the row does not link to its predecessor (rewritten or renumbered)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: Problem | None = None
    message: str = "the audit chain is intact"

    def to_dict(self) -> dict[str, Any]:
        return json.loads(canonical_json(self.__dict__))


def entries_for(session: Session, target_type: str, target_id: str, limit: int | None = None,
                offset: int = 0) -> tuple[int, list[AuditEntry]]:
    """(total, entries) about one target, oldest first, refused attempts included; a page when ``limit``."""
    where = [AuditEntry.target_type == target_type, AuditEntry.target_id == target_id]
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    query = select(AuditEntry).where(*where).order_by(AuditEntry.seq).offset(offset)
    return total, list(session.scalars(query if limit is None else query.limit(limit)))


def verify(session: Session, batch: int = 1000) -> VerifyResult:
    """Walk the chain in seq order up to the head read first (later appends are left for next time)."""
    head = session.execute(select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == 1)).one()

    def bad(seq: int, problem: Problem, message: str, checked: int) -> VerifyResult:
        return VerifyResult(False, checked, head.seq, head.entry_hash, seq, problem, message)

    expected_seq, prev_hash, checked = 1, GENESIS, 0
    rows = session.scalars(
        select(AuditEntry).where(AuditEntry.seq <= head.seq).order_by(AuditEntry.seq)
        .execution_options(yield_per=batch, populate_existing=True)
    )
    for e in rows:
        if e.seq != expected_seq:
            gap = f"seq {expected_seq}" if e.seq == expected_seq + 1 else f"seq {expected_seq}..{e.seq - 1}"
            return bad(expected_seq, Problem.MISSING, f"{gap} deleted: the log jumps to seq {e.seq}", checked)
        if e.prev_hash != prev_hash:
            owner = session.scalar(select(AuditEntry.seq).where(AuditEntry.entry_hash == e.prev_hash))
            if owner is not None and owner >= e.seq:
                return bad(e.seq, Problem.REORDERED, f"seq {e.seq} links to seq {owner}, which comes after it: "
                           "rows were moved", checked)
            return bad(e.seq, Problem.BROKEN_LINK, f"seq {e.seq} does not link to seq {e.seq - 1}: seq {e.seq - 1} "
                       "was rewritten with a new hash, or rows were removed and renumbered", checked)
        if compute_hash(e) != e.entry_hash:
            return bad(e.seq, Problem.EDITED, f"seq {e.seq} was edited: its content does not match its hash", checked)
        checked += 1
        expected_seq, prev_hash = e.seq + 1, e.entry_hash
    if checked != head.seq:
        return bad(expected_seq, Problem.MISSING, f"the chain head records seq {head.seq} but the log ends at seq "
                   f"{checked}: the newest entries were deleted (or the head was edited)", checked)
    if prev_hash != head.entry_hash:
        return bad(checked, Problem.BROKEN_LINK, f"the chain head does not match seq {checked}: it was rewritten "
                   "with a new hash (or the head was edited)", checked)
    return VerifyResult(True, checked, head.seq, head.entry_hash)
