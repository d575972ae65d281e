"""Hour-by-hour bill simulator: the independent check of every cost figure (DESIGN.md §5).

Written from the billing rules alone, sharing no code with the optimizer. Each rule is a
loop over the items it orders (pools, then savings-plan groups, then (offering, pool) pairs in
discount order), vectorized over the hours of the window, which are independent of each other.

Hour ``t`` of the window is the hour starting at ``usage.start + t hours``; a commitment is
active in it when that instant lies in [start, end). Rules applied every hour:

1. Reservations: per pool, the capacity of its active reservations covers usage first; the
   covered usage is split among them pro rata to quantity.
2. Savings plans, in groups of offerings with the same eligible pools, narrower groups first
   (ties: sorted tuple of pools). Within a group, (offering, pool) pairs in order of savings
   percentage ``1 - rate / on_demand`` descending (ties: lower rate, offering id, pool); each
   pair covers ``min(residual, remaining commitment / rate)`` units.
3. What is left is paid on demand.

Costs are amortized over the active hours inside the window: a reservation costs
``quantity × (rate + upfront / term_hours)`` per hour, a savings plan ``quantity`` $ per hour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from models import Bill, Commitment, CommitmentUsage, Offering, OfferingKind, PriceBook, Purchase, UsageMatrix


@dataclass
class _Line:
    """One commitment held during the window (an existing one or a purchase)."""

    offering: Offering
    quantity: float
    start: datetime
    end: datetime
    source: str
    active: np.ndarray  # bool[hours]: active in hour t
    used: np.ndarray = field(init=False)  # per hour: units (reservation) or $ consumed (savings plan)

    def __post_init__(self) -> None:
        self.used = np.zeros(self.active.shape[0])

    @property
    def hourly(self) -> np.ndarray:
        """Quantity held in each hour of the window (0 when inactive)."""
        return self.quantity * self.active

    @property
    def unit_value(self) -> float:
        """Amortized $ per hour of one unit (reservation) or of 1 $/h (savings plan)."""
        return self.offering.hourly_cost_per_unit()


def simulate_bill(
    usage: UsageMatrix,
    prices: PriceBook,
    existing: list[Commitment],
    purchases: list[Purchase],
) -> Bill:
    """Bill ``usage`` hour by hour under the existing commitments plus ``purchases``.

    Raises ``ValueError`` for commitments or purchases of offerings missing from the price
    book, for usage pools without an on-demand price, and for negative or non-finite usage.
    """
    lines = _lines(usage, prices, existing, purchases)
    demand = _demand(usage, prices, lines)
    residual = {pool: column.copy() for pool, column in demand.items()}

    _apply_reservations(residual, [ln for ln in lines if ln.offering.kind is OfferingKind.RESERVATION])
    _apply_savings_plans(residual, prices, [ln for ln in lines if ln.offering.kind is OfferingKind.SAVINGS_PLAN])

    on_demand_equivalent = sum(float(demand[p].sum()) * prices.on_demand[p] for p in demand)
    on_demand_paid = sum(float(residual[p].sum()) * prices.on_demand[p] for p in residual)
    covered_value = sum(float((demand[p] - residual[p]).sum()) * prices.on_demand[p] for p in demand)

    reports = [_report(ln) for ln in lines]
    commitment_cost = sum(r.cost for r in reports)
    used_value = sum(r.used * ln.unit_value for r, ln in zip(reports, lines))
    total_cost = commitment_cost + on_demand_paid
    savings = on_demand_equivalent - total_cost
    return Bill(
        on_demand_equivalent=on_demand_equivalent,
        commitment_cost=commitment_cost,
        on_demand_paid=on_demand_paid,
        total_cost=total_cost,
        savings=savings,
        effective_savings_rate=savings / on_demand_equivalent if on_demand_equivalent > 0 else 0.0,
        coverage=covered_value / on_demand_equivalent if on_demand_equivalent > 0 else 0.0,
        utilization=min(1.0, used_value / commitment_cost) if commitment_cost > 0 else 1.0,
        hours=usage.hours,
        commitments=reports,
    )


def _lines(
    usage: UsageMatrix, prices: PriceBook, existing: list[Commitment], purchases: list[Purchase]
) -> list[_Line]:
    """Resolve offerings and active hours; purchases of quantity 0 are dropped."""
    unknown = sorted({c.offering for c in [*existing, *purchases] if c.offering not in prices.offerings})
    if unknown:
        raise ValueError(f"offerings not in the price book: {unknown}")
    lines = []
    for c in existing:
        offering = prices.offerings[c.offering]
        lines.append(_Line(offering, c.quantity, c.start, c.end, "existing", _active(usage, c.start, c.end)))
    for p in purchases:
        if p.quantity > 0:
            offering = prices.offerings[p.offering]
            end = p.start + timedelta(hours=offering.term_hours)
            lines.append(_Line(offering, p.quantity, p.start, end, "purchase", _active(usage, p.start, end)))
    return lines


def _active(usage: UsageMatrix, start: datetime, end: datetime) -> np.ndarray:
    """Hours of the window whose start instant lies in [start, end)."""

    def first_hour_at_or_after(moment: datetime) -> int:
        offset = math.ceil((moment - usage.start).total_seconds() / 3600.0)
        return min(max(offset, 0), usage.hours)

    mask = np.zeros(usage.hours, dtype=bool)
    mask[first_hour_at_or_after(start) : first_hour_at_or_after(end)] = True
    return mask


def _demand(usage: UsageMatrix, prices: PriceBook, lines: list[_Line]) -> dict[str, np.ndarray]:
    """Usage per pool over the window; pools only named by commitments have zero usage."""
    values = np.asarray(usage.values, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("usage must be finite and >= 0")
    unpriced = sorted(set(usage.pools) - set(prices.on_demand))
    if unpriced:
        raise ValueError(f"usage pools without an on-demand price: {unpriced}")
    demand = {pool: values[:, i].copy() for i, pool in enumerate(usage.pools)}
    for ln in lines:
        for pool in ln.offering.rates:
            demand.setdefault(pool, np.zeros(usage.hours))
    return demand


def _apply_reservations(residual: dict[str, np.ndarray], lines: list[_Line]) -> None:
    """Rule 1: per pool, active reservations cover usage; split pro rata to quantity."""
    by_pool: dict[str, list[_Line]] = {}
    for ln in lines:
        by_pool.setdefault(ln.offering.pool, []).append(ln)
    for pool, group in by_pool.items():
        capacity = sum(ln.hourly for ln in group)
        covered = np.minimum(residual[pool], capacity)
        share = np.divide(covered, capacity, out=np.zeros_like(covered), where=capacity > 0)
        for ln in group:
            ln.used += share * ln.hourly
        residual[pool] -= covered


def _apply_savings_plans(residual: dict[str, np.ndarray], prices: PriceBook, lines: list[_Line]) -> None:
    """Rule 2: savings-plan groups narrowest first; within a group, pairs by discount."""
    by_offering: dict[str, list[_Line]] = {}
    for ln in lines:
        by_offering.setdefault(ln.offering.id, []).append(ln)
    groups: dict[tuple[str, ...], list[Offering]] = {}
    for offering_id in by_offering:
        offering = prices.offerings[offering_id]
        groups.setdefault(tuple(sorted(offering.rates)), []).append(offering)

    for pools in sorted(groups, key=lambda g: (len(g), g)):
        offerings = groups[pools]
        commitment = {o.id: sum(ln.hourly for ln in by_offering[o.id]) for o in offerings}
        remaining = {o_id: c.copy() for o_id, c in commitment.items()}
        pairs = [(o, pool) for o in offerings for pool in o.rates]
        pairs.sort(key=lambda op: (-_savings_pct(op[0], op[1], prices), op[0].rates[op[1]], op[0].id, op[1]))
        for offering, pool in pairs:
            rate = offering.rates[pool]
            units = np.maximum(0.0, np.minimum(residual[pool], remaining[offering.id] / rate))
            residual[pool] -= units
            remaining[offering.id] -= units * rate
        for o in offerings:  # consumption split among the offering's commitments pro rata
            consumed = commitment[o.id] - np.maximum(remaining[o.id], 0.0)
            share = np.divide(consumed, commitment[o.id], out=np.zeros_like(consumed), where=commitment[o.id] > 0)
            for ln in by_offering[o.id]:
                ln.used += share * ln.hourly


def _savings_pct(offering: Offering, pool: str, prices: PriceBook) -> float:
    """1 − rate / on-demand rate (−inf for a pool whose on-demand rate is 0)."""
    on_demand = prices.on_demand[pool]
    return 1.0 - offering.rates[pool] / on_demand if on_demand > 0 else -math.inf


def _report(ln: _Line) -> CommitmentUsage:
    """Per-commitment figures over the window's active hours."""
    active_hours = int(ln.active.sum())
    capacity = ln.quantity * active_hours
    used = float(ln.used.sum())
    return CommitmentUsage(
        offering=ln.offering.id,
        kind=ln.offering.kind.value,
        quantity=ln.quantity,
        start=ln.start,
        end=ln.end,
        source=ln.source,
        active_hours=active_hours,
        cost=capacity * ln.unit_value,
        used=used,
        capacity=capacity,
        utilization=used / capacity if capacity > 0 else 0.0,
    )
