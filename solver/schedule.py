"""Monthly schedule of the commitment portfolio: what is active, what starts, what expires.

Months listed: every calendar month from the one holding the window start through the one holding
the last expiry of a commitment active in the schedule (existing ones and planned purchases), but
no further than ``MONTHS_AFTER_WINDOW`` = 36 months after the window's last month: enough to show the
expiry of any purchase made in the window, whose term is at most 36 months (36 × 730 hours =
1,095 days, never more than 36 calendar months); longer-lived existing commitments are shown active
to the end of the schedule without an expiry. The first month starts at the window start; the
others are whole calendar months (UTC).

Each commitment costs its amortized $/h, ``quantity × (hourly rate + upfront / term hours)`` (a
savings plan: its quantity), for every hour of [start, end); a purchase's end is its start plus
its term. A month's ``active_hourly_commitment`` is the average over its hours, so times ``hours``
it is the month's amortized commitment cost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from models import Commitment, PriceBook
from models.plan import ScheduleEntry, ScheduleMonth

MONTHS_AFTER_WINDOW = 36


class _Bought(Protocol):
    offering: str
    quantity: float
    start: datetime


def _month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + 1, month=1) if month.month == 12 else month.replace(month=month.month + 1)


def _hours(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds() / 3600.0)


def _entries(existing: list[Commitment], purchases: list[_Bought], prices: PriceBook) -> list[ScheduleEntry]:
    unknown = sorted({c.offering for c in [*existing, *purchases] if c.offering not in prices.offerings})
    if unknown:
        raise ValueError(f"offerings not in the price book: {unknown}")
    out = []
    for source, items in (("existing", existing), ("purchase", purchases)):
        for c in items:
            if c.quantity <= 0:
                continue
            o = prices.offerings[c.offering]
            end = c.end if source == "existing" else c.start + timedelta(hours=o.term_hours)
            out.append(ScheduleEntry(
                offering=o.id, kind=o.kind.value, source=source, quantity=c.quantity,
                hourly=c.quantity * o.hourly_cost_per_unit(),
                start=c.start, end=end,
            ))
    return out


def monthly_schedule(
    window_start: datetime,
    window_hours: int,
    existing: list[Commitment],
    purchases: list[_Bought],
    prices: PriceBook,
) -> list[ScheduleMonth]:
    """The portfolio month by month (see the module docstring for the months listed and the units).

    ``purchases`` are anything with ``offering``, ``quantity`` and ``start`` (PurchaseLine, Purchase).
    """
    window_end = window_start + timedelta(hours=window_hours)
    first = _month_start(window_start)
    last_window_month = _month_start(window_end - timedelta(microseconds=1)) if window_hours > 0 else first
    cap = last_window_month
    for _ in range(MONTHS_AFTER_WINDOW):
        cap = _next_month(cap)
    entries = [e for e in _entries(existing, purchases, prices) if e.end > window_start and e.start < _next_month(cap)]
    last = last_window_month
    for e in entries:
        last = max(last, min(_month_start(e.end - timedelta(microseconds=1)), cap))

    months = []
    month = first
    while month <= last:
        a, b = max(month, window_start), _next_month(month)
        hours = _hours(a, b)
        by_source = {"existing": 0.0, "purchase": 0.0}
        for e in entries:
            by_source[e.source] += e.hourly * _hours(max(a, e.start), min(b, e.end))
        starting = [e for e in entries if a <= e.start < b]
        expiring = [e for e in entries if a < e.end <= b]
        cost = by_source["existing"] + by_source["purchase"]
        months.append(ScheduleMonth(
            month=f"{month:%Y-%m}", hours=hours, in_window=month < window_end and b > window_start,
            active_hourly_commitment=cost / hours if hours else 0.0,
            active_existing_hourly=by_source["existing"] / hours if hours else 0.0,
            active_purchase_hourly=by_source["purchase"] / hours if hours else 0.0,
            commitment_cost=cost,
            starting_hourly=sum(e.hourly for e in starting), expiring_hourly=sum(e.hourly for e in expiring),
            starting=starting, expiring=expiring,
        ))
        month = b
    return months
