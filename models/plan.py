"""The plan JSON contract (DESIGN.md §4)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.bill import CommitmentUsage


class PurchaseLine(BaseModel):
    offering: str
    quantity: float
    start: datetime
    kind: str = ""
    pool: str | None = None
    term_months: int | None = None
    payment: str | None = None
    upfront_cost: float = 0.0
    window_cost: float = 0.0
    continuous_quantity: float | None = None
    why: str = ""


class PlanSummary(BaseModel):
    on_demand_equivalent: float
    expected_cost: float
    expected_savings: float
    effective_savings_rate: float
    coverage: float
    utilization: float
    commitment_cost: float = 0.0
    on_demand_paid: float = 0.0
    cost_without_purchases: float = 0.0


class SolveInfo(BaseModel):
    backend: str
    method: str
    status: str
    lower_bound: float
    continuous_cost: float
    gap: float
    rounding_cost: float
    seconds: float
    iterations: int = 0
    exact_billing_model: bool = True
    notes: list[str] = Field(default_factory=list)


class ScenarioFigures(BaseModel):
    index: int
    weight: float
    on_demand_equivalent: float
    cost: float
    savings: float
    effective_savings_rate: float
    coverage: float
    utilization: float


class RiskFigures(BaseModel):
    alpha: float
    weight: float
    cvar_cost: float
    savings_p10: float
    savings_p50: float
    savings_p90: float
    worst_idle_commitment: float
    forecast_model: str = ""
    forecast_wape: float | None = None


class Plan(BaseModel):
    window_start: datetime
    window_hours: int
    cost_convention: str
    purchases: list[PurchaseLine]
    summary: PlanSummary
    commitments: list[CommitmentUsage] = Field(default_factory=list)
    solve: SolveInfo | None = None
    scenarios: list[ScenarioFigures] = Field(default_factory=list)
    risk: RiskFigures | None = None
