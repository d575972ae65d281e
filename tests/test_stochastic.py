"""Expected cost over scenarios: one scenario is the core problem; the expectation is the weighted bills."""

from __future__ import annotations

import numpy as np
import pytest

from models import Purchase, UsageMatrix
from solver.naive_lp import solve_naive
from solver.planner import plan_for_usage
from solver.simulator import simulate_bill
from solver.stochastic import build_scenario_instance, solve_expected_cost
from tests.factories import START, random_prices, random_usage, scaled_scenarios


def _scenarios(seed: int, n: int, pools: int = 5, hours: int = 150):
    _, out, prices = scaled_scenarios(seed, n, pools, hours, 0.6, 1.3)
    return out, prices


def test_a_single_scenario_gives_the_core_plan():
    (usage,), prices = _scenarios(1, 1)
    core = plan_for_usage(usage, prices)
    res = solve_expected_cost([usage], [1.0], prices)
    assert res.expected_cost == pytest.approx(core.summary.expected_cost, rel=1e-6)
    bought = {o: q for o, q in zip(res.offerings, res.quantities) if q > 0}
    assert bought == pytest.approx({p.offering: p.quantity for p in core.purchases})


def test_expected_cost_is_the_weighted_hour_by_hour_bills():
    scenarios, prices = _scenarios(2, 3)
    weights = [0.5, 0.3, 0.2]
    res = solve_expected_cost(scenarios, weights, prices)
    purchases = [Purchase(offering=o, quantity=float(q), start=START) for o, q in zip(res.offerings, res.quantities) if q > 0]
    bills = np.array([simulate_bill(s, prices, [], purchases).total_cost for s in scenarios])
    np.testing.assert_allclose(res.scenario_costs, bills, rtol=1e-9)
    assert res.expected_cost == pytest.approx(float(np.dot(weights, bills)), rel=1e-9)


def test_stacked_decomposition_equals_the_stacked_pool_hour_lp():
    scenarios, prices = _scenarios(3, 3, pools=4, hours=100)
    weights = [0.2, 0.5, 0.3]
    inst = build_scenario_instance(scenarios, weights, prices)
    lp = solve_naive(inst)
    res = solve_expected_cost(scenarios, weights, prices, gap=1e-8)
    assert res.lower_bound == pytest.approx(lp.objective, rel=1e-6)
    # hedging: the expected-cost plan is no worse in expectation than each scenario's own plan
    for s in scenarios:
        own = plan_for_usage(s, prices)
        purchases = [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in own.purchases]
        expected = float(np.dot(weights, [simulate_bill(x, prices, [], purchases).total_cost for x in scenarios]))
        assert res.expected_cost <= expected * (1 + 1e-9)


def test_weights_must_be_probabilities():
    scenarios, prices = _scenarios(4, 2)
    with pytest.raises(ValueError, match="sum to 1"):
        build_scenario_instance(scenarios, [0.7, 0.7], prices)


def _risky_scenarios(seed: int = 5):
    """Four scenarios from a shrinking to a growing estate: commitments that pay in the growth
    scenarios sit idle in the shrink one, so risk aversion has something to trade."""
    rng = np.random.default_rng(seed)
    base = random_usage(rng, 4, 120)
    prices = random_prices(rng, base.pools)
    factors = [0.35, 0.8, 1.1, 1.5]
    return [UsageMatrix(base.start, base.pools, np.round(base.values * f, 3)) for f in factors], prices


def test_risk_weight_zero_is_the_risk_neutral_plan():
    from solver.risk import RiskSpec

    scenarios, prices = _risky_scenarios()
    w = [0.25, 0.25, 0.25, 0.25]
    neutral = solve_expected_cost(scenarios, w, prices)
    zero = solve_expected_cost(scenarios, w, prices, risk=RiskSpec(alpha=0.75, weight=0.0))
    np.testing.assert_allclose(zero.quantities, neutral.quantities)
    assert zero.expected_cost == pytest.approx(neutral.expected_cost, rel=1e-12)


def test_cvar_falls_and_expected_cost_rises_with_risk_aversion():
    from solver.risk import RiskSpec, cvar

    scenarios, prices = _risky_scenarios()
    w = np.array([0.25, 0.25, 0.25, 0.25])
    results = [solve_expected_cost(scenarios, w, prices, risk=RiskSpec(alpha=0.75, weight=b), gap=1e-8)
               for b in (0.0, 0.5, 2.0, 10.0)]
    for r in results:
        # CVaR recomputed outside the solver from per-scenario hour-by-hour bills equals the reported one
        purchases = [Purchase(offering=o, quantity=float(q), start=START) for o, q in zip(r.offerings, r.quantities) if q > 0]
        bills = np.array([simulate_bill(s, prices, [], purchases).total_cost for s in scenarios])
        assert r.cvar == pytest.approx(cvar(bills, w, 0.75), rel=1e-9)
        worst = np.sort(bills)[-1]  # alpha = 0.75 with 4 equal scenarios: CVaR is the worst one
        assert r.cvar == pytest.approx(worst, rel=1e-9)
        # the certified bound of the continuous problem is below the sellable plan's objective
        assert r.lower_bound <= r.objective * (1 + 1e-9)
    tol = 1e-6
    for a, b in zip(results, results[1:]):
        assert b.cvar <= a.cvar * (1 + tol) + 0.02  # a cent of rounding slack
        assert b.expected_cost >= a.expected_cost * (1 - tol) - 0.02
    assert results[-1].cvar < results[0].cvar  # the trade-off is real on this estate
