"""The bill simulator against bills worked out by hand, and invariants that hold for any bill."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import (
    Commitment,
    Offering,
    OfferingKind,
    Payment,
    PriceBook,
    Purchase,
    UsageMatrix,
)
from solver.simulator import simulate_bill

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
RI, SP = OfferingKind.RESERVATION, OfferingKind.SAVINGS_PLAN


def h(n: float) -> datetime:
    """The instant ``n`` hours after the window start."""
    return T0 + timedelta(hours=n)


def offering(
    id: str, kind: OfferingKind, rates: dict[str, float], term_months: int = 12, upfront: float = 0.0
) -> Offering:
    payment = Payment.ALL_UPFRONT if upfront > 0 else Payment.NO_UPFRONT
    return Offering(
        id=id, kind=kind, term_months=term_months, payment=payment, upfront=upfront, increment=1.0, rates=rates
    )


def buy(offering_id: str, quantity: float, start: datetime = T0) -> Purchase:
    return Purchase(offering=offering_id, quantity=quantity, start=start)


def book(on_demand: dict[str, float], *offerings: Offering) -> PriceBook:
    return PriceBook(on_demand=on_demand, offerings={o.id: o for o in offerings})


def usage(**columns: list[float]) -> UsageMatrix:
    pools = tuple(columns)
    return UsageMatrix(start=T0, pools=pools, values=np.array([columns[p] for p in pools], dtype=float).T)


def test_no_commitments_pays_on_demand() -> None:
    # a: (1+2+3) × 0.10 = 0.6; b: (0+5+1) × 0.20 = 1.2; total 1.8, all on demand
    bill = simulate_bill(usage(a=[1, 2, 3], b=[0, 5, 1]), book({"a": 0.10, "b": 0.20}), [], [])
    assert bill.on_demand_equivalent == pytest.approx(1.8)
    assert bill.total_cost == pytest.approx(1.8)
    assert bill.on_demand_paid == pytest.approx(1.8)
    assert (bill.commitment_cost, bill.savings) == (0, 0)
    assert (bill.effective_savings_rate, bill.coverage) == (0, 0)
    assert bill.utilization == 1.0 and bill.hours == 3 and bill.commitments == []


def test_one_reservation_with_idle_hours() -> None:
    ri = offering("ri", RI, {"a": 0.6})
    bill = simulate_bill(usage(a=[3, 2, 1, 0]), book({"a": 1.0}, ri), [], [buy("ri", 2)])
    # capacity 2 per hour: covered 2, 2, 1, 0 = 5 units of 8; residual 1, 0, 0, 0
    # commitment 2 × 0.6 × 4 h = 4.8; on demand 1 × 1.0 = 1.0; total 5.8; on-demand equivalent 6.0
    assert bill.commitment_cost == pytest.approx(4.8)
    assert bill.on_demand_paid == pytest.approx(1.0)
    assert bill.total_cost == pytest.approx(5.8)
    assert bill.savings == pytest.approx(0.2)
    assert bill.effective_savings_rate == pytest.approx(0.2 / 6.0)
    assert bill.coverage == pytest.approx(5 / 6)
    assert bill.utilization == pytest.approx(5 * 0.6 / 4.8)  # = 0.625
    [c] = bill.commitments
    assert (c.source, c.active_hours, c.end) == ("purchase", 4, h(12 * 730))
    assert (c.used, c.capacity, c.cost, c.utilization) == pytest.approx((5, 8, 4.8, 0.625))


def test_two_reservations_on_one_pool_split_pro_rata() -> None:
    small, large = offering("ri-small", RI, {"a": 0.5}), offering("ri-large", RI, {"a": 0.7})
    bill = simulate_bill(
        usage(a=[4, 2, 0, 8]),
        book({"a": 1.0}, small, large),
        [Commitment(offering="ri-small", quantity=1, start=h(-10), end=h(100))],
        [buy("ri-large", 3)],
    )
    # capacity 1 + 3 = 4: covered 4, 2, 0, 4 = 10; residual 0, 0, 0, 4 -> on demand 4.0
    # split 1/4 and 3/4: small used 2.5 of 4 (0.625), large used 7.5 of 12 (0.625)
    # cost: 1 × 0.5 × 4 + 3 × 0.7 × 4 = 2 + 8.4 = 10.4; total 14.4 vs on-demand 14.0
    assert bill.commitment_cost == pytest.approx(10.4)
    assert bill.total_cost == pytest.approx(14.4)
    assert bill.savings == pytest.approx(-0.4)
    small_use, large_use = bill.commitments
    assert (small_use.source, small_use.offering, small_use.end) == ("existing", "ri-small", h(100))
    assert (small_use.used, small_use.capacity, small_use.utilization) == pytest.approx((2.5, 4, 0.625))
    assert (large_use.used, large_use.capacity, large_use.utilization) == pytest.approx((7.5, 12, 0.625))
    # used value 2.5 × 0.5 + 7.5 × 0.7 = 6.5 of 10.4
    assert bill.utilization == pytest.approx(6.5 / 10.4)


def test_savings_plan_covers_higher_savings_pool_first() -> None:
    # savings: a 1 − 0.8/1.0 = 20 %, b 1 − 1.2/2.0 = 40 % -> b first
    sp = offering("sp", SP, {"a": 0.8, "b": 1.2})
    bill = simulate_bill(
        usage(a=[2, 3, 0], b=[1, 0, 3]), book({"a": 1.0, "b": 2.0}, sp), [], [buy("sp", 2)]
    )
    # h0: b min(1, 2/1.2) = 1 (uses 1.2), a min(2, 0.8/0.8) = 1 (uses 0.8); residual a 1 -> 1.0
    # h1: a min(3, 2/0.8) = 2.5 (uses 2.0); residual a 0.5 -> 0.5
    # h2: b min(3, 2/1.2) = 5/3 (uses 2.0); residual b 4/3 -> 8/3
    # (a first in h0 would cover a 2, b 1/3 and pay 4/3 on demand instead of 1)
    on_demand_paid = 1.0 + 0.5 + 8 / 3
    assert bill.on_demand_paid == pytest.approx(on_demand_paid)
    assert bill.commitment_cost == pytest.approx(6.0)  # 2 $/h × 3 h
    assert bill.total_cost == pytest.approx(6.0 + on_demand_paid)
    assert bill.on_demand_equivalent == pytest.approx(13.0)  # 4 + 3 + 6
    assert bill.coverage == pytest.approx((3.0 + 2.5 + 10 / 3) / 13.0)  # covered at on-demand prices
    assert bill.utilization == pytest.approx(1.0)
    assert bill.commitments[0].used == pytest.approx(6.0)


def test_instance_savings_plan_applies_before_compute_savings_plan() -> None:
    instance = offering("ec2-sp", SP, {"a": 0.5})  # 50 % on a
    compute = offering("compute-sp", SP, {"a": 0.4, "b": 0.8})  # 60 % on a, 20 % on b
    bill = simulate_bill(
        usage(a=[3], b=[2]),
        book({"a": 1.0, "b": 1.0}, compute, instance),
        [],
        [buy("compute-sp", 1), buy("ec2-sp", 1)],
    )
    # narrow group first: instance covers a min(3, 1/0.5) = 2 (uses 1.0); residual a 1
    # compute: a (60 %) min(1, 1/0.4) = 1 (uses 0.4); b min(2, 0.6/0.8) = 0.75 (uses 0.6)
    # residual b 1.25 -> on demand 1.25; total 2 + 1.25 = 3.25 of 5.0
    # (compute first would cover a 2.5, then instance a 0.5 using only 0.25, and pay 2.0 on demand)
    assert bill.on_demand_paid == pytest.approx(1.25)
    assert bill.total_cost == pytest.approx(3.25)
    assert bill.coverage == pytest.approx(3.75 / 5.0)
    used = {c.offering: c.used for c in bill.commitments}
    assert used == pytest.approx({"ec2-sp": 1.0, "compute-sp": 1.0})


def test_expiring_commitment_and_purchase_ending_inside_window() -> None:
    old = offering("ri-1y", RI, {"a": 0.6})
    monthly = offering("ri-1m", RI, {"a": 0.5}, term_months=1, upfront=73.0)  # 0.5 + 73/730 = 0.6 /h
    bill = simulate_bill(
        usage(a=[4] * 740),
        book({"a": 1.0}, old, monthly),
        [Commitment(offering="ri-1y", quantity=1, start=h(-100), end=h(10))],  # active hours 0..9
        [buy("ri-1m", 2, h(5))],  # active 5..734 (730 h)
    )
    # cost: existing 1 × 0.6 × 10 = 6; purchase 2 × 0.6 × 730 = 876
    # on demand: h0-4 cap 1 -> 3 × 5 = 15; h5-9 cap 3 -> 1 × 5 = 5;
    #            h10-734 cap 2 -> 2 × 725 = 1450; h735-739 cap 0 -> 4 × 5 = 20; sum 1490
    assert bill.commitment_cost == pytest.approx(882.0)
    assert bill.on_demand_paid == pytest.approx(1490.0)
    assert bill.total_cost == pytest.approx(2372.0)
    assert bill.on_demand_equivalent == pytest.approx(2960.0)
    existing, purchase = bill.commitments
    assert (existing.active_hours, existing.used, existing.cost) == (10, pytest.approx(10), pytest.approx(6))
    assert (purchase.active_hours, purchase.used, purchase.cost) == (730, pytest.approx(1460), pytest.approx(876))
    assert purchase.end == h(735) and existing.end == h(10)


def test_all_upfront_reservation_is_amortized_pro_rata() -> None:
    ri = offering("ri-au", RI, {"a": 0.0}, term_months=12, upfront=876.0)  # 876 / 8760 h = 0.1 /h
    bill = simulate_bill(usage(a=[5] * 5 + [1] * 5), book({"a": 0.25}, ri), [], [buy("ri-au", 3)])
    # a 10-hour window of a 1-year term pays 3 × 0.1 × 10 = 3.0
    # covered 3 × 5 + 1 × 5 = 20 of 30; residual 2 × 5 = 10 units × 0.25 = 2.5; total 5.5 of 7.5
    assert bill.commitment_cost == pytest.approx(3.0)
    assert bill.on_demand_paid == pytest.approx(2.5)
    assert bill.total_cost == pytest.approx(5.5)
    assert bill.on_demand_equivalent == pytest.approx(7.5)
    assert bill.utilization == pytest.approx(2.0 / 3.0)  # used value 20 × 0.1 = 2.0 of 3.0
    assert bill.commitments[0].utilization == pytest.approx(20 / 30)


def test_unknown_offering_is_named_and_unused_pool_has_zero_usage() -> None:
    sp = offering("sp", SP, {"a": 0.5, "c": 0.5})  # pool c has no usage column
    prices = book({"a": 1.0, "c": 1.0}, sp)
    with pytest.raises(ValueError, match="ghost"):
        simulate_bill(usage(a=[1]), prices, [], [buy("ghost", 1)])
    bill = simulate_bill(usage(a=[1]), prices, [], [buy("sp", 1), buy("sp", 0)])
    # a: 1 unit uses 0.5 of 1 $/h; c idle; total 1.0 (commitment) + 0 on demand
    assert bill.total_cost == pytest.approx(1.0)
    assert len(bill.commitments) == 1 and bill.commitments[0].utilization == pytest.approx(0.5)


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[UsageMatrix, PriceBook, list[Commitment], list[Purchase]]:
    """Random small price books, usage and commitments around a short window."""
    pools = [f"p{i}" for i in range(draw(st.integers(1, 3)))]
    money = st.floats(0.01, 3.0)
    on_demand = {p: draw(money) for p in pools}
    offerings = [
        offering(f"ri{i}", RI, {p: draw(money)}, term_months=1, upfront=draw(st.floats(0, 50)))
        for i, p in enumerate(pools)
    ]
    for i in range(draw(st.integers(0, 3))):
        eligible = draw(st.lists(st.sampled_from(pools), min_size=1, unique=True))
        offerings.append(offering(f"sp{i}", SP, {p: draw(money) for p in eligible}, term_months=1))
    hours = draw(st.integers(1, 12))
    row = st.lists(st.floats(0, 10), min_size=len(pools), max_size=len(pools))
    values = np.array(draw(st.lists(row, min_size=hours, max_size=hours)))
    ids = st.sampled_from([o.id for o in offerings])
    when = st.integers(-800, 12).map(h)
    lasting = st.integers(1, 30).map(lambda n: timedelta(hours=n))
    existing = [
        Commitment(offering=draw(ids), quantity=draw(st.floats(0.1, 5)), start=s, end=s + draw(lasting))
        for s in draw(st.lists(when, max_size=3))
    ]
    purchases = [buy(draw(ids), draw(st.floats(0, 5)), s) for s in draw(st.lists(when, max_size=4))]
    matrix = UsageMatrix(T0, tuple(pools), values.reshape(hours, len(pools)))
    return matrix, book(on_demand, *offerings), existing, purchases


@settings(max_examples=200, deadline=None)
@given(portfolios())
def test_bill_invariants(case: tuple[UsageMatrix, PriceBook, list[Commitment], list[Purchase]]) -> None:
    bill = simulate_bill(*case)
    tol = 1e-9 * (1 + bill.on_demand_equivalent + bill.commitment_cost)
    assert bill.total_cost <= bill.on_demand_equivalent + bill.commitment_cost + tol
    assert 0 <= bill.coverage <= 1 + 1e-12
    assert 0 <= bill.utilization <= 1
    covered_value = bill.coverage * bill.on_demand_equivalent
    assert bill.on_demand_paid + covered_value == pytest.approx(bill.on_demand_equivalent, abs=tol)
    assert bill.commitment_cost == pytest.approx(sum(c.cost for c in bill.commitments), abs=tol)
    for c in bill.commitments:
        assert 0 <= c.used <= c.capacity * (1 + 1e-9) + 1e-12


@settings(max_examples=200, deadline=None)
@given(
    u=st.lists(st.floats(0, 20), min_size=1, max_size=48),
    q=st.floats(0.1, 10),
    rate=st.floats(0, 2),
    upfront=st.floats(0, 5000),
    on_demand=st.floats(0.01, 3),
)
def test_single_reservation_closed_form(
    u: list[float], q: float, rate: float, upfront: float, on_demand: float
) -> None:
    ri = offering("ri", RI, {"a": rate}, term_months=12, upfront=upfront)
    bill = simulate_bill(usage(a=u), book({"a": on_demand}, ri), [], [buy("ri", q)])
    amortized = rate + upfront / (12 * 730)
    expected = q * len(u) * amortized + on_demand * sum(max(0.0, x - q) for x in u)
    assert bill.total_cost == pytest.approx(expected, rel=1e-9, abs=1e-9)
