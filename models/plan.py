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
    hourly_commitment: float | None = None
    """Amortized $/h of this purchase: quantity × (hourly rate + upfront / term hours); a savings
    plan: its quantity ($/h)."""
    break_even_utilization: float | None = None
    """Share of its capacity the purchase must be used for it to cost exactly what the usage it
    covers would cost on demand. A reservation: amortized $/unit-hour ÷ the pool's on-demand rate.
    A savings plan: $ of commitment it spends ÷ on-demand value of the usage it covers, over the
    pools it actually covers in the plan (its covered-usage-weighted rate / on-demand ratio); when
    it covers nothing, the ratio of its most discounted eligible pool."""
    marginal_value: float | None = None
    """$ the window's bill falls by per unit (a reservation) or per 1 $/h (a savings plan) bought
    beyond the plan's quantity: −∂cost/∂quantity from the duals of the hourly billing LP (the
    right derivative). Positive: buying more would save; negative: the last unit already costs more
    than it saves at the margin."""


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
    scenario_hours: int = 0  # hours × scenarios every figure is billed on
    optimized_hours: int = 0  # of those, the ones the optimizer saw (fewer when it ran on a sample)


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
    cvar_basis: str = "as billed"  # or "present value at R a year" when the policy states a cost of capital
    savings_p10: float
    savings_p50: float
    savings_p90: float
    worst_idle_commitment: float
    forecast_model: str = ""
    forecast_wape: float | None = None


class ScheduleEntry(BaseModel):
    """A commitment starting or expiring in a month of the schedule."""

    offering: str
    kind: str
    source: str  # "existing" or "purchase"
    quantity: float
    hourly: float  # amortized $/h
    start: datetime
    end: datetime  # exclusive


class ScheduleMonth(BaseModel):
    """One calendar month of the commitment portfolio (existing commitments and planned purchases).

    The first month starts at the window start, so ``hours`` may be less than the month's.
    ``active_*`` are averages over the month's hours of the amortized $/h active, so
    ``active_hourly_commitment × hours`` is the amortized commitment cost of the month. A
    commitment starts in the month holding its start and expires in the month holding its last
    active hour (its end is exclusive).
    """

    month: str  # YYYY-MM
    hours: float
    in_window: bool
    active_hourly_commitment: float
    active_existing_hourly: float
    active_purchase_hourly: float
    commitment_cost: float
    starting_hourly: float
    expiring_hourly: float
    starting: list[ScheduleEntry] = Field(default_factory=list)
    expiring: list[ScheduleEntry] = Field(default_factory=list)


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
    schedule: list[ScheduleMonth] = Field(default_factory=list)
