"""The store on SQLite and PostgreSQL: migrations, API keys, the audit chain, the approval workflow.

Every test taking ``db`` runs on both databases (``tests/conftest.py``). Tampering is done the way
an attacker would: plain SQL on a separate connection, then :func:`store.verify` on a fresh session.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

import store
from store import Actor, Outcome, Role
from store.audit import Problem, append
from store.db import (
    alembic_config,
    make_engine,
    normalize_url,
    session_factory,
    writing,
)
from store.hashing import sha256_hex
from store.models import ApiKey, AuditEntry, AuditOutcome, Base, Plan

ALICE = Actor("alice", Role.PROCUREMENT)  # creates and submits
PAULA = Actor("paula", Role.PROCUREMENT)
FRED = Actor("fred", Role.FINANCE)
FIONA = Actor("fiona", Role.FINANCE)
ADAM = Actor("adam", Role.ADMIN)
VICTOR = Actor("victor", Role.VIEWER)
WORKER = Actor("worker", Role.ADMIN)


@dataclass
class DB:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    def raw(self, sql: str, **params: object) -> list[tuple]:
        """Plain SQL on its own connection, committed: what someone with database access can do."""
        with self.engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else []

    def verify(self) -> store.VerifyResult:
        with self.sessions() as s:
            return store.verify(s)


@pytest.fixture
def db(db_url: str) -> Iterator[DB]:
    store.upgrade(db_url)
    engine = make_engine(db_url, pool_size=25, max_overflow=0)
    yield DB(db_url, engine, session_factory(engine))
    engine.dispose()


def _plan_row(db: DB, plan_id: uuid.UUID) -> tuple:
    with db.engine.connect() as conn:
        return tuple(conn.execute(select(Plan.__table__).where(Plan.__table__.c.id == plan_id)).one())


def _audit_rows(db: DB) -> list[AuditEntry]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def _plan(db: DB, state: str = "done", creator: Actor = ALICE, submitter: Actor = ALICE,
          decider: Actor = FRED) -> uuid.UUID:
    """A plan in ``state``: queued, done (draft), submitted, approved or rejected."""
    with db.sessions() as s:
        usage = store.add_dataset(s, creator, "usage", "usage.csv", b"timestamp,pool,quantity\n").value
        prices = store.add_dataset(s, creator, "prices", "prices.csv", b"offering,kind\n").value
        plan = store.create_plan(s, creator, "June buy", usage.id, prices.id, policy={"coverage_max": 0.9},
                                 horizon_months=12).value
        if state != "queued":
            assert store.claim_run(s, plan.id, WORKER).ok
            assert store.finish_run(s, plan.id, WORKER, {"purchases": [], "summary": {"coverage": 0.8}}).ok
        if state in ("submitted", "approved", "rejected"):
            assert store.submit(s, plan.id, submitter).ok
        if state in ("approved", "rejected"):
            assert store.decide(s, plan.id, decider, state == "approved").ok
        return plan.id


# --------------------------------------------------------------------------- engine, URLs, migrations

def test_database_url_prefers_env_then_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COMMITPLAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("COMMITPLAN_DATA_DIR", str(tmp_path / "data"))
    assert store.database_url() == f"sqlite:///{tmp_path / 'data' / 'commitplan.db'}"
    assert (tmp_path / "data").is_dir()
    assert store.database_url(tmp_path / "x") == f"sqlite:///{tmp_path / 'x' / 'commitplan.db'}"
    monkeypatch.setenv("COMMITPLAN_DATABASE_URL", "postgresql://u@h/db")
    assert store.database_url() == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_migrations_from_empty_to_head_match_the_models(db_url: str) -> None:
    store.upgrade(db_url)
    store.upgrade(db_url)  # idempotent
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert ctx.get_current_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert set(inspect(conn).get_table_names()) >= {t for t in Base.metadata.tables}
            from alembic.autogenerate import compare_metadata
            assert compare_metadata(ctx, Base.metadata) == []
            assert conn.execute(text("SELECT seq, entry_hash FROM audit_head")).one() == (0, "0" * 64)
        with engine.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    store.upgrade(db_url)


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    engine.dispose()


# --------------------------------------------------------------------------- API keys

def test_keys_create_authenticate_revoke(db: DB) -> None:
    with db.sessions() as s:
        key, token = store.create_key(s, "alice", "procurement")
        assert token.startswith(f"cp_{key.prefix}_") and len(token) > 50
        found = store.authenticate(s, token)
        assert found is not None and found.id == key.id and Actor.of(found) == Actor("alice", Role.PROCUREMENT,
                                                                                         str(key.id))
        wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        for bad in (wrong, "cp_000000000000_" + token.split("_", 2)[2], "nonsense", "", "cp_x_y"):
            assert store.authenticate(s, bad) is None
        store.create_key(s, "alice", "finance")  # a second key of the same principal
        assert store.revoke_key(s, key.id)
        assert store.authenticate(s, token) is None
        assert not store.revoke_key(s, key.id)  # already revoked: refused, and audited
    stored = db.raw("SELECT * FROM api_keys") + db.raw("SELECT * FROM audit_log")
    dump = repr(stored)
    assert token not in dump and token.split("_", 2)[2] not in dump
    assert sha256_hex(token) in dump  # only the hash
    actions = [(e.action, e.outcome) for e in _audit_rows(db)]
    assert actions == [("key.create", "ok"), ("key.create", "ok"), ("key.revoke", "ok"), ("key.revoke", "refused")]
    assert db.verify().ok


def test_key_roles_are_checked(db: DB) -> None:
    with db.sessions() as s, pytest.raises(ValueError):
        store.create_key(s, "mallory", "root")
    with pytest.raises(IntegrityError):
        db.raw("INSERT INTO api_keys (id, name, role, prefix, key_hash, created_by, created_at) "
               "VALUES (:id, 'm', 'superuser', 'p', 'h', 'x', :at)", id=uuid.uuid4().hex if "sqlite" in db.url
               else str(uuid.uuid4()), at="2025-01-01 00:00:00")


# --------------------------------------------------------------------------- the audit chain

def _chain(db: DB, n: int = 6) -> None:
    with db.sessions() as s:
        for i in range(n):
            with writing(s):
                append(s, ALICE, "test.event", ("thing", str(i)), AuditOutcome.OK, {"i": i, "note": "héllo"},
                       None, sha256_hex(str(i)))


def test_audit_chain_verifies(db: DB) -> None:
    _chain(db)
    result = db.verify()
    assert result.ok and result.checked == 6 and result.head_seq == 6
    assert result.head_hash == _audit_rows(db)[-1].entry_hash


@pytest.mark.parametrize("column, value", [
    ("detail", '{"i":2,"note":"edited"}'), ("actor", "mallory"), ("outcome", "refused"), ("hash_after", "0" * 64),
    ("at", "2020-01-01 00:00:00"),
])
def test_audit_edited_row_is_named(db: DB, column: str, value: str) -> None:
    _chain(db)
    db.raw(f"UPDATE audit_log SET {column} = :v WHERE seq = 3", v=value)
    result = db.verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, 3, Problem.EDITED), result
    assert result.checked == 2 and "seq 3" in result.message


def test_audit_rehashed_edit_breaks_the_next_link(db: DB) -> None:
    _chain(db)
    db.raw("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
    with db.sessions() as s:
        entry = s.get(AuditEntry, 3)
        forged = store.audit.compute_hash(entry)
    db.raw("UPDATE audit_log SET entry_hash = :h WHERE seq = 3", h=forged)
    result = db.verify()
    assert (result.first_bad_seq, result.problem) == (4, Problem.BROKEN_LINK), result


@pytest.mark.parametrize("seqs, first_bad", [([3], 3), ([1], 1), ([2, 3, 4], 2), ([6], 6), ([5, 6], 5)])
def test_audit_deleted_rows_are_detected(db: DB, seqs: list[int], first_bad: int) -> None:
    _chain(db)
    for seq in seqs:
        db.raw("DELETE FROM audit_log WHERE seq = :s", s=seq)
    result = db.verify()
    assert (result.ok, result.first_bad_seq, result.problem) == (False, first_bad, Problem.MISSING), result


def test_audit_reordered_rows_are_detected(db: DB) -> None:
    _chain(db)
    db.raw("UPDATE audit_log SET seq = -1 WHERE seq = 2")
    db.raw("UPDATE audit_log SET seq = 2 WHERE seq = 3")
    db.raw("UPDATE audit_log SET seq = 3 WHERE seq = -1")
    result = db.verify()
    assert (result.first_bad_seq, result.problem) == (2, Problem.REORDERED), result


def test_audit_serialization_is_stable_across_a_round_trip(db: DB) -> None:
    """The hash recomputed from what the database returns equals the one computed before writing."""
    _chain(db, 2)
    for e in _audit_rows(db):
        assert store.audit.compute_hash(e) == e.entry_hash
        assert e.at.tzinfo is not None and e.detail == f'{{"i":{e.target_id},"note":"héllo"}}'


# --------------------------------------------------------------------------- the approval workflow

# (state, creator, submitter, action, actor, expected outcome, why)
TRANSITIONS = [
    ("done", ALICE, ALICE, "submit", ALICE, Outcome.OK, "the creator may submit"),
    ("done", ALICE, ALICE, "submit", FRED, Outcome.OK, "finance may submit"),
    ("submitted", ALICE, ALICE, "approve", FRED, Outcome.OK, "finance approves"),
    ("submitted", ALICE, ALICE, "reject", FRED, Outcome.OK, "finance rejects"),
    ("submitted", ALICE, ALICE, "approve", ADAM, Outcome.OK, "admin approves"),
    ("done", ALICE, ALICE, "submit", VICTOR, Outcome.FORBIDDEN, "a viewer cannot submit"),
    ("submitted", ALICE, ALICE, "approve", PAULA, Outcome.FORBIDDEN, "procurement cannot approve"),
    ("submitted", ALICE, ALICE, "reject", PAULA, Outcome.FORBIDDEN, "procurement cannot reject"),
    ("submitted", ALICE, ALICE, "approve", VICTOR, Outcome.FORBIDDEN, "a viewer cannot approve"),
    ("submitted", FRED, PAULA, "approve", FRED, Outcome.FORBIDDEN, "no approving one's own plan"),
    ("submitted", FRED, PAULA, "reject", FRED, Outcome.FORBIDDEN, "no rejecting one's own plan"),
    ("submitted", ALICE, FIONA, "approve", FIONA, Outcome.FORBIDDEN, "no approving a plan one submitted"),
    ("submitted", ADAM, ADAM, "approve", ADAM, Outcome.FORBIDDEN, "admin is no exception"),
    ("approved", ALICE, ALICE, "approve", FIONA, Outcome.CONFLICT, "decided twice"),
    ("approved", ALICE, ALICE, "reject", FIONA, Outcome.CONFLICT, "an approval is final"),
    ("rejected", ALICE, ALICE, "approve", FIONA, Outcome.CONFLICT, "a rejection is final"),
    ("done", ALICE, ALICE, "approve", FRED, Outcome.CONFLICT, "not submitted"),
    ("queued", ALICE, ALICE, "submit", ALICE, Outcome.CONFLICT, "not finished"),
    ("submitted", ALICE, ALICE, "submit", ALICE, Outcome.CONFLICT, "submitted twice"),
    ("approved", ALICE, ALICE, "submit", ALICE, Outcome.CONFLICT, "an approved plan is immutable"),
    ("missing", ALICE, ALICE, "approve", FRED, Outcome.NOT_FOUND, "no such plan"),
]


@pytest.mark.parametrize("state, creator, submitter, action, actor, expected, why", TRANSITIONS,
                         ids=[t[-1].replace(" ", "_") for t in TRANSITIONS])
def test_transition(db: DB, state: str, creator: Actor, submitter: Actor, action: str, actor: Actor,
                    expected: Outcome, why: str) -> None:
    pid = uuid.uuid4() if state == "missing" else _plan(db, state, creator, submitter)
    before = None if state == "missing" else _plan_row(db, pid)
    entries = len(_audit_rows(db))
    with db.sessions() as s:
        if action == "submit":
            result = store.submit(s, pid, actor)
        else:
            result = store.decide(s, pid, actor, action == "approve", comment="looks right")
    assert result.outcome is expected, (why, result.reason)
    assert result.http_status == {Outcome.OK: 200, Outcome.FORBIDDEN: 403, Outcome.CONFLICT: 409,
                                  Outcome.NOT_FOUND: 404}[expected]
    log = _audit_rows(db)
    assert len(log) == entries + 1  # exactly one entry, refused or not
    last = log[-1]
    assert (last.action, last.actor, last.target_id) == (f"plan.{action}", actor.name, str(pid))
    if expected is Outcome.OK:
        assert last.outcome == "ok" and last.hash_before != last.hash_after
        after = _plan_row(db, pid)
        assert after != before
        assert result.value.approval == {"submit": "submitted", "approve": "approved", "reject": "rejected"}[action]
    else:
        assert last.outcome == "refused" and result.reason and last.detail_obj["reason"] == result.reason
        assert last.hash_before == last.hash_after
        if before is not None:
            assert _plan_row(db, pid) == before  # byte-identical: a refusal changes nothing but the log
    assert db.verify().ok


def test_approval_records_the_content_hash_and_the_plan_cannot_change(db: DB) -> None:
    pid = _plan(db, "approved")
    with db.sessions() as s:
        plan = s.get(Plan, pid)
        assert plan.decided_by == "fred" and plan.content_hash == store.content_hash(s, plan)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "plan.approve")).one()
        assert entry.detail_obj["content_hash"] == plan.content_hash
        assert store.verify_approved(s) == []
    with pytest.raises(IntegrityError, match="immutable"):
        db.raw("UPDATE plans SET result_json = '{}' WHERE approval = 'approved'")
    with pytest.raises(IntegrityError, match="immutable"):
        db.raw("UPDATE datasets SET content = :c", c=b"tampered")
    # past the triggers (someone with DDL rights), the content hash still tells
    if db.url.startswith("sqlite"):
        db.raw("DROP TRIGGER plans_decided_immutable_update")
    else:
        db.raw("ALTER TABLE plans DISABLE TRIGGER plans_decided_immutable")
    db.raw("UPDATE plans SET result_json = '{\"purchases\":[{\"offering\":\"x\"}]}' WHERE approval = 'approved'")
    with db.sessions() as s:
        problems = store.verify_approved(s)
    assert len(problems) == 1 and "changed after approval" in problems[0]


def test_database_refuses_a_self_decision_written_by_hand(db: DB) -> None:
    pid = _plan(db, "submitted")
    key = pid.hex if db.url.startswith("sqlite") else str(pid)
    with pytest.raises(IntegrityError):
        db.raw("UPDATE plans SET approval = 'approved', decided_by = created_by WHERE id = :id", id=key)


def test_run_lifecycle_and_refusals(db: DB) -> None:
    pid = _plan(db, "queued")
    with db.sessions() as s:
        assert store.claim_run(s, pid, WORKER).ok
        assert store.claim_run(s, pid, WORKER).outcome is Outcome.CONFLICT  # a second worker does not get it
        failed = store.fail_run(s, pid, WORKER, "solver: infeasible limits")
        assert failed.ok and failed.value.status == "failed" and failed.value.error.startswith("solver")
        assert store.submit(s, pid, ALICE).outcome is Outcome.CONFLICT
        usage = store.add_dataset(s, ALICE, "usage", "u.csv", b"x").value
        assert store.create_plan(s, ALICE, "p", usage.id, prices_dataset_id=usage.id).outcome is Outcome.INVALID
        assert store.create_plan(s, ALICE, "p", uuid.uuid4()).outcome is Outcome.NOT_FOUND
        assert store.create_plan(s, VICTOR, "p", usage.id).outcome is Outcome.FORBIDDEN
        assert store.add_dataset(s, VICTOR, "usage", "u.csv", b"x").outcome is Outcome.FORBIDDEN
        assert store.add_scenario(s, ALICE, "lower growth", "overlays: []\n").ok
    refused = [e.action for e in _audit_rows(db) if e.outcome == "refused"]
    assert refused == ["plan.start", "plan.submit", "plan.create", "plan.create", "plan.create", "dataset.create"]
    assert db.verify().ok


# --------------------------------------------------------------------------- concurrency

def test_twenty_concurrent_decisions_leave_exactly_one(db: DB) -> None:
    pid = _plan(db, "submitted")
    deciders = [Actor(f"finance{i}", Role.FINANCE) for i in range(20)]
    barrier = threading.Barrier(len(deciders))
    results: dict[int, store.Result] = {}
    errors: list[BaseException] = []

    def decide(i: int) -> None:
        try:
            with db.sessions() as s:  # one session, one connection per thread
                barrier.wait()
                results[i] = store.decide(s, pid, deciders[i], approve=i % 2 == 0, comment=f"by {i}")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(len(deciders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    outcomes = [r.outcome for r in results.values()]
    assert outcomes.count(Outcome.OK) == 1 and outcomes.count(Outcome.CONFLICT) == 19, outcomes
    winner = next(i for i, r in results.items() if r.ok)
    with db.sessions() as s:
        plan = s.get(Plan, pid)
        assert plan.decided_by == f"finance{winner}"
        assert plan.approval == ("approved" if winner % 2 == 0 else "rejected")
        decisions = s.scalars(select(AuditEntry).where(AuditEntry.target_id == str(pid),
                                                       AuditEntry.action.in_(["plan.approve", "plan.reject"]))).all()
        assert sorted(e.outcome for e in decisions) == ["ok"] + ["refused"] * 19
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 0
    result = db.verify()
    assert result.ok and result.checked == len(_audit_rows(db)), result


def test_requeue_run_audit_refused_and_run_once(db: DB) -> None:
    pid = _plan(db, "queued")
    with db.sessions() as s:
        assert store.requeue_run(s, pid, WORKER).outcome is Outcome.CONFLICT  # queued, not running
        assert store.claim_run(s, pid, WORKER).ok
        r = store.requeue_run(s, pid, WORKER)
        assert r.ok and r.value.status == "queued" and r.value.started_at is None
        store.audit_refused(s, VICTOR, "plan.approve", ("plan", str(pid)), {"reason": "no key"})
    rows = _audit_rows(db)
    assert [(e.action, e.outcome) for e in rows[-3:]] == [("plan.start", "ok"), ("plan.requeue", "ok"),
                                                          ("plan.approve", "refused")]
    assert db.verify().ok
    calls = []

    def op() -> tuple[int, object]:  # a store write inside run_once joins its transaction
        calls.append(1)
        return 201, {"id": str(store.create_plan(s, ALICE, "x", uuid.UUID(rows[0].target_id)).value.id)}

    with db.sessions() as s:
        first = store.run_once(s, "alice", "POST /v1/plans {}", "k", "f" * 64, op)
        again = store.run_once(s, "alice", "POST /v1/plans {}", "k", "f" * 64, op)
        assert (first.status, first.replayed, again.replayed, again.body) == (201, False, True, first.body)
        with pytest.raises(store.KeyReused):
            store.run_once(s, "alice", "POST /v1/plans {}", "k", "e" * 64, op)
        assert len(calls) == 1
        refused = store.run_once(s, "alice", "POST /v1/plans {}", "k2", "f" * 64, lambda: (403, None))
        assert refused.status == 403 and s.scalar(select(func.count()).select_from(store.IdempotencyKey)) == 1

        def boom() -> tuple[int, object]:
            store.create_plan(s, ALICE, "rolled back", uuid.UUID(rows[0].target_id))
            raise RuntimeError("crash after the write")

        n = s.scalar(select(func.count()).select_from(Plan))
        with pytest.raises(RuntimeError):
            store.run_once(s, "alice", "POST /v1/plans {}", "k3", "f" * 64, boom)
        assert s.scalar(select(func.count()).select_from(Plan)) == n  # the write and the key rolled back together
        assert s.scalar(select(func.count()).select_from(store.IdempotencyKey)) == 1
    assert db.verify().ok
