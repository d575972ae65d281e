"""Figures of a plan computed from the optimizer's own coverage arrays.

These are the numbers the planner prints; tests check every one against the independent bill
simulator (:mod:`solver.simulator`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from models import Bill, Commitment, CommitmentUsage, OfferingKind, PriceBook
from solver.coverage import Coverage, evaluate
from solver.instance import Instance, commitment_span


@dataclass
class _Held:
    offering: str
    kind: OfferingKind
    target: int  # pool (reservation) or layer (savings plan)
    quantity: float
    start: datetime
    end: datetime
    a: int
    b: int
    unit_cost: float
    source: str


def _held(inst: Instance, prices: PriceBook, existing: list[Commitment], x: np.ndarray) -> list[_Held]:
    usage = inst.usage
    pools = {p: i for i, p in enumerate(usage.pools)}
    layers = {layer.offering: s for s, layer in enumerate(inst.layers)}
    out = []
    for c in existing:
        o = prices.offerings[c.offering]
        target = pools.get(o.pool) if o.kind is OfferingKind.RESERVATION else layers.get(o.id)
        if target is None:
            continue
        a, b = commitment_span(usage, c)
        out.append(_Held(o.id, o.kind, target, c.quantity, c.start, c.end, a, b, o.hourly_cost_per_unit(), "existing"))
    for j in np.flatnonzero(x > 0):
        o = prices.offerings[inst.dec_offering[j]]
        start = usage.start + timedelta(hours=int(inst.dec_start[j]))
        out.append(_Held(
            o.id, o.kind, int(inst.dec_target[j]), float(x[j]), start, start + timedelta(hours=o.term_hours),
            int(inst.dec_start[j]), int(inst.dec_end[j]), float(inst.dec_unit_cost[j]), "purchase",
        ))
    return out


def figures(inst: Instance, prices: PriceBook, existing: list[Commitment], x: np.ndarray, cov: Coverage | None = None) -> Bill:
    """The bill of plan ``x`` as the optimizer computes it (same type as the simulator's, for comparison)."""
    cov = cov if cov is not None else evaluate(inst, x, duals=False)
    u = inst.u
    ode = float((u @ inst.on_demand).sum())
    paid = cov.on_demand_paid
    covered = ode - float((cov.residual @ inst.on_demand).sum())
    held = _held(inst, prices, existing, x)
    ri_used = np.minimum(u, cov.ri_cap)
    lines, total_commit, total_used_value = [], 0.0, 0.0
    for h in held:
        hours = h.b - h.a
        cost = h.quantity * h.unit_cost * hours
        if h.kind is OfferingKind.RESERVATION:
            cap = cov.ri_cap[h.a : h.b, h.target]
            share = np.divide(h.quantity, cap, out=np.zeros_like(cap), where=cap > 0)
            used = float((ri_used[h.a : h.b, h.target] * share).sum())
            used_value = used * h.unit_cost
        else:
            cap = cov.sp_cap[h.a : h.b, h.target]
            share = np.divide(h.quantity, cap, out=np.zeros_like(cap), where=cap > 0)
            used = float((cov.sp_used[h.a : h.b, h.target] * share).sum())
            used_value = used
        capacity = h.quantity * hours
        total_commit += cost
        total_used_value += used_value
        lines.append(CommitmentUsage(
            offering=h.offering, kind=h.kind.value, quantity=h.quantity, start=h.start, end=h.end,
            source=h.source, active_hours=hours, cost=cost, used=used, capacity=capacity,
            utilization=used / capacity if capacity > 0 else 0.0,
        ))
    total = total_commit + paid
    return Bill(
        on_demand_equivalent=ode,
        commitment_cost=total_commit,
        on_demand_paid=paid,
        total_cost=total,
        savings=ode - total,
        effective_savings_rate=(ode - total) / ode if ode > 0 else 0.0,
        coverage=covered / ode if ode > 0 else 0.0,
        utilization=min(1.0, total_used_value / total_commit) if total_commit > 0 else 1.0,
        hours=inst.hours,
        commitments=lines,
    )
