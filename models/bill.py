"""Result of billing a set of commitments against usage, hour by hour."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CommitmentUsage(BaseModel):
    offering: str
    kind: str
    quantity: float
    start: datetime
    end: datetime
    source: str  # "existing" or "purchase"
    active_hours: int
    cost: float
    used: float  # units (reservation) or $ of commitment consumed (savings plan)
    capacity: float
    utilization: float


class Bill(BaseModel):
    on_demand_equivalent: float
    commitment_cost: float
    on_demand_paid: float
    total_cost: float
    savings: float
    effective_savings_rate: float
    coverage: float
    utilization: float
    hours: int
    commitments: list[CommitmentUsage] = Field(default_factory=list)
