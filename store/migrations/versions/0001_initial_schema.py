"""Initial schema: datasets, scenarios, plans, API keys, the audit log and its chain head.

Written out in full (not ``metadata.create_all``) so this revision never changes when the models
do; ``tests/test_store.py`` checks that models and migrations agree. Triggers make decided plans
and uploaded datasets immutable in the database itself, on both SQLite and PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GENESIS = "0" * 64
TS = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# (trigger, table, events, WHEN condition or None, message)
GUARDS = [
    ("plans_decided_immutable", "plans", ("UPDATE", "DELETE"), "OLD.approval IN ('approved', 'rejected')",
     "a decided plan is immutable"),
    ("datasets_immutable", "datasets", ("UPDATE",), None, "a dataset is immutable: upload a new one"),
    ("scenarios_immutable", "scenarios", ("UPDATE",), None, "a scenario is immutable: save a new one"),
]


def _create_guards() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION commitplan_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'commitplan: %', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; END
            $$""")
        for name, table, events, when, message in GUARDS:
            condition = f"WHEN ({when}) " if when else ""
            op.execute(f"CREATE TRIGGER {name} BEFORE {' OR '.join(events)} ON {table} FOR EACH ROW "
                       f"{condition}EXECUTE FUNCTION commitplan_refuse('{message}')")
        return
    for name, table, events, when, message in GUARDS:  # SQLite: one trigger per event
        for ev in events:
            condition = f"WHEN {when} " if when else ""
            op.execute(f"CREATE TRIGGER {name}_{ev.lower()} BEFORE {ev} ON {table} FOR EACH ROW {condition}"
                       f"BEGIN SELECT RAISE(ABORT, 'commitplan: {message}'); END")


def _drop_guards() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, table, events, _, _ in GUARDS:
        if postgres:
            op.execute(f"DROP TRIGGER {name} ON {table}")
        else:
            for ev in events:
                op.execute(f"DROP TRIGGER {name}_{ev.lower()}")
    if postgres:
        op.execute("DROP FUNCTION commitplan_refuse()")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('usage', 'billing', 'prices', 'commitments')", name=op.f("ck_datasets_kind_valid")),
        sa.CheckConstraint("size >= 0", name=op.f("ck_datasets_size_nonnegative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    op.create_index(op.f("ix_datasets_sha256"), "datasets", ["sha256"])

    op.create_table(
        "scenarios",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("yaml_text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
    )

    op.create_table(
        "plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approval", sa.String(16), nullable=False),
        sa.Column("usage_dataset_id", sa.Uuid(), nullable=False),
        sa.Column("prices_dataset_id", sa.Uuid(), nullable=True),
        sa.Column("commitments_dataset_id", sa.Uuid(), nullable=True),
        sa.Column("scenario_id", sa.Uuid(), nullable=True),
        sa.Column("policy_json", sa.Text(), nullable=False),
        sa.Column("horizon_months", sa.Integer(), nullable=True),
        sa.Column("options_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("submitted_by", sa.String(100), nullable=True),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_plans_status_valid")),
        sa.CheckConstraint("approval IN ('draft', 'submitted', 'approved', 'rejected')",
                           name=op.f("ck_plans_approval_valid")),
        sa.CheckConstraint("approval = 'draft' OR (status = 'done' AND content_hash IS NOT NULL "
                           "AND submitted_by IS NOT NULL)", name=op.f("ck_plans_submitted_plans_are_done")),
        sa.CheckConstraint("(approval IN ('approved', 'rejected')) = (decided_by IS NOT NULL)",
                           name=op.f("ck_plans_decided_iff_decider")),
        sa.CheckConstraint("decided_by IS NULL OR (decided_by <> created_by AND decided_by <> submitted_by)",
                           name=op.f("ck_plans_no_self_decision")),
        sa.ForeignKeyConstraint(["usage_dataset_id"], ["datasets.id"],
                                name=op.f("fk_plans_usage_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["prices_dataset_id"], ["datasets.id"],
                                name=op.f("fk_plans_prices_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["commitments_dataset_id"], ["datasets.id"],
                                name=op.f("fk_plans_commitments_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["scenario_id"], ["scenarios.id"], name=op.f("fk_plans_scenario_id_scenarios")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_index(op.f("ix_plans_approval"), "plans", ["approval"])
    op.create_index(op.f("ix_plans_created_at"), "plans", ["created_at"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'procurement', 'finance', 'admin')", name=op.f("ck_api_keys_role_valid")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_name"), "api_keys", ["name"])

    op.create_table(
        "audit_log",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=True),
        sa.Column("actor_key_id", sa.String(36), nullable=True),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target_type", sa.String(30), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("hash_before", sa.String(64), nullable=True),
        sa.Column("hash_after", sa.String(64), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("outcome IN ('ok', 'refused')", name=op.f("ck_audit_log_outcome_valid")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
        sa.UniqueConstraint("entry_hash", name=op.f("uq_audit_log_entry_hash")),
    )
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index("ix_audit_log_target", "audit_log", ["target_type", "target_id"])

    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "entry_hash": GENESIS}])
    _create_guards()


def downgrade() -> None:
    _drop_guards()
    for table in ("audit_head", "audit_log", "api_keys", "plans", "scenarios", "datasets"):
        op.drop_table(table)
