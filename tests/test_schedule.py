"""The monthly schedule of commitments (solver/schedule.py), checked against hour-by-hour counting."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from models import Commitment, Offering, OfferingKind, Payment, PriceBook, Purchase
from solver.planner import plan_for_usage
from solver.schedule import MONTHS_AFTER_WINDOW, monthly_schedule
from tests.factories import random_prices, random_usage


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _offering(oid: str, kind: OfferingKind, months: int, rate: float, upfront: float) -> Offering:
    return Offering(id=oid, kind=kind, term_months=months, payment=Payment.PARTIAL_UPFRONT if upfront else Payment.NO_UPFRONT,
                    upfront=upfront, increment=1.0 if kind is OfferingKind.RESERVATION else 0.001, rates={"a": rate})


PRICES = PriceBook(
    on_demand={"a": 1.0},
    offerings={o.id: o for o in [
        _offering("ri1", OfferingKind.RESERVATION, 12, 0.25, 876.0),  # amortized 0.25 + 876 / 8760 = 0.35 $/h
        _offering("ri3", OfferingKind.RESERVATION, 36, 0.1, 0.0),
        _offering("sp1", OfferingKind.SAVINGS_PLAN, 12, 0.7, 0.0),
        _offering("sp3", OfferingKind.SAVINGS_PLAN, 36, 0.6, 0.0),
    ]},
)
HOURLY = {"ri1": 0.35, "ri3": 0.1, "sp1": 1.0, "sp3": 1.0}  # amortized $/h per unit, by hand


def count_by_hour(window_start, months_end, held):
    """Per month: hours in it (from the window start) and $ of each source's commitments, hour by hour."""
    hours, cost = defaultdict(int), defaultdict(lambda: defaultdict(float))
    h = window_start
    while h < months_end:
        key = f"{h:%Y-%m}"
        hours[key] += 1
        for source, offering, quantity, start, end in held:
            if start <= h < end:
                cost[key][source] += quantity * HOURLY[offering]
        h += timedelta(hours=1)
    return hours, cost


def test_schedule_matches_hour_by_hour_counting():
    start, window_hours = utc(2025, 1, 15, 10), 2000  # to 2025-04-08 18:00
    existing = [
        Commitment(offering="ri1", quantity=2, start=utc(2024, 6, 1), end=utc(2025, 3, 1)),  # expires in February
        Commitment(offering="sp1", quantity=1.5, start=utc(2025, 2, 10, 7), end=utc(2025, 5, 20)),  # starts in February
        Commitment(offering="ri3", quantity=4, start=utc(2023, 1, 1), end=utc(2024, 12, 1)),  # over before the window
    ]
    purchases = [
        Purchase(offering="ri1", quantity=3, start=start),  # 8,760 h: to 2026-01-15 10:00
        Purchase(offering="sp3", quantity=0.25, start=start),  # 26,280 h: to 2028-01-15 10:00
        Purchase(offering="ri3", quantity=5, start=utc(2025, 3, 1)),
        Purchase(offering="sp1", quantity=0.0, start=start),  # nothing bought: not listed
    ]
    months = monthly_schedule(start, window_hours, existing, purchases, PRICES)

    held = [("existing", c.offering, c.quantity, c.start, c.end) for c in existing]
    held += [("purchase", p.offering, p.quantity, p.start, p.start + timedelta(hours=PRICES.offerings[p.offering].term_hours))
             for p in purchases if p.quantity > 0]
    # the last expiry: sp3 ends 2028-01-15 10:00, ri3 (bought 2025-03-01) 2028-02-29 00:00
    assert months[0].month == "2025-01" and months[-1].month == "2028-02"
    assert len(months) == 12 * 3 + 2
    hours, cost = count_by_hour(start, utc(2028, 3, 1), held)
    assert [m.month for m in months] == list(hours)
    for m in months:
        assert m.hours == hours[m.month]
        assert m.commitment_cost == pytest.approx(cost[m.month]["existing"] + cost[m.month]["purchase"], rel=1e-12, abs=1e-12)
        assert m.active_existing_hourly == pytest.approx(cost[m.month]["existing"] / hours[m.month], abs=1e-12)
        assert m.active_purchase_hourly == pytest.approx(cost[m.month]["purchase"] / hours[m.month], abs=1e-12)
        assert m.active_hourly_commitment * m.hours == pytest.approx(m.commitment_cost, abs=1e-9)
        assert m.in_window == (m.month <= "2025-04")
        # starts and expiries, from the list of held commitments (expiry = the month of the last active hour)
        starting = [c for c in held if c[3] >= start and f"{c[3]:%Y-%m}" == m.month]
        expiring = [c for c in held if f"{c[4] - timedelta(hours=1):%Y-%m}" == m.month]
        assert sorted((e.offering, e.quantity, e.source) for e in m.starting) == sorted((c[1], c[2], c[0]) for c in starting)
        assert sorted((e.offering, e.quantity, e.source) for e in m.expiring) == sorted((c[1], c[2], c[0]) for c in expiring)
        assert m.starting_hourly == pytest.approx(sum(c[2] * HOURLY[c[1]] for c in starting), abs=1e-12)
        assert m.expiring_hourly == pytest.approx(sum(c[2] * HOURLY[c[1]] for c in expiring), abs=1e-12)
    by_month = {m.month: m for m in months}
    assert by_month["2025-01"].hours == 16 * 24 + 14  # from Jan 15 10:00 to Feb 1
    assert by_month["2025-01"].starting_hourly == pytest.approx(3 * 0.35 + 0.25)
    assert by_month["2025-02"].expiring_hourly == pytest.approx(2 * 0.35)
    assert by_month["2025-02"].starting_hourly == pytest.approx(1.5)
    assert by_month["2026-01"].expiring_hourly == pytest.approx(3 * 0.35)
    assert by_month["2025-06"].active_hourly_commitment == pytest.approx(3 * 0.35 + 0.25 + 5 * 0.1)
    assert not any(e.offering == "ri3" and e.source == "existing" for m in months for e in m.starting + m.expiring)


