"""Persistence of datasets, scenarios, plans, approvals, API keys and the audit log.

SQLite by default (a file in the data directory, nothing to set up), PostgreSQL by URL; one schema
and one set of Alembic migrations (shipped in ``store/migrations``) for both. Usage::

    from store import connect, Actor, create_key, decide
    Session = connect()                 # migrates to head, returns a session factory
    with Session() as s:
        key, token = create_key(s, "alice", "finance")
"""

from store.audit import VerifyResult, verify
from store.audit import entries_for as audit_entries
from store.audit import refused as audit_refused
from store.datasets import add_dataset, add_scenario, dataset_content
from store.db import (
    begin_write,
    connect,
    data_dir,
    database_url,
    make_engine,
    session_factory,
    upgrade,
    writing,
)
from store.idempotency import KeyReused, Stored, run_once
from store.keys import PERMISSIONS, Actor, Role, authenticate, create_key, revoke_key
from store.models import (
    ApiKey,
    Approval,
    AuditEntry,
    Dataset,
    DatasetKind,
    IdempotencyKey,
    Plan,
    RunStatus,
    Scenario,
)
from store.plans import (
    claim_run,
    content_hash,
    create_plan,
    decide,
    fail_run,
    finish_run,
    requeue_run,
    submit,
    verify_approved,
)
from store.rules import Outcome, Result

__all__ = [
    "PERMISSIONS", "Actor", "ApiKey", "Approval", "AuditEntry", "Dataset", "DatasetKind", "Outcome", "Plan",
    "Result", "Role", "RunStatus", "Scenario", "VerifyResult", "add_dataset", "add_scenario", "authenticate",
    "begin_write", "claim_run", "connect", "content_hash", "create_key", "create_plan", "data_dir", "database_url",
    "dataset_content", "decide", "fail_run", "finish_run", "make_engine", "revoke_key", "session_factory", "submit",
    "upgrade", "verify", "verify_approved", "writing",
    "IdempotencyKey", "KeyReused", "Stored", "audit_entries", "audit_refused", "requeue_run", "run_once",
]
