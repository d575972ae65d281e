"""Policy limits: allowed offerings, upfront budget, share of 3-year terms — held by the plan and
equal to the pool-hour LP with the same limits."""

from __future__ import annotations

import numpy as np
import pytest

from models import Offering, OfferingKind, Payment, PriceBook
from models.errors import InputError
from models.policy import Policy, load_policy
from solver.decomposition import solve_decomposition
from solver.instance import build_instance
from solver.naive_lp import solve_naive
from solver.planner import plan_for_usage
from solver.policy_limits import apply_policy
from tests.factories import random_prices, random_usage


def _estate(seed: int = 3):
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 4, 150)
    prices = random_prices(rng, usage.pools)
    # add 3-year all-upfront reservations, cheaper per hour than the 1-year ones
    extra = {}
    for o in prices.reservations():
        if o.payment is Payment.ALL_UPFRONT:
            oid = o.id.replace("ri-", "ri3y-")
            extra[oid] = Offering(id=oid, kind=OfferingKind.RESERVATION, term_months=36, payment=Payment.ALL_UPFRONT,
                                  upfront=round(o.hourly_cost_per_unit() * 0.7 * 36 * 730, 2), increment=1.0,
                                  rates={o.pool: 0.0})
    return usage, PriceBook(on_demand=prices.on_demand, offerings={**prices.offerings, **extra})


def _upfront(plan, prices):
    return sum(p.quantity * prices.offerings[p.offering].upfront for p in plan.purchases)


def test_allowed_terms_and_kinds_are_respected():
    usage, prices = _estate()
    plan = plan_for_usage(usage, prices, policy=Policy(allowed_terms=[12], allowed_kinds=["reservation"]))
    assert plan.purchases and all(prices.offerings[p.offering].term_months == 12 for p in plan.purchases)
    assert all(p.kind == "reservation" for p in plan.purchases)


@pytest.mark.parametrize("budget", [0.0, 500.0])
def test_upfront_budget_holds_and_costs_no_less(budget):
    usage, prices = _estate()
    free = plan_for_usage(usage, prices)
    capped = plan_for_usage(usage, prices, policy=Policy(upfront_budget=budget))
    assert _upfront(capped, prices) <= budget + 1e-9
    assert capped.summary.expected_cost >= free.summary.expected_cost - 1e-6


def test_three_year_share_holds():
    usage, prices = _estate()
    free = plan_for_usage(usage, prices)
    def share(plan):
        h = {p.offering: p.quantity * prices.offerings[p.offering].hourly_cost_per_unit() for p in plan.purchases}
        total = sum(h.values())
        return sum(v for o, v in h.items() if prices.offerings[o].term_months >= 36) / total if total else 0.0
    assert share(free) > 0.5
    capped = plan_for_usage(usage, prices, policy=Policy(max_three_year_share=0.3))
    assert share(capped) <= 0.3 + 1e-9


def test_limited_decomposition_equals_the_limited_pool_hour_lp():
    usage, prices = _estate(5)
    policy = Policy(upfront_budget=300.0, max_three_year_share=0.4)
    inst, limits, _ = apply_policy(build_instance(usage, prices, prune_dominated=False), prices, policy)
    lp = solve_naive(inst, limits=limits)
    fast = solve_decomposition(inst, gap=1e-8, limits=limits)
    assert fast.upper == pytest.approx(lp.objective, rel=1e-6)
    assert all(lim.holds(fast.x) for lim in limits)


def test_policy_file_errors_name_the_key_and_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("upfront_budget: 1000\nmax_three_year_share: 1.5\n")
    with pytest.raises(InputError) as e:
        load_policy(path)
    assert (e.value.row, e.value.column) == (2, "max_three_year_share")
    path.write_text("upfront_budget: 1000\nbudget_for_lunch: 3\n")
    with pytest.raises(InputError, match="unknown limit") as e:
        load_policy(path)
    assert (e.value.row, e.value.column) == (2, "budget_for_lunch")
    path.write_text("allowed_terms: [12, 36]\nupfront_budget: 25000\nrisk_weight: 0.5\n")
    assert load_policy(path) == Policy(allowed_terms=[12, 36], upfront_budget=25000, risk_weight=0.5)


def test_the_shipped_policy_example_loads():
    from pathlib import Path

    policy = load_policy(Path(__file__).parent.parent / "scenarios" / "examples" / "policies" / "finance.yaml")
    assert policy.upfront_budget == 25000 and policy.max_three_year_share == 0.5


def test_the_shipped_ladder_policy_loads_every_limit():
    from pathlib import Path

    policy = load_policy(Path(__file__).parent.parent / "scenarios" / "examples" / "policies" / "ladder.yaml")
    assert policy.ladder_months == 6 and policy.coverage_min == 0.6 and policy.utilization_scenario == "low"
    assert policy.cost_of_capital == 0.08 and policy.max_monthly_expiry == 14.0


def test_plan_for_usage_meets_a_coverage_band_and_floors_billed_by_the_simulator():
    from datetime import timedelta

    from models import Purchase
    from solver.simulator import simulate_bill

    rng = np.random.default_rng(21)
    usage = random_usage(rng, 4, 24 * 75)
    prices = random_prices(rng, usage.pools)
    free = plan_for_usage(usage, prices)
    policy = Policy(coverage_max=free.summary.coverage - 0.1, utilization_floor=0.97, ladder_months=3)
    plan = plan_for_usage(usage, prices, policy=policy)
    bill = simulate_bill(usage, prices, [], [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases])
    assert bill.coverage <= policy.coverage_max + 1e-9
    assert all(c.utilization >= 0.97 - 1e-9 for c in bill.commitments)
    assert bill.total_cost == pytest.approx(plan.summary.expected_cost, rel=1e-9)
    assert any(p.start > usage.start for p in plan.purchases) or all(p.start == usage.start for p in plan.purchases)
    assert {p.start for p in plan.purchases} <= {usage.start, usage.start + timedelta(days=31), usage.start + timedelta(days=59)}
