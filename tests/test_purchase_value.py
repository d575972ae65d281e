"""Break-even utilization and marginal value of purchases (solver/purchase_value.py).

Marginal values come from the duals; they are checked against exact re-bills (finite differences of
``total_cost`` and of the independent simulator) and, on tiny cases, against a hand-written hour
loop. Break-even utilizations are checked against the price book and against the exact saving of
a savings plan at its billed utilization.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from models import Offering, OfferingKind, Payment, PriceBook, Purchase, UsageMatrix
from solver.coverage import total_cost
from solver.instance import build_instance
from solver.planner import plan_for_usage
from solver.purchase_value import (
    break_even_utilizations,
    marginal_values,
    purchase_values,
)
from solver.simulator import simulate_bill
from solver.stochastic import build_scenario_instance
from tests.factories import START, random_prices, random_usage


def _random_point(rng: np.random.Generator, inst) -> np.ndarray:
    """A random plan inside the useful range of every decision (rarely on a kink of the bill)."""
    return rng.uniform(0.0, 0.8, inst.n_decisions) * inst.dec_upper * (rng.uniform(size=inst.n_decisions) < 0.6)


def _right_difference(inst, x: np.ndarray, j: int) -> float:
    """−(cost(x + h e_j) − cost(x)) / h for a tiny step h: the exact re-bill of one more unit, per unit."""
    h = 1e-6 * max(abs(x[j]), 1.0)
    y = x.copy()
    y[j] += h
    return -(total_cost(inst, y) - total_cost(inst, x)) / h


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_marginal_value_is_the_exact_rebill_of_a_small_step(seed):
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 5, 96)
    prices = random_prices(rng, usage.pools)
    inst = build_instance(usage, prices, prune_dominated=False, purchase_hours=(0, 30))  # some decisions start late
    assert (inst.dec_start > 0).any()
    for _ in range(3):
        x = _random_point(rng, inst)
        value = marginal_values(inst, x)
        fd = np.array([_right_difference(inst, x, j) for j in range(inst.n_decisions)])
        np.testing.assert_allclose(value, fd, rtol=1e-5, atol=1e-4)


def test_marginal_value_times_a_step_is_the_simulators_rebill():
    """At the plan the planner returns: marginal value × step = the simulator's bill difference."""
    rng = np.random.default_rng(11)
    usage = random_usage(rng, 4, 72)
    prices = random_prices(rng, usage.pools)
    plan = plan_for_usage(usage, prices)
    assert plan.purchases, "the estate should buy something"
    purchases = [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases]
    base = simulate_bill(usage, prices, [], purchases).total_cost
    inst = build_instance(usage, prices, prune_dominated=False)
    x = np.zeros(inst.n_decisions)
    for p in plan.purchases:
        x[inst.dec_offering.index(p.offering)] = p.quantity
    own = marginal_values(inst, x)
    for k, p in enumerate(plan.purchases):
        step = 1e-6 * max(p.quantity, 1.0)
        more = [q.model_copy(update={"quantity": q.quantity + step}) if i == k else q for i, q in enumerate(purchases)]
        rebill = simulate_bill(usage, prices, [], more).total_cost - base
        assert p.marginal_value * step == pytest.approx(-rebill, rel=1e-4, abs=1e-9)
        assert p.marginal_value == pytest.approx(own[inst.dec_offering.index(p.offering)], rel=1e-12)


def _book(on_demand: dict[str, float], offerings: list[Offering]) -> PriceBook:
    return PriceBook(on_demand=on_demand, offerings={o.id: o for o in offerings})


def _ri(pool: str, rate: float, upfront: float = 0.0) -> Offering:
    return Offering(id=f"ri-{pool}", kind=OfferingKind.RESERVATION, term_months=12,
                    payment=Payment.PARTIAL_UPFRONT if upfront else Payment.NO_UPFRONT,
                    upfront=upfront, increment=1.0, rates={pool: rate})


