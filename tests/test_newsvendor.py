"""Single pool, single reservation: the optimum is the newsvendor quantile (closed form)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Offering, OfferingKind, Payment, PriceBook, UsageMatrix
from solver.planner import plan_for_usage
from tests.factories import START

POOL = "aws:ec2:us-east-1:m5:linux"


def newsvendor_cost(u: np.ndarray, c: float, d: float, level: float) -> float:
    """Window cost of reserving ``level`` units: c per unit-hour, d per uncovered unit-hour."""
    return c * len(u) * level + d * float(np.maximum(u - level, 0).sum())


def closed_form(u: np.ndarray, c: float, d: float) -> tuple[float, float]:
    """The level L where the share of hours with usage ≥ L reaches c/d, and its cost.

    Cost is convex piecewise linear in L with slope c·H − d·#{u > L}; it is minimal at the
    smallest usage value where #{u > L}/H ≤ c/d.
    """
    candidates = np.unique(np.r_[0.0, u])
    for level in candidates:
        if (u > level).mean() <= c / d + 1e-12:
            return float(level), newsvendor_cost(u, c, d, float(level))
    raise AssertionError("unreachable")


def single_pool(u: np.ndarray, d: float, rate: float, upfront: float, term_months: int, increment: float) -> tuple[UsageMatrix, PriceBook]:
    usage = UsageMatrix(START, (POOL,), u[:, None])
    ri = Offering(
        id="ri", kind=OfferingKind.RESERVATION, term_months=term_months, payment=Payment.PARTIAL_UPFRONT,
        upfront=upfront, increment=increment, rates={POOL: rate},
    )
    return usage, PriceBook(on_demand={POOL: d}, offerings={"ri": ri})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hours=st.integers(24, 300),
    seed=st.integers(0, 10_000),
    d=st.floats(0.01, 2.0),
    discount=st.floats(0.05, 0.9),
    upfront_share=st.sampled_from([0.0, 0.5, 1.0]),
    increment=st.sampled_from([1.0, 0.25]),
)
def test_reservation_level_is_the_newsvendor_quantile(hours, seed, d, discount, upfront_share, increment):
    rng = np.random.default_rng(seed)
    u = np.round(rng.gamma(2.0, 3.0, hours) * (rng.random(hours) > 0.1), 3)
    term = 12
    c = d * (1 - discount)  # amortized $ per unit-hour
    rate = c * (1 - upfront_share)
    upfront = c * upfront_share * term * 730
    usage, prices = single_pool(u, d, rate, upfront, term, increment)
    plan = plan_for_usage(usage, prices, gap=1e-9)
    c_eff = prices.offerings["ri"].hourly_cost_per_unit()

    _, best = closed_form(u, c_eff, d)
    # the continuous optimum attains the closed-form cost
    assert plan.solve.continuous_cost == pytest.approx(best, rel=1e-7, abs=1e-7)
    assert plan.solve.lower_bound <= best * (1 + 1e-9) + 1e-9
    # the sold quantity is the best multiple of the increment (brute force over the grid)
    grid = np.arange(0, u.max() + 2 * increment, increment)
    grid_costs = [newsvendor_cost(u, c_eff, d, q) for q in grid]
    assert plan.summary.expected_cost == pytest.approx(min(grid_costs), rel=1e-7, abs=1e-7)
    bought = sum(p.quantity for p in plan.purchases)
    assert newsvendor_cost(u, c_eff, d, bought) == pytest.approx(min(grid_costs), rel=1e-7, abs=1e-7)


def test_no_reservation_when_it_costs_more_than_on_demand_for_the_usage():
    u = np.r_[np.zeros(90), np.full(10, 5.0)]  # busy 10% of hours
    usage, prices = single_pool(u, d=1.0, rate=0.5, upfront=0.0, term_months=12, increment=1.0)
    plan = plan_for_usage(usage, prices)
    assert plan.purchases == []
    assert plan.summary.expected_cost == pytest.approx(50.0, rel=1e-7, abs=1e-7)
