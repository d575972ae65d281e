"""Request and response bodies (``XCreate`` in, ``XPublic`` out); the plan result is :class:`models.Plan`,
the same model the CLI writes with ``commitplan plan --json``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from models.plan import Plan as PlanResult
from models.policy import Policy
from store import Dataset, Plan

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Offset pagination: ``items`` in a stable order; ``next_offset`` is null on the last page."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class DatasetPublic(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    media_type: str
    sha256: str
    size: int
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, ds: Dataset) -> DatasetPublic:
        return cls(id=ds.id, kind=ds.kind, name=ds.name, media_type=ds.media_type, sha256=ds.sha256, size=ds.size,
                   created_by=ds.created_by, created_at=ds.created_at)


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    usage_dataset: uuid.UUID = Field(description="dataset of kind usage (canonical usage CSV)")
    prices_dataset: uuid.UUID = Field(description="dataset of kind prices (price book CSV)")
    commitments_dataset: uuid.UUID | None = Field(default=None, description="existing commitments CSV")
    policy: Policy | None = Field(default=None, description="risk and purchase limits (as in the policy YAML)")
    horizon_months: int | None = Field(default=None, ge=1, le=60, description="given: forecast the usage as history "
                                       "and plan this many months ahead; omitted: optimize for the usage exactly")
    scenario: uuid.UUID | None = Field(default=None, description="what-if overlays (POST /v1/scenarios) applied to "
                                       "every forecast scenario; needs horizon_months")


class ScenarioCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="names the file in errors (e.g. growth.yaml)")
    yaml: str = Field(min_length=1, max_length=1_000_000, description="what-if overlays YAML, as "
                      "`commitplan plan --whatif` reads it (examples in scenarios/examples/)")


class ScenarioPublic(BaseModel):
    id: uuid.UUID
    name: str
    sha256: str
    overlays: int = Field(description="number of overlay items")
    created_by: str
    created_at: datetime
    yaml: str | None = Field(default=None, description="the YAML as uploaded (omitted in listings)")


class PlanCreated(BaseModel):
    id: uuid.UUID
    status: str


class PlanPublic(BaseModel):
    id: uuid.UUID
    name: str
    status: str = Field(description="queued, running, done or failed")
    approval: str = Field(description="draft, submitted, approved or rejected")
    usage_dataset: uuid.UUID
    prices_dataset: uuid.UUID | None
    commitments_dataset: uuid.UUID | None
    policy: dict[str, Any]
    horizon_months: int | None
    scenario: uuid.UUID | None = Field(default=None, description="the what-if overlays applied, if any")
    error: str | None
    content_hash: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    submitted_by: str | None
    submitted_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str | None
    result: PlanResult | None = Field(default=None, description="the plan JSON, once done (omitted in listings)")

    @classmethod
    def of(cls, p: Plan) -> PlanPublic:
        """Without the result: ``GET /v1/plans/{id}`` adds the stored plan JSON as it is."""
        return cls(
            id=p.id, name=p.name, status=p.status, approval=p.approval, usage_dataset=p.usage_dataset_id,
            prices_dataset=p.prices_dataset_id, commitments_dataset=p.commitments_dataset_id, policy=p.policy,
            horizon_months=p.horizon_months, scenario=p.scenario_id, error=p.error, content_hash=p.content_hash, created_by=p.created_by,
            created_at=p.created_at, started_at=p.started_at, finished_at=p.finished_at, submitted_by=p.submitted_by,
            submitted_at=p.submitted_at, decided_by=p.decided_by, decided_at=p.decided_at,
            decision_comment=p.decision_comment,
        )


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=4000)


class PlanSummaryRow(BaseModel):
    """One column of a comparison: a plan's headline figures from its stored result."""

    id: uuid.UUID
    name: str
    status: str
    approval: str
    purchases: int | None = None
    upfront: float | None = None
    on_demand_equivalent: float | None = None
    expected_cost: float | None = None
    expected_savings: float | None = None
    effective_savings_rate: float | None = None
    coverage: float | None = None
    utilization: float | None = None
    cost_without_purchases: float | None = None
    savings_p10: float | None = None
    savings_p90: float | None = None
    cvar_cost: float | None = None


class PlanComparison(BaseModel):
    plans: list[PlanSummaryRow]
    best_expected_savings: uuid.UUID | None


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    target_type: str
    target_id: str | None
    outcome: str
    detail: dict[str, Any]
    entry_hash: str


class VerifyPublic(BaseModel):
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    problem: str | None
    message: str
    approved_plan_problems: list[str]


class Health(BaseModel):
    status: str
    database: str
    queued_jobs: int
    job_workers: int