def _sp(rates: dict[str, float], oid: str = "sp") -> Offering:
    return Offering(id=oid, kind=OfferingKind.SAVINGS_PLAN, term_months=12, payment=Payment.NO_UPFRONT,
                    upfront=0.0, increment=0.001, rates=rates)


def test_reservation_by_hand():
    """One pool, six hours: one more unit saves the on-demand rate in every hour the usage exceeds
    the reservation and costs its amortized rate every hour."""
    u = [3.0, 1.0, 2.5, 4.0, 2.0, 0.0]
    od, rate, upfront = 0.10, 0.03, 87.6  # amortized 0.03 + 87.6 / 8760 = 0.04 $/h
    prices = _book({"a": od}, [_ri("a", rate, upfront)])
    inst = build_instance(UsageMatrix(START, ("a",), np.array(u)[:, None]), prices, prune_dominated=False)
    for q in (0.0, 1.0, 2.0, 2.5, 3.7):
        expected = sum(od for v in u if v > q) - 0.04 * len(u)
        be, mv = purchase_values(inst, np.array([q]))
        assert mv[0] == pytest.approx(expected, abs=1e-12)
        assert be[0] == pytest.approx(0.04 / od, rel=1e-12)


def test_savings_plan_by_hand():
    """Two pools, one savings plan: each hour the commitment covers pool a (the larger discount),
    then b; one more $/h saves od/rate of the first pool left partly on demand (nothing when all
    eligible usage is covered). Break-even: $ spent over on-demand value covered."""
    od = {"a": 0.10, "b": 0.20}
    rates = {"a": 0.06, "b": 0.15}  # a saves 40 %, b 25 %: a is filled first
    usage = np.array([[2.0, 1.0], [10.0, 0.0], [1.0, 4.0], [0.0, 0.5]])
    prices = _book(od, [_sp(rates)])
    inst = build_instance(UsageMatrix(START, ("a", "b"), usage), prices, prune_dominated=False)
    for c in (0.0, 0.1, 0.2, 0.3, 0.5):
        saved, spend, value = 0.0, 0.0, 0.0
        for ua, ub in usage:
            left = c
            first_left = None
            for pool, units in (("a", ua), ("b", ub)):
                covered = min(units, left / rates[pool])
                left -= covered * rates[pool]
                spend += covered * rates[pool]
                value += covered * od[pool]
                if units - covered > 1e-12 and first_left is None:
                    first_left = pool
            if first_left is not None:
                saved += od[first_left] / rates[first_left]
        be, mv = purchase_values(inst, np.array([c]))
        assert mv[0] == pytest.approx(saved - len(usage), abs=1e-12)
        expected_be = spend / value if value > 0 else min(rates[p] / od[p] for p in od)
        assert be[0] == pytest.approx(expected_be, rel=1e-12)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_savings_plan_break_even_is_where_it_saves_nothing(seed):
    """With a single savings plan, the plan's saving from it is exactly spend / break-even − cost,
    where spend = utilization × cost (billed by the simulator); so at utilization = break-even
    it would save nothing."""
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 4, 60)
    prices = random_prices(rng, usage.pools, payments=("no_upfront",), savings_plans=1)
    inst = build_instance(usage, prices, prune_dominated=False)
    x = _random_point(rng, inst)
    j = inst.dec_offering.index("csp")
    x[j] = 0.5 * inst.dec_upper[j]
    be = break_even_utilizations(inst, x)
    buys = [Purchase(offering=o, quantity=q, start=START) for o, q in zip(inst.dec_offering, x) if q > 0]
    bill = simulate_bill(usage, prices, [], buys)
    without = simulate_bill(usage, prices, [], [b for b in buys if b.offering != "csp"])
    line = next(c for c in bill.commitments if c.offering == "csp")
    saving = without.total_cost - bill.total_cost
    assert saving == pytest.approx(line.used / be[j] - line.cost, rel=1e-9)
    # reservations: the price book's amortized rate over the on-demand rate
    for k in np.flatnonzero(inst.dec_kind == 0):
        o = prices.offerings[inst.dec_offering[k]]
        assert be[k] == pytest.approx((o.rates[o.pool] + o.upfront / o.term_hours) / prices.on_demand[o.pool], rel=1e-12)


