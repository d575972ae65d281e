"""Price books where the providers' greedy fill is not the cheapest allocation are flagged, and still billed exactly."""

from __future__ import annotations

import numpy as np
import pytest

from models import Offering, OfferingKind, Payment, PriceBook, Purchase
from solver.consistency import greedy_is_optimal
from solver.instance import build_instance
from solver.planner import plan_for_usage
from solver.simulator import simulate_bill
from tests.factories import random_prices, random_usage


def test_published_structure_is_consistent():
    rng = np.random.default_rng(0)
    usage = random_usage(rng, 6, 48)
    assert greedy_is_optimal(build_instance(usage, random_prices(rng, usage.pools)))[0]


def _inconsistent(usage):
    """Narrow plan prefers pool A, but the broad plan is relatively much cheaper on A than on B:
    the greedy strands narrow commitment on A where the broad plan would have covered it."""
    a, b = usage.pools[:2]
    od = {p: 1.0 for p in usage.pools}
    narrow = Offering(id="narrow", kind=OfferingKind.SAVINGS_PLAN, term_months=12, payment=Payment.NO_UPFRONT,
                      upfront=0.0, increment=0.001, rates={a: 0.5, b: 0.55})
    broad = Offering(id="broad", kind=OfferingKind.SAVINGS_PLAN, term_months=12, payment=Payment.NO_UPFRONT,
                     upfront=0.0, increment=0.001, rates={p: (0.6 if p == a else 0.9) for p in usage.pools})
    return PriceBook(on_demand=od, offerings={"narrow": narrow, "broad": broad})


def test_inconsistent_rates_are_flagged_and_billed_exactly():
    rng = np.random.default_rng(1)
    usage = random_usage(rng, 3, 72)
    prices = _inconsistent(usage)
    ok, problems = greedy_is_optimal(build_instance(usage, prices))
    assert not ok and "narrow" in problems[0]
    plan = plan_for_usage(usage, prices)
    assert plan.solve.exact_billing_model is False
    bill = simulate_bill(usage, prices, [], [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases])
    assert plan.summary.expected_cost == pytest.approx(bill.total_cost, rel=1e-9)
