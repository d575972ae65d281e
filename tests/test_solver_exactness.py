"""The fast decomposition equals the pool-hour LP on every backend, and the bill agrees with it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from models import Commitment, Purchase
from solver.backends import BACKENDS, LPStatus
from solver.consistency import greedy_is_optimal
from solver.coverage import total_cost
from solver.decomposition import solve_decomposition
from solver.instance import build_instance
from solver.naive_lp import solve_naive
from solver.planner import plan_for_usage
from solver.rounding import snap
from solver.simulator import simulate_bill
from tests.factories import START, random_prices, random_usage

REL = 1e-6


def estate(seed: int, pools: int = 6, hours: int = 200, term_months: int = 12):
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, pools, hours)
    prices = random_prices(rng, usage.pools, term_months=term_months)
    return usage, prices


def existing_for(usage, prices) -> list[Commitment]:
    """An existing reservation that expires mid-window and an existing compute savings plan."""
    ri = next(o for o in prices.reservations() if o.pool == usage.pools[0])
    return [
        Commitment(offering=ri.id, quantity=2, start=START - timedelta(days=300), end=START + timedelta(hours=80)),
        Commitment(offering="csp", quantity=0.05, start=START - timedelta(days=10), end=START + timedelta(days=355)),
    ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("backend", BACKENDS)
def test_decomposition_equals_pool_hour_lp(seed, backend):
    usage, prices = estate(seed)
    inst = build_instance(usage, prices, existing_for(usage, prices))
    assert greedy_is_optimal(inst)[0]
    naive = solve_naive(inst, backend)
    assert naive.status is LPStatus.OPTIMAL
    fast = solve_decomposition(inst, backend=backend, gap=1e-8)
    assert fast.status == "optimal"
    assert fast.upper == pytest.approx(naive.objective, rel=REL)
    # the LP's own plan, billed by the greedy rule, costs what the LP says: greedy = cheapest allocation
    assert total_cost(inst, naive.x[: inst.n_decisions]) == pytest.approx(naive.objective, rel=REL)


def test_backends_agree_on_the_optimum():
    usage, prices = estate(7, pools=5, hours=150)
    inst = build_instance(usage, prices)
    values = [solve_naive(inst, b).objective for b in BACKENDS]
    values += [solve_decomposition(inst, backend=b, gap=1e-8).upper for b in BACKENDS]
    assert max(values) - min(values) <= REL * max(values)


def test_window_longer_than_the_term():
    """One-month terms in a 1,000-hour window: commitments lapse at hour 730 and cost only while active."""
    usage, prices = estate(4, pools=4, hours=1000, term_months=1)
    inst = build_instance(usage, prices)
    assert np.all(inst.dec_end == 730)
    naive = solve_naive(inst)
    fast = solve_decomposition(inst, gap=1e-8)
    assert fast.upper == pytest.approx(naive.objective, rel=REL)


def _bill(usage, prices, existing, plan):
    purchases = [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases]
    return simulate_bill(usage, prices, existing, purchases)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_reported_figures_equal_the_hour_by_hour_bill(seed):
    usage, prices = estate(seed, pools=7, hours=300)
    existing = existing_for(usage, prices)
    plan = plan_for_usage(usage, prices, existing)
    bill = _bill(usage, prices, existing, plan)
    s = plan.summary
    assert s.expected_cost == pytest.approx(bill.total_cost, rel=REL)
    assert s.on_demand_equivalent == pytest.approx(bill.on_demand_equivalent, rel=REL)
    assert s.commitment_cost == pytest.approx(bill.commitment_cost, rel=REL)
    assert s.on_demand_paid == pytest.approx(bill.on_demand_paid, rel=REL, abs=1e-9)
    assert s.expected_savings == pytest.approx(bill.savings, rel=REL)
    assert s.effective_savings_rate == pytest.approx(bill.effective_savings_rate, rel=REL)
    assert s.coverage == pytest.approx(bill.coverage, rel=REL)
    assert s.utilization == pytest.approx(bill.utilization, rel=REL)
    mine = sorted((c.offering, c.source, round(c.quantity, 9), c.utilization, c.cost) for c in plan.commitments)
    theirs = sorted((c.offering, c.source, round(c.quantity, 9), c.utilization, c.cost) for c in bill.commitments)
    assert [m[:3] for m in mine] == [t[:3] for t in theirs]
    for m, t in zip(mine, theirs):
        assert m[3] == pytest.approx(t[3], rel=REL, abs=1e-9)
        assert m[4] == pytest.approx(t[4], rel=REL)
    # the rounding cost is what rounding added to the continuous optimum
    assert plan.solve.rounding_cost == pytest.approx(s.expected_cost - plan.solve.continuous_cost, abs=1e-6)
    assert plan.solve.rounding_cost >= -1e-6


@pytest.mark.parametrize("seed", [21, 22])
def test_no_random_perturbation_bills_lower(seed):
    usage, prices = estate(seed, pools=5, hours=240)
    existing = existing_for(usage, prices)
    plan = plan_for_usage(usage, prices, existing)
    inst = build_instance(usage, prices, existing)
    chosen = {p.offering: p.quantity for p in plan.purchases}
    x = np.array([chosen.get(o, 0.0) for o in inst.dec_offering])
    base = _bill(usage, prices, existing, plan).total_cost
    rng = np.random.default_rng(seed)
    for trial in range(60):
        steps = rng.integers(-3, 4, inst.n_decisions) * (rng.random(inst.n_decisions) < 0.4)
        if trial % 3 == 0:  # also single-offering moves of a few increments
            steps = np.zeros(inst.n_decisions, int)
            steps[rng.integers(inst.n_decisions)] = rng.choice([-2, -1, 1, 2])
        y = snap(np.maximum(x + steps * inst.dec_increment, 0.0), inst.dec_increment)
        purchases = [
            Purchase(offering=o, quantity=float(q), start=START) for o, q in zip(inst.dec_offering, y) if q > 0
        ]
        assert simulate_bill(usage, prices, existing, purchases).total_cost >= base * (1 - 1e-9)


def test_continuous_optimum_is_not_beaten_by_continuous_perturbations():
    usage, prices = estate(31, pools=5, hours=240)
    inst = build_instance(usage, prices)
    res = solve_decomposition(inst, gap=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(100):
        y = np.maximum(res.x + rng.normal(0, 0.05, inst.n_decisions) * np.maximum(res.x, 0.1), 0)
        assert total_cost(inst, y) >= res.lower - 1e-9 * abs(res.lower)


def test_explained_increments_are_exact_rebills_and_never_save():
    """The 'one increment more / less' figures in each explanation are re-bills by the simulator."""
    import re

    usage, prices = estate(41, pools=5, hours=200)
    plan = plan_for_usage(usage, prices)
    base = _bill(usage, prices, [], plan).total_cost
    for line in plan.purchases:
        more, less = map(float, re.findall(r"by ([+-]\d+\.\d+) \$", line.why))
        inc = prices.offerings[line.offering].increment
        for delta, quoted in ((inc, more), (-inc, less)):
            changed = [
                Purchase(offering=p.offering, quantity=max(0.0, p.quantity + (delta if p is line else 0.0)), start=p.start)
                for p in plan.purchases
            ]
            rebill = simulate_bill(usage, prices, [], [c for c in changed if c.quantity > 0]).total_cost
            assert rebill - base == pytest.approx(quoted, abs=0.005 + 1e-9)
            assert quoted >= -0.005