def test_savings_plan_covering_nothing_reports_its_most_discounted_pool():
    od = {"a": 0.10, "b": 0.20}
    prices = _book(od, [_sp({"a": 0.07, "b": 0.12}), _ri("a", 0.05)])
    usage = np.array([[1.0, 0.0], [1.0, 0.0]])
    inst = build_instance(UsageMatrix(START, ("a", "b"), usage), prices, prune_dominated=False)
    x = np.zeros(inst.n_decisions)
    x[inst.dec_offering.index("ri-a")] = 1.0  # the reservation covers all of a: the plan covers nothing
    be = break_even_utilizations(inst, x)
    assert be[inst.dec_offering.index("sp")] == pytest.approx(0.6)  # b: 0.12 / 0.20 < a: 0.7


def test_stacked_scenarios_weight_each_scenarios_values():
    """Over weighted scenarios, the marginal value is the weighted sum of each scenario's, and a
    savings plan's break-even is its weighted spend over its weighted covered on-demand value."""
    rng = np.random.default_rng(8)
    usages = [random_usage(rng, 4, 48) for _ in range(3)]  # same pools and hours, different usage
    prices = random_prices(rng, usages[0].pools)
    w = np.array([0.2, 0.5, 0.3])
    stacked = build_scenario_instance(usages, w, prices, prune_dominated=False)
    singles = [build_instance(u, prices, prune_dominated=False) for u in usages]
    assert all(s.dec_offering == stacked.dec_offering for s in singles)
    x = _random_point(rng, stacked)
    be, mv = purchase_values(stacked, x)
    per = [marginal_values(s, x) for s in singles]
    np.testing.assert_allclose(mv, sum(wk * m for wk, m in zip(w, per)), rtol=1e-9, atol=1e-9)
    for j in np.flatnonzero(stacked.dec_kind == 1):
        if x[j] <= 0:
            continue
        # per scenario: spend = be × value, and the simulator's $ used is the spend
        buys = [Purchase(offering=o, quantity=q, start=START) for o, q in zip(stacked.dec_offering, x) if q > 0]
        spends, values = [], []
        for u, s in zip(usages, singles):
            used = next(c.used for c in simulate_bill(u, prices, [], buys).commitments
                        if c.offering == stacked.dec_offering[j])
            spends.append(used)
            values.append(used / break_even_utilizations(s, x)[j])
        assert be[j] == pytest.approx(float(w @ spends) / float(w @ values), rel=1e-9)


def test_plan_lines_carry_the_values_and_the_amortized_rate():
    rng = np.random.default_rng(3)
    usage = random_usage(rng, 4, 48)
    prices = random_prices(rng, usage.pools)
    plan = plan_for_usage(usage, prices)
    assert plan.purchases
    inst = build_instance(usage, prices, prune_dominated=False)
    x = np.zeros(inst.n_decisions)
    for p in plan.purchases:
        x[inst.dec_offering.index(p.offering)] = p.quantity
    be, mv = purchase_values(inst, x)
    for p in plan.purchases:
        j = inst.dec_offering.index(p.offering)
        o = prices.offerings[p.offering]
        assert p.break_even_utilization == pytest.approx(be[j], rel=1e-12)
        assert p.marginal_value == pytest.approx(mv[j], rel=1e-12, abs=1e-12)
        assert p.hourly_commitment == pytest.approx(p.quantity * o.hourly_cost_per_unit(), rel=1e-12)
        assert p.window_cost == pytest.approx(p.hourly_commitment * usage.hours, rel=1e-9)
        assert p.start == START and p.start + timedelta(hours=o.term_hours) > usage.end
