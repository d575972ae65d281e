"""Laddered purchases: monthly purchase dates, renewals of expiring commitments, and the caps on
commitment bought or expiring in any one month (linear limits on the decisions).

A month is a calendar month (UTC). Purchase dates are the window start and the first hour of each
following month; a commitment bought in month m with a term of T months expires in month m + T.
Amounts are amortized $/h: a reservation's units × its amortized hourly rate, a savings plan's $/h.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from models import Commitment, PriceBook, UsageMatrix
from models.policy import Policy
from solver.decomposition import LinearLimit
from solver.instance import Instance


def month_key(t: datetime) -> tuple[int, int]:
    t = t.astimezone(timezone.utc)
    return t.year, t.month


def add_months(key: tuple[int, int], months: int) -> tuple[int, int]:
    y, m = divmod(key[0] * 12 + key[1] - 1 + months, 12)
    return y, m + 1


def month_label(key: tuple[int, int]) -> str:
    return f"{key[0]:04d}-{key[1]:02d}"


def purchase_hours(start: datetime, hours: int, months: int) -> tuple[int, ...]:
    """Hour offsets of the first ``months`` purchase dates: the window start, then the first hour
    of each following calendar month (dates past the window are dropped)."""
    out = [0]
    key = month_key(start)
    for k in range(1, months):
        y, m = add_months(key, k)
        h = int((datetime(y, m, 1, tzinfo=timezone.utc) - start) / timedelta(hours=1))
        if h >= hours:
            break
        out.append(h)
    return tuple(out)


def renewal_options(usage: UsageMatrix, existing: list[Commitment]) -> tuple[tuple[str, int], ...]:
    """(offering, hour) at which each existing commitment expires inside the window: renewing it
    is a decision, not an assumption."""
    out = []
    for c in existing:
        h = (c.end - usage.start) / timedelta(hours=1)
        if 0 < h < usage.hours and float(h).is_integer():
            out.append((c.offering, int(h)))
    return tuple(sorted(set(out)))


def decision_dates(usage: UsageMatrix, existing: list[Commitment], policy: Policy | None):
    """Purchase hours (the policy's ladder) and renewal options (unless the policy turns them off)."""
    rules = policy or Policy()
    dates = purchase_hours(usage.start, usage.hours, rules.ladder_months)
    return dates, renewal_options(usage, existing) if rules.renew_existing else ()


def monthly_caps(inst: Instance, prices: PriceBook, existing: list[Commitment],
                 max_purchase: float | None, max_expiry: float | None) -> tuple[list[LinearLimit], list[str]]:
    """Linear limits: new commitment starting in each month ≤ ``max_purchase``; commitment expiring
    in each month (existing ones that are not renewed count too) ≤ ``max_expiry``. Where existing
    commitments alone exceed the expiry cap, that month admits no new expiries (noted)."""
    limits, notes = [], []
    start = inst.usage.start
    hourly = inst.dec_unit_cost  # amortized $/h of one unit of each decision: what the caps count
    starts = [month_key(start + timedelta(hours=int(h))) for h in inst.dec_start]
    if max_purchase is not None:
        for key in sorted(set(starts)):
            mask = np.array([k == key for k in starts], dtype=float)
            limits.append(LinearLimit(f"commitment bought in {month_label(key)} ≤ {max_purchase:g} $/h", hourly * mask, max_purchase))
    if max_expiry is not None:
        terms = [prices.offerings[o].term_months for o in inst.dec_offering]
        ends = [add_months(k, t) for k, t in zip(starts, terms)]
        held: dict[tuple[int, int], float] = {}
        for c in existing:
            o = prices.offerings[c.offering]
            key = month_key(c.end - timedelta(microseconds=1))
            held[key] = held.get(key, 0.0) + c.quantity * o.hourly_cost_per_unit()
        for key in sorted(set(ends)):
            mask = np.array([k == key for k in ends], dtype=float)
            room = max_expiry - held.get(key, 0.0)
            if room < 0:
                notes.append(f"existing commitments expiring in {month_label(key)} ({held[key]:.2f} $/h) already exceed the "
                             f"cap of {max_expiry:g} $/h: no new commitment may expire that month")
            limits.append(LinearLimit(f"commitment expiring in {month_label(key)} ≤ {max_expiry:g} $/h", hourly * mask, max(0.0, room)))
    return limits, notes
