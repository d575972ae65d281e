"""Plans: create (queued, solved in the background), read, list, compare; submit, approve, reject; audit.

Workflow rules live in :mod:`store.rules` and are enforced by the store in one transaction with
the audit entry; here a refused :class:`store.Result` becomes 403 / 404 / 409 problem+json.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

import store
from api.deps import ActorDep, IdempotencyDep, Reader, SessionDep, get_or_404
from api.problems import ProblemError, from_result
from api.schemas import (
    AuditEntryPublic,
    Decision,
    Page,
    PlanComparison,
    PlanCreate,
    PlanCreated,
    PlanPublic,
    PlanSummaryRow,
)
from store import Plan

router = APIRouter(prefix="/plans", tags=["plans"])
MAX_COMPARE = 20
MAX_OFFSET = 2**31  # beyond any real table; an offset over 2**63 was an OverflowError in the driver (500)


def _reply(status: int, body: object, replayed: bool, location: str | None = None) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if location:
        headers["Location"] = location
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("", status_code=202, response_model=PlanCreated, name="plan.create",
             responses={403: {}, 404: {}, 422: {}})
def create_plan(body: PlanCreate, request: Request, session: SessionDep, actor: ActorDep,
                idem: IdempotencyDep) -> Response:
    """Queue a planning run; poll ``GET /v1/plans/{id}`` until ``status`` is done or failed."""
    if body.scenario is not None and body.horizon_months is None:
        raise ProblemError(422, "scenario: what-if overlays apply to a forecast; give horizon_months too")

    def action() -> tuple[int, object]:
        result = store.create_plan(
            session, actor, body.name, body.usage_dataset, body.prices_dataset, body.commitments_dataset,
            scenario_id=body.scenario, policy=body.policy.model_dump(mode="json", exclude_defaults=True) if body.policy else None,
            horizon_months=body.horizon_months)
        if not result.ok:
            raise from_result(result)
        request.app.state.jobs.submit(result.value.id)
        return 202, PlanCreated(id=result.value.id, status=result.value.status).model_dump(mode="json")

    status, out, replayed = idem.run(body.model_dump(mode="json"), action)
    return _reply(status, out, replayed, f"/v1/plans/{out['id']}")


@router.get("", response_model=Page[PlanPublic])
def list_plans(
    session: SessionDep, actor: Reader,
    status: Annotated[str | None, Query(pattern="^(queued|running|done|failed)$")] = None,
    approval: Annotated[str | None, Query(pattern="^(draft|submitted|approved|rejected)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page[PlanPublic]:
    """Newest first, without results (fetch one plan for its result)."""
    where = [c for c in (Plan.status == status if status else None,
                         Plan.approval == approval if approval else None) if c is not None]
    total = session.scalar(select(func.count()).select_from(Plan).where(*where)) or 0
    rows = session.scalars(select(Plan).where(*where).order_by(Plan.created_at.desc(), Plan.id)
                           .limit(limit).offset(offset))
    return Page(items=[PlanPublic.of(p) for p in rows], total=total, limit=limit, offset=offset,
                next_offset=offset + limit if offset + limit < total else None)


def _row(p: Plan) -> PlanSummaryRow:
    row = PlanSummaryRow(id=p.id, name=p.name, status=p.status, approval=p.approval)
    result = p.result
    if not result:
        return row
    s, risk = result.get("summary", {}), result.get("risk") or {}
    purchases = result.get("purchases", [])
    return row.model_copy(update={
        "purchases": len(purchases), "upfront": sum(float(x.get("upfront_cost", 0.0)) for x in purchases),
        **{k: s.get(k) for k in ("on_demand_equivalent", "expected_cost", "expected_savings",
                                 "effective_savings_rate", "coverage", "utilization", "cost_without_purchases")},
        "savings_p10": risk.get("savings_p10"), "savings_p90": risk.get("savings_p90"),
        "cvar_cost": risk.get("cvar_cost"),
    })


@router.get("/compare", response_model=PlanComparison)
def compare_plans(session: SessionDep, actor: Reader,
                  ids: Annotated[str, Query(description="comma-separated plan ids (2 to 20)")]) -> PlanComparison:
    """Side by side: each plan's headline figures from its stored result (null while not done)."""
    try:
        wanted = list(dict.fromkeys(uuid.UUID(x.strip()) for x in ids.split(",") if x.strip()))
    except ValueError:
        raise ProblemError(422, "ids: give plan ids (UUIDs) separated by commas") from None
    if not 1 <= len(wanted) <= MAX_COMPARE:
        raise ProblemError(422, f"ids: compare 1 to {MAX_COMPARE} plans")
    found = {p.id: p for p in session.scalars(select(Plan).where(Plan.id.in_(wanted)))}
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise ProblemError(404, f"no plan {', '.join(missing)}")
    rows = [_row(found[i]) for i in wanted]
    scored = [r for r in rows if r.expected_savings is not None]
    best = max(scored, key=lambda r: r.expected_savings).id if scored else None
    return PlanComparison(plans=rows, best_expected_savings=best)


