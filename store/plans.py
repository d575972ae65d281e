"""Plan operations: create, run (claim, finish, fail), submit, approve or reject; and proof of approval.

Every operation is one transaction (:func:`store.db.writing`) that writes one audit entry, refused
or not; a refused one changes nothing else. Each change is a conditional UPDATE whose WHERE
restates the state it starts from (``… WHERE id = ? AND approval = 'submitted'``) and whose
rowcount says whether this caller won: of 20 concurrent deciders exactly one matches the row, on
PostgreSQL because the others wait on its row lock and then re-evaluate the WHERE against the
committed decision, on SQLite because writers run one at a time. Losers get ``conflict`` (409).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from store import audit
from store.db import writing
from store.hashing import canonical_json, row_hash, sha256_hex
from store.keys import Actor
from store.models import (
    Approval,
    AuditEntry,
    AuditOutcome,
    Dataset,
    DatasetKind,
    Plan,
    RunStatus,
    Scenario,
    utcnow,
)
from store.rules import Outcome, PlanFacts, Result, check

Rule = Callable[[Plan | None], tuple[Outcome, str]]


def facts(plan: Plan | None) -> PlanFacts | None:
    if plan is None:
        return None
    return PlanFacts(plan.status, plan.approval, plan.created_by, plan.submitted_by, plan.decided_by)


def content_hash(session: Session, plan: Plan, result_json: str | None = None) -> str:
    """SHA-256 over what a plan is: its inputs' hashes, policy, horizon, options and result.

    Recorded when the run finishes and again in the approval's audit entry: an approved plan whose
    recomputed hash still matches is provably the one that was approved.
    """
    def digest(model: type[Dataset | Scenario], key: uuid.UUID | None) -> str | None:
        return None if key is None else session.scalar(select(model.sha256).where(model.id == key))

    result = plan.result_json if result_json is None else result_json
    return sha256_hex(canonical_json({
        "usage": digest(Dataset, plan.usage_dataset_id), "prices": digest(Dataset, plan.prices_dataset_id),
        "commitments": digest(Dataset, plan.commitments_dataset_id), "scenario": digest(Scenario, plan.scenario_id),
        "policy": plan.policy_json, "horizon_months": plan.horizon_months, "options": plan.options_json,
        "result": None if result is None else sha256_hex(result),
    }))


def _pid(plan_id: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(plan_id))
    except ValueError:
        return None


def _transition(
    session: Session,
    actor: Actor,
    action: str,
    plan_id: uuid.UUID | str,
    rule: Rule,
    guard: list[ColumnElement[bool]],
    values: Callable[[Plan], dict[str, Any]],
    detail: Mapping[str, Any] | None = None,
) -> Result[Plan]:
    """Check ``rule``; if it allows, UPDATE under ``guard``; audit either way; one transaction."""
    pid = _pid(plan_id)
    with writing(session):
        plan = session.get(Plan, pid, populate_existing=True) if pid else None
        before = row_hash(plan) if plan else None
        outcome, reason = rule(plan)
        if outcome is Outcome.OK and plan is not None:
            stmt = update(Plan).where(Plan.id == pid, *guard).values(**values(plan))
            won = session.execute(stmt.execution_options(synchronize_session=False)).rowcount == 1
            session.refresh(plan)
            if not won:  # someone else changed it between our read and our UPDATE: say what they did
                outcome, reason = rule(plan)
                if outcome is Outcome.OK:
                    outcome, reason = Outcome.CONFLICT, "the plan changed concurrently: retry"
        after = row_hash(plan) if plan else None
        record = {**(detail or {}), **({"reason": reason} if reason else {})}
        if outcome is Outcome.OK and plan is not None and plan.content_hash:
            record["content_hash"] = plan.content_hash
        audit.append(session, actor, action, ("plan", str(pid) if pid else str(plan_id)),
                     AuditOutcome.OK if outcome is Outcome.OK else AuditOutcome.REFUSED, record, before, after)
    return Result(outcome, plan, reason)


def submit(session: Session, plan_id: uuid.UUID | str, actor: Actor) -> Result[Plan]:
    """Draft → submitted, for a finished plan; by procurement, finance or admin (creator included)."""
    return _transition(
        session, actor, "plan.submit", plan_id, lambda p: check("submit", facts(p), actor),
        [Plan.approval == Approval.DRAFT.value, Plan.status == RunStatus.DONE.value],
        lambda p: {"approval": Approval.SUBMITTED.value, "submitted_by": actor.name, "submitted_at": utcnow()},
    )


def decide(session: Session, plan_id: uuid.UUID | str, actor: Actor, approve: bool, comment: str = "") -> Result[Plan]:
    """Submitted → approved or rejected, once, by finance or admin other than creator and submitter."""
    action = "approve" if approve else "reject"
    return _transition(
        session, actor, f"plan.{action}", plan_id, lambda p: check(action, facts(p), actor),
        [Plan.approval == Approval.SUBMITTED.value, Plan.created_by != actor.name, Plan.submitted_by != actor.name],
        lambda p: {"approval": (Approval.APPROVED if approve else Approval.REJECTED).value, "decided_by": actor.name,
                   "decided_at": utcnow(), "decision_comment": comment or None},
        {"comment": comment} if comment else None,
    )


def _run_rule(needed: RunStatus, actor: Actor) -> Rule:
    def rule(plan: Plan | None) -> tuple[Outcome, str]:
        if plan is None:
            return Outcome.NOT_FOUND, "no such plan"
        if not actor.can("create"):
            return Outcome.FORBIDDEN, f"role {actor.role.value} cannot run plans"
        if plan.status != needed or plan.approval != Approval.DRAFT:
            return Outcome.CONFLICT, f"the plan is {plan.status} ({plan.approval}), not {needed.value}"
        return Outcome.OK, ""
    return rule


def _run_guard(needed: RunStatus) -> list[ColumnElement[bool]]:
    return [Plan.status == needed.value, Plan.approval == Approval.DRAFT.value]


def claim_run(session: Session, plan_id: uuid.UUID | str, actor: Actor) -> Result[Plan]:
    """Queued → running: a worker takes the job; of several workers exactly one gets it."""
    return _transition(session, actor, "plan.start", plan_id, _run_rule(RunStatus.QUEUED, actor),
                       _run_guard(RunStatus.QUEUED), lambda p: {"status": RunStatus.RUNNING.value, "started_at": utcnow()})


def finish_run(session: Session, plan_id: uuid.UUID | str, actor: Actor, result: Mapping[str, Any]) -> Result[Plan]:
    """Running → done, storing the plan JSON and the content hash that approval will vouch for."""
    text = canonical_json(dict(result))
    return _transition(session, actor, "plan.finish", plan_id, _run_rule(RunStatus.RUNNING, actor),
                       _run_guard(RunStatus.RUNNING),
                       lambda p: {"status": RunStatus.DONE.value, "finished_at": utcnow(), "result_json": text,
                                  "content_hash": content_hash(session, p, text)})


def fail_run(session: Session, plan_id: uuid.UUID | str, actor: Actor, error: str) -> Result[Plan]:
    """Running → failed, with the error the user will read."""
    return _transition(session, actor, "plan.fail", plan_id, _run_rule(RunStatus.RUNNING, actor),
                       _run_guard(RunStatus.RUNNING),
                       lambda p: {"status": RunStatus.FAILED.value, "finished_at": utcnow(), "error": error},
                       {"error": error[:500]})


def requeue_run(session: Session, plan_id: uuid.UUID | str, actor: Actor) -> Result[Plan]:
    """Running → queued: the process running the plan stopped; a worker will claim it again."""
    return _transition(session, actor, "plan.requeue", plan_id, _run_rule(RunStatus.RUNNING, actor),
                       _run_guard(RunStatus.RUNNING),
                       lambda p: {"status": RunStatus.QUEUED.value, "started_at": None},
                       {"reason": "the process running it stopped"})


def create_plan(
    session: Session,
    actor: Actor,
    name: str,
    usage_dataset_id: uuid.UUID,
    prices_dataset_id: uuid.UUID | None = None,
    commitments_dataset_id: uuid.UUID | None = None,
    scenario_id: uuid.UUID | None = None,
    policy: Mapping[str, Any] | None = None,
    horizon_months: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> Result[Plan]:
    """A queued draft plan over stored inputs (the worker then claims it)."""
    wanted = {"usage": (usage_dataset_id, (DatasetKind.USAGE, DatasetKind.BILLING)),
              "prices": (prices_dataset_id, (DatasetKind.PRICES,)),
              "commitments": (commitments_dataset_id, (DatasetKind.COMMITMENTS,))}
    with writing(session):
        outcome, reason = Outcome.OK, ""
        if not actor.can("create"):
            outcome, reason = Outcome.FORBIDDEN, f"role {actor.role.value} cannot create plans"
        for role, (key, kinds) in wanted.items():
            kind = None if key is None else session.scalar(select(Dataset.kind).where(Dataset.id == key))
            if outcome is Outcome.OK and key is not None and kind not in kinds:
                outcome = Outcome.NOT_FOUND if kind is None else Outcome.INVALID
                reason = f"{role} dataset {key}: " + ("no such dataset" if kind is None else f"is {kind} data")
        if outcome is Outcome.OK and scenario_id is not None and session.get(Scenario, scenario_id) is None:
            outcome, reason = Outcome.NOT_FOUND, f"scenario {scenario_id}: no such scenario"
        plan = None
        if outcome is Outcome.OK:
            plan = Plan(id=uuid.uuid4(), name=name, status=RunStatus.QUEUED.value, approval=Approval.DRAFT.value,
                        usage_dataset_id=usage_dataset_id, prices_dataset_id=prices_dataset_id,
                        commitments_dataset_id=commitments_dataset_id, scenario_id=scenario_id,
                        policy_json=canonical_json(dict(policy or {})), horizon_months=horizon_months,
                        options_json=canonical_json(dict(options or {})), created_by=actor.name, created_at=utcnow())
            session.add(plan)
            session.flush()
        audit.append(session, actor, "plan.create", ("plan", str(plan.id) if plan else None),
                     AuditOutcome.OK if plan else AuditOutcome.REFUSED, {"name": name, **({"reason": reason} if reason else {})},
                     None, row_hash(plan) if plan else None)
    return Result(outcome, plan, reason)


def verify_approved(session: Session) -> list[str]:
    """Problems with approved plans: each must still hash to what its approval entry recorded,
    and each input dataset's bytes must still hash to the SHA-256 the plan was computed from."""
    problems: list[str] = []
    for plan in session.scalars(select(Plan).where(Plan.approval == Approval.APPROVED.value)):
        entry = session.scalars(select(AuditEntry).where(
            AuditEntry.target_type == "plan", AuditEntry.target_id == str(plan.id),
            AuditEntry.action == "plan.approve", AuditEntry.outcome == AuditOutcome.OK.value)).first()
        recorded = entry.detail_obj.get("content_hash") if entry else None
        now = content_hash(session, plan)
        if recorded is None:
            problems.append(f"plan {plan.id}: approved but no approval entry in the audit log")
        elif now != recorded or plan.content_hash != recorded:
            problems.append(f"plan {plan.id}: its content changed after approval (seq {entry.seq} recorded {recorded})")
        for key in (plan.usage_dataset_id, plan.prices_dataset_id, plan.commitments_dataset_id):
            row = session.execute(select(Dataset.sha256, Dataset.content).where(Dataset.id == key)).first()
            if row is not None and sha256_hex(row.content) != row.sha256:
                problems.append(f"plan {plan.id}: dataset {key} no longer matches its SHA-256")
    return problems
