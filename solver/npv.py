"""Present value of cost at a stated cost of capital.

Every cash flow is discounted to the window start by ``(1 + r)^(−t / 8,760)`` with t in hours: each
hour's on-demand bill and recurring commitment fee at that hour, and an upfront payment at the
purchase hour. Under the amortized convention a commitment is charged, inside the window, the
window's share of its upfront payment (pro rata to its active hours), paid at purchase. So with
r = 0 the present value equals the nominal amortized cost, and as r grows upfront payments weigh
more than fees paid later.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import Commitment, OfferingKind, PriceBook
from solver.instance import Instance, commitment_span

HOURS_PER_YEAR = 8760


def discount_factors(hours: int, rate: float) -> np.ndarray:
    return (1.0 + rate) ** (-np.arange(hours) / HOURS_PER_YEAR)


def _split(prices: PriceBook, offering: str) -> tuple[float, float]:
    """(recurring $/h, upfront $) of one unit; a savings plan's unit is 1 $/h of which the upfront
    part (per $/h) is prepaid, i.e. its hourly fee is 1 − upfront / term hours."""
    o = prices.offerings[offering]
    if o.kind is OfferingKind.RESERVATION:
        return o.rates[o.pool], o.upfront
    return 1.0 - o.upfront / o.term_hours, o.upfront


def _present_cost(d: np.ndarray, cum: np.ndarray, a: int, b: int, recurring: float, upfront: float, term_hours: int) -> float:
    return recurring * float(cum[b] - cum[a]) + upfront * (b - a) / term_hours * float(d[a])


def discounted(inst: Instance, prices: PriceBook, existing: list[Commitment], rate: float) -> Instance:
    """A copy of ``inst`` whose costs are present values at annual ``rate``."""
    d = discount_factors(inst.horizon, rate)
    cum = np.r_[0.0, np.cumsum(d)]
    time = inst.hour_time if inst.hour_time is not None else np.arange(inst.hours)
    weight = (inst.hour_weight if inst.hour_weight is not None else np.ones(inst.hours)) * d[time]
    cost = np.empty(inst.n_decisions)
    for j, oid in enumerate(inst.dec_offering):
        recurring, upfront = _split(prices, oid)
        cost[j] = _present_cost(d, cum, int(inst.dec_start[j]), int(inst.dec_end[j]), recurring, upfront,
                                prices.offerings[oid].term_hours)
    fixed = 0.0
    window = replace(inst.usage, values=inst.u[: inst.horizon]) if inst.hour_time is not None else inst.usage
    for c in existing:
        a, b = commitment_span(window, c)
        if b > a:
            recurring, upfront = _split(prices, c.offering)
            fixed += c.quantity * _present_cost(d, cum, a, b, recurring, upfront, prices.offerings[c.offering].term_hours)
    return replace(inst, hour_weight=weight, dec_cost=cost, existing_cost=fixed, notes=list(inst.notes), _flat=None)


def present_value(inst: Instance, prices: PriceBook, existing: list[Commitment], rate: float, x: np.ndarray) -> float:
    """Expected present value of the cost of purchases ``x`` (``inst`` undiscounted)."""
    from solver.coverage import total_cost

    return total_cost(discounted(inst, prices, existing, rate), x)