@router.get("/{plan_id}", response_model=PlanPublic)
def get_plan(plan_id: uuid.UUID, session: SessionDep, actor: Reader) -> Response:
    """Run status, approval state, and the plan JSON once done.

    The plan JSON goes out as stored, byte for byte: it was validated when the solve finished, its
    content hash covers exactly these bytes, and re-validating megabytes on every read made reads slow.
    """
    plan = get_or_404(session, Plan, plan_id, "plan")
    head = PlanPublic.of(plan).model_dump_json(exclude={"result"})
    result = plan.result_json or "null"
    return Response(f'{head[:-1]},"result":{result}}}', media_type="application/json")


def _transition(session: SessionDep, idem: IdempotencyDep, plan_id: uuid.UUID, fingerprint: object,
                op) -> Response:
    def action() -> tuple[int, object]:
        result = op()
        if not result.ok:
            raise from_result(result)
        return 200, PlanPublic.of(result.value).model_dump(mode="json")

    status, body, replayed = idem.run(fingerprint, action)
    return _reply(status, body, replayed)


@router.post("/{plan_id}/submit", response_model=PlanPublic, name="plan.submit",
             responses={403: {}, 404: {}, 409: {}})
def submit_plan(plan_id: uuid.UUID, session: SessionDep, actor: ActorDep, idem: IdempotencyDep) -> Response:
    """Draft → submitted (a finished plan; procurement, finance or admin)."""
    return _transition(session, idem, plan_id, {}, lambda: store.submit(session, plan_id, actor))


@router.post("/{plan_id}/approve", response_model=PlanPublic, name="plan.approve",
             responses={403: {}, 404: {}, 409: {}})
def approve_plan(plan_id: uuid.UUID, session: SessionDep, actor: ActorDep, idem: IdempotencyDep,
                 body: Decision | None = None) -> Response:
    """Submitted → approved, once and for good; finance or admin, not the creator or submitter."""
    comment = body.comment if body else ""
    return _transition(session, idem, plan_id, {"comment": comment},
                       lambda: store.decide(session, plan_id, actor, True, comment))


@router.post("/{plan_id}/reject", response_model=PlanPublic, name="plan.reject",
             responses={403: {}, 404: {}, 409: {}})
def reject_plan(plan_id: uuid.UUID, body: Decision, session: SessionDep, actor: ActorDep,
                idem: IdempotencyDep) -> Response:
    """Submitted → rejected, with a comment saying why; finance or admin, not the creator or submitter."""
    if not body.comment.strip():
        raise ProblemError(422, "comment: say why the plan is rejected")
    return _transition(session, idem, plan_id, {"comment": body.comment},
                       lambda: store.decide(session, plan_id, actor, False, body.comment))


@router.get("/{plan_id}/audit", response_model=Page[AuditEntryPublic])
def plan_audit(plan_id: uuid.UUID, session: SessionDep, actor: Reader,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Page[AuditEntryPublic]:
    """The plan's audit entries, oldest first, refused attempts included."""
    get_or_404(session, Plan, plan_id, "plan")
    total, rows = store.audit_entries(session, "plan", str(plan_id), limit, offset)
    items = [AuditEntryPublic(seq=e.seq, at=e.at, actor=e.actor, actor_role=e.actor_role, action=e.action,
                              target_type=e.target_type, target_id=e.target_id, outcome=e.outcome,
                              detail=e.detail_obj, entry_hash=e.entry_hash) for e in rows]
    return Page(items=items, total=total, limit=limit, offset=offset,
                next_offset=offset + limit if offset + limit < total else None)
