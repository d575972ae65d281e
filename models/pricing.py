"""Price book: on-demand rates and commitment offerings (DESIGN.md §4)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

HOURS_PER_MONTH = 730
"""A term of ``term_months`` lasts ``term_months × 730`` hours (the providers' convention)."""


class OfferingKind(str, Enum):
    ON_DEMAND = "on_demand"
    RESERVATION = "reservation"
    SAVINGS_PLAN = "savings_plan"


class Payment(str, Enum):
    NO_UPFRONT = "no_upfront"
    PARTIAL_UPFRONT = "partial_upfront"
    ALL_UPFRONT = "all_upfront"


DEFAULT_INCREMENT = {OfferingKind.RESERVATION: 1.0, OfferingKind.SAVINGS_PLAN: 0.001}


class Offering(BaseModel):
    """A commitment product.

    reservation: covers ``quantity`` units of its single pool every hour; each unit costs
    ``hourly_rate`` every hour of the term plus ``upfront`` once.
    savings_plan: a commitment of ``quantity`` $/h; covering one unit-hour of pool p consumes
    ``rates[p]`` of it; the commitment itself is paid every hour of the term (``upfront`` is the
    prepaid part per 1 $/h, which matters only for cash flow).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    kind: OfferingKind
    term_months: int = Field(gt=0)
    payment: Payment
    upfront: float = Field(ge=0)
    increment: float = Field(gt=0)
    rates: dict[str, float]

    @model_validator(mode="after")
    def _check(self) -> "Offering":
        if self.kind is OfferingKind.ON_DEMAND:
            raise ValueError("on-demand prices are not an offering")
        if not self.rates:
            raise ValueError(f"offering {self.id} covers no pool")
        if self.kind is OfferingKind.RESERVATION and len(self.rates) != 1:
            raise ValueError(f"reservation {self.id} must cover exactly one pool, got {sorted(self.rates)}")
        for pool, rate in self.rates.items():
            if not rate >= 0:
                raise ValueError(f"offering {self.id}: rate for {pool} must be >= 0")
        if self.kind is OfferingKind.SAVINGS_PLAN and any(r <= 0 for r in self.rates.values()):
            raise ValueError(f"savings plan {self.id}: rates must be > 0")
        return self

    @property
    def term_hours(self) -> int:
        return self.term_months * HOURS_PER_MONTH

    @property
    def pool(self) -> str:
        """The single pool of a reservation."""
        if self.kind is not OfferingKind.RESERVATION:
            raise AttributeError("only a reservation has a single pool")
        return next(iter(self.rates))

    def hourly_cost_per_unit(self) -> float:
        """Amortized cost of one unit (reservation) or one $/h (savings plan) per hour of term."""
        if self.kind is OfferingKind.RESERVATION:
            return self.rates[self.pool] + self.upfront / self.term_hours
        return 1.0


class PriceBook(BaseModel):
    on_demand: dict[str, float]
    offerings: dict[str, Offering]

    @model_validator(mode="after")
    def _check(self) -> "PriceBook":
        for offering in self.offerings.values():
            missing = sorted(set(offering.rates) - set(self.on_demand))
            if missing:
                raise ValueError(f"offering {offering.id} covers pools without an on-demand price: {missing}")
        return self

    def reservations(self) -> list[Offering]:
        return [o for o in self.offerings.values() if o.kind is OfferingKind.RESERVATION]

    def savings_plans(self) -> list[Offering]:
        return [o for o in self.offerings.values() if o.kind is OfferingKind.SAVINGS_PLAN]