def test_schedule_stops_a_fixed_number_of_months_after_the_window():
    start = utc(2025, 1, 1)
    existing = [Commitment(offering="ri3", quantity=1, start=utc(2024, 1, 1), end=utc(2035, 1, 1))]
    late = [Commitment(offering="ri1", quantity=1, start=utc(2031, 1, 1), end=utc(2032, 1, 1))]  # starts after the cap
    months = monthly_schedule(start, 744, existing + late, [], PRICES)
    assert months[0].month == "2025-01"
    assert len(months) == 1 + MONTHS_AFTER_WINDOW  # January 2025, then 36 months: to January 2028
    assert months[-1].month == "2028-01"
    assert all(m.active_existing_hourly == pytest.approx(0.1) for m in months)
    assert not any(m.expiring or m.starting for m in months)


@pytest.mark.parametrize("start", [utc(2025, 1, 31, 23), utc(2025, 2, 28, 23), utc(2026, 2, 28, 23), utc(2025, 12, 31, 23)])
def test_a_three_year_purchase_on_the_last_hour_of_the_window_is_listed_until_it_expires(start):
    window_start = start - timedelta(days=40)
    months = monthly_schedule(window_start, 40 * 24 + 1, [], [Purchase(offering="ri3", quantity=1, start=start)], PRICES)
    end = start + timedelta(hours=36 * 730)
    assert months[-1].month == f"{end - timedelta(hours=1):%Y-%m}"
    assert months[-1].expiring_hourly == pytest.approx(0.1)
    assert sum(len(m.expiring) for m in months) == 1


def test_an_unknown_offering_is_refused():
    with pytest.raises(ValueError, match="nope"):
        monthly_schedule(utc(2025, 1, 1), 24, [], [Purchase(offering="nope", quantity=1, start=utc(2025, 1, 1))], PRICES)


def test_plan_schedule_over_a_calendar_month_costs_what_the_plan_says():
    """A window of exactly January: its month costs the plan's amortized commitment cost; later
    months carry the purchases until they expire."""
    rng = np.random.default_rng(5)
    usage = random_usage(rng, 4, 31 * 24)
    prices = random_prices(rng, usage.pools, payments=("no_upfront", "all_upfront"))
    existing = [Commitment(offering=f"ri-no_upfront-{usage.pools[0]}", quantity=1, start=utc(2024, 3, 1), end=utc(2025, 3, 1))]
    plan = plan_for_usage(usage, prices, existing)
    assert plan.purchases
    assert plan.schedule == monthly_schedule(usage.start, usage.hours, existing, plan.purchases, prices)
    january = plan.schedule[0]
    assert january.month == "2025-01" and january.in_window and january.hours == usage.hours
    assert january.commitment_cost == pytest.approx(plan.summary.commitment_cost, rel=1e-9)
    assert january.starting_hourly == pytest.approx(sum(p.hourly_commitment for p in plan.purchases), rel=1e-12)
    assert plan.schedule[1].expiring_hourly == pytest.approx(prices.offerings[existing[0].offering].hourly_cost_per_unit())
    assert plan.schedule[-1].month == "2025-12"  # 12-month terms from 2025-01-01 end on 2026-01-01 00:00
    assert plan.schedule[-1].expiring_hourly == pytest.approx(january.starting_hourly, rel=1e-12)
