"""Policy limits beyond budgets: coverage band, utilization floors, CVaR limit, NPV, and the
explanation of limits that conflict. Every figure is re-billed by the simulator or brute-forced."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from models import Purchase, UsageMatrix
from models.errors import PlanningError
from models.policy import Policy
from solver.risk import cvar
from solver.instance import build_instance
from solver.npv import present_value
from solver.simulator import simulate_bill
from solver.stochastic import solve_expected_cost
from tests.factories import START, random_prices, random_usage, scaled_scenarios


def _case(seed: int, scenarios: int = 3, pools: int = 4, hours: int = 240):
    rng, out, prices = scaled_scenarios(seed, scenarios, pools, hours, 0.5, 1.4)
    w = rng.dirichlet(np.ones(scenarios))
    return out, w / w.sum(), prices


def _purchases(res):
    return [Purchase(offering=o, quantity=float(q), start=START + timedelta(hours=int(h)))
            for o, q, h in zip(res.offerings, res.quantities, res.starts) if q > 0]


def _bills(res, scenarios, prices):
    return [simulate_bill(u, prices, [], _purchases(res)) for u in scenarios]


def _coverage(bills, w):
    return float(np.dot(w, [b.coverage for b in bills]))


def test_coverage_minimum_is_met_in_the_billed_plan_and_costs_no_less():
    scenarios, w, prices = _case(1)
    free = solve_expected_cost(scenarios, w, prices)
    c_free = _coverage(_bills(free, scenarios, prices), w)
    target = min(0.97, c_free + 0.15)
    res = solve_expected_cost(scenarios, w, prices, policy=Policy(coverage_min=target))
    bills = _bills(res, scenarios, prices)
    assert _coverage(bills, w) >= target - 1e-9
    assert res.expected_cost >= free.expected_cost - 1e-6
    assert float(np.dot(w, [b.total_cost for b in bills])) == pytest.approx(res.expected_cost, rel=1e-9)


def test_coverage_maximum_is_met_and_a_slack_band_changes_nothing():
    scenarios, w, prices = _case(2)
    free = solve_expected_cost(scenarios, w, prices)
    c_free = _coverage(_bills(free, scenarios, prices), w)
    assert c_free > 0.2
    res = solve_expected_cost(scenarios, w, prices, policy=Policy(coverage_max=c_free - 0.15))
    assert _coverage(_bills(res, scenarios, prices), w) <= c_free - 0.15 + 1e-9
    assert res.expected_cost >= free.expected_cost - 1e-6
    slack = solve_expected_cost(scenarios, w, prices, policy=Policy(coverage_min=c_free - 0.1, coverage_max=min(1, c_free + 0.1)))
    assert slack.expected_cost == pytest.approx(free.expected_cost, rel=1e-6)


def _one_pool(seed: int, hours: int = 200):
    """One pool, one reservation offering, three scenarios: small enough to brute-force."""
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 1, hours)
    prices = random_prices(rng, usage.pools, payments=("no_upfront",), savings_plans=0)
    scenarios = [UsageMatrix(usage.start, usage.pools, np.round(usage.values * f, 3)) for f in (0.6, 1.0, 1.3)]
    return scenarios, np.array([0.3, 0.4, 0.3]), prices


def _brute_force(scenarios, w, prices, ok):
    """Least expected billed cost over whole reservation counts that ``ok`` accepts."""
    oid = next(iter(prices.offerings))
    best = None
    for q in range(0, int(max(s.values.max() for s in scenarios)) + 2):
        bills = [simulate_bill(u, prices, [], [Purchase(offering=oid, quantity=float(q), start=START)] if q else []) for u in scenarios]
        if not ok(q, bills):
            continue
        cost = float(np.dot(w, [b.total_cost for b in bills]))
        if best is None or cost < best[1] - 1e-9:
            best = (q, cost)
    return best


@pytest.mark.parametrize("seed", [3, 4])
def test_utilization_floor_matches_brute_force_and_holds_in_the_low_scenario(seed):
    scenarios, w, prices = _one_pool(seed)
    floor = 0.97
    res = solve_expected_cost(scenarios, w, prices, policy=Policy(utilization_floor=floor, utilization_scenario="low"))
    low = _bills(res, scenarios, prices)[0]  # factor 0.6: the scenario with the least usage
    assert all(c.utilization >= floor - 1e-9 for c in low.commitments if c.source == "purchase")
    q, cost = _brute_force(scenarios, w, prices, lambda q, bills: q == 0 or bills[0].commitments[0].utilization >= floor)
    assert res.expected_cost == pytest.approx(cost, rel=1e-9)
    assert float(res.quantities.sum()) == q


@pytest.mark.parametrize("seed", [5, 6])
def test_coverage_band_matches_brute_force_on_one_pool(seed):
    scenarios, w, prices = _one_pool(seed)
    for band in ({"coverage_min": 0.9}, {"coverage_max": 0.5}):
        lo, hi = band.get("coverage_min", 0.0), band.get("coverage_max", 1.0)
        res = solve_expected_cost(scenarios, w, prices, policy=Policy(**band))
        q, cost = _brute_force(scenarios, w, prices, lambda q, bills: lo - 1e-12 <= _coverage(bills, w) <= hi + 1e-12)
        assert res.expected_cost == pytest.approx(cost, rel=1e-9), band
        assert float(res.quantities.sum()) == q


def test_cvar_limit_holds_recomputed_from_the_simulator_and_costs_the_least_needed():
    scenarios, w, prices = _case(7, scenarios=5)
    free = solve_expected_cost(scenarios, w, prices)
    bills = _bills(free, scenarios, prices)
    free_cvar = cvar(np.array([b.total_cost for b in bills]), w, 0.8)
    averse = solve_expected_cost(scenarios, w, prices, policy=Policy(risk_weight=50, alpha=0.8))
    assert averse.cvar < free_cvar - 1e-6, "the case must have risk to trade"
    limit = 0.5 * (free_cvar + averse.cvar)
    res = solve_expected_cost(scenarios, w, prices, policy=Policy(cvar_limit=limit, alpha=0.8))
    recomputed = cvar(np.array([b.total_cost for b in _bills(res, scenarios, prices)]), w, 0.8)
    assert recomputed == pytest.approx(res.cvar, rel=1e-9)
    assert recomputed <= limit * (1 + 1e-9)
    assert free.expected_cost - 1e-6 <= res.expected_cost <= averse.expected_cost + 1e-6
    assert any(note.startswith("the CVaR limit binds") for note in res.notes)


def test_with_a_cost_of_capital_the_cvar_limit_holds_on_present_values():
    """With a cost of capital the optimizer trades present values, and so does its CVaR limit: the
    present value of each scenario's bill, computed on a one-scenario instance built afresh, meets it."""
    scenarios, w, prices = _case(7, scenarios=5)
    rate = 0.3
    free = solve_expected_cost(scenarios, w, prices, policy=Policy(cost_of_capital=rate, alpha=0.8))
    averse = solve_expected_cost(scenarios, w, prices, policy=Policy(risk_weight=50, alpha=0.8, cost_of_capital=rate))
    assert averse.cvar < free.cvar - 1e-6, "the case must have risk to trade"
    limit = free.cvar - 0.1 * (free.cvar - averse.cvar)
    res = solve_expected_cost(scenarios, w, prices, policy=Policy(cvar_limit=limit, alpha=0.8, cost_of_capital=rate))
    pv = []
    for u in scenarios:
        one = build_instance(u, prices, purchase_hours=(0,), prune_dominated=False)
        index = {(o, int(h)): j for j, (o, h) in enumerate(zip(one.dec_offering, one.dec_start))}
        x = np.zeros(one.n_decisions)
        for o, q, h in zip(res.offerings, res.quantities, res.starts):
            x[index[(o, int(h))]] += q
        pv.append(present_value(one, prices, [], rate, x))
    recomputed = cvar(np.array(pv), w, 0.8)
    assert recomputed == pytest.approx(res.cvar, rel=1e-9)
    assert recomputed <= limit * (1 + 1e-9)


def test_conflicting_limits_are_explained_as_the_smallest_set():
    scenarios, w, prices = _case(8)
    policy = Policy(coverage_min=0.95, allowed_payments=["all_upfront"], upfront_budget=10.0,
                    max_three_year_share=0.5, max_monthly_purchase=1e6)
    with pytest.raises(PlanningError) as e:
        solve_expected_cost(scenarios, w, prices, policy=policy)
    text = str(e.value)
    assert "coverage of at least 95.0%" in text and "upfront budget of 10.00 $" in text and "all upfront" in text
    assert "3-year" not in text and "bought in any one month" not in text and "Traceback" not in text


def test_band_inverted_and_maximum_below_existing_coverage_are_explained():
    scenarios, w, prices = _case(9)
    with pytest.raises(PlanningError, match="coverage of at least 60.0%; coverage of at most 40.0%"):
        solve_expected_cost(scenarios, w, prices, policy=Policy(coverage_min=0.6, coverage_max=0.4, upfront_budget=1e9))
    from models import Commitment
    big = Commitment(offering="csp", quantity=1000.0, start=START, end=START + timedelta(days=400))
    with pytest.raises(PlanningError, match=r"coverage of at most 10.0% \(the existing commitments alone already cover"):
        solve_expected_cost(scenarios, w, prices, existing=[big], policy=Policy(coverage_max=0.1, upfront_budget=5.0))


# --- laddering, caps, renewals -------------------------------------------------------------------

def test_purchase_dates_are_the_first_hour_of_each_month():
    from datetime import datetime, timezone

    from solver.ladder import purchase_hours
    assert purchase_hours(START, 5000, 4) == (0, 31 * 24, (31 + 28) * 24, (31 + 28 + 31) * 24)
    mid = datetime(2025, 1, 15, 10, tzinfo=timezone.utc)
    assert purchase_hours(mid, 5000, 3) == (0, (17 * 24 - 10), (17 * 24 - 10) + 28 * 24)
    assert purchase_hours(START, 800, 12) == (0, 744)  # dates past the window are dropped


def _ramp(seed: int, months: int = 3, pools: int = 3):
    rng = np.random.default_rng(seed)
    hours = (31 + 28 + 31) * 24 * months // 3
    base = random_usage(rng, pools, hours)
    growth = 1 + 1.5 * np.arange(hours)[:, None] / hours
    usage = UsageMatrix(base.start, base.pools, np.round(base.values * growth, 3))
    return usage, random_prices(rng, usage.pools)


def _month(t):
    return t.year * 12 + t.month - 1


def test_ladder_matches_the_pool_hour_lp_and_respects_monthly_caps():
    from solver.ladder import monthly_caps, purchase_hours
    from solver.naive_lp import solve_naive
    from solver.stochastic import build_scenario_instance

    usage, prices = _ramp(11)
    policy = Policy(ladder_months=3, max_monthly_purchase=0.6, max_monthly_expiry=0.5)
    res = solve_expected_cost([usage], [1.0], prices, policy=policy, gap=1e-7)
    assert any(h > 0 for h, q in zip(res.starts, res.quantities) if q > 0), "growing usage should buy later tranches"
    inst = build_scenario_instance([usage], [1.0], prices, prune_dominated=False, purchase_hours=purchase_hours(usage.start, usage.hours, 3))
    caps, _ = monthly_caps(inst, prices, [], 0.6, 0.5)
    lp = solve_naive(inst, limits=caps)
    assert res.lower_bound <= lp.objective * (1 + 1e-6) and res.continuous_objective == pytest.approx(lp.objective, rel=1e-6)
    bought, expiring = {}, {}
    for p in _purchases(res):
        o = prices.offerings[p.offering]
        amount = p.quantity * o.hourly_cost_per_unit()
        bought[_month(p.start)] = bought.get(_month(p.start), 0) + amount
        expiring[_month(p.start) + o.term_months] = expiring.get(_month(p.start) + o.term_months, 0) + amount
    assert max(bought.values()) <= 0.6 + 1e-9 and max(expiring.values()) <= 0.5 + 1e-9


def test_renewing_an_expiring_commitment_is_a_decision():
    from models import Commitment

    rng = np.random.default_rng(12)
    usage = UsageMatrix(START, ("aws:ec2:us-east-1:f0:p0",), np.full((1500, 1), 5.0))
    prices = random_prices(rng, usage.pools, payments=("no_upfront",), savings_plans=0)
    oid = next(iter(prices.offerings))
    held = [Commitment(offering=oid, quantity=2.0, start=START - timedelta(days=300), end=START + timedelta(hours=744))]
    res = solve_expected_cost([usage], [1.0], prices, existing=held)
    plan = {(p.offering, p.start): p.quantity for p in _purchases(res)}
    assert plan == {(oid, START): 3.0, (oid, START + timedelta(hours=744)): 2.0}
    kept = solve_expected_cost([usage], [1.0], prices, existing=held, policy=Policy(renew_existing=False))
    assert {(p.offering, p.start) for p in _purchases(kept)} == {(oid, START)}
    assert kept.expected_cost > res.expected_cost


# --- present value ----------------------------------------------------------------------------

def test_present_value_objective_matches_a_hand_computed_cash_flow_and_its_brute_force():
    scenarios, w, prices = _one_pool(13, hours=300)
    rate = 0.3
    oid = next(iter(prices.offerings))
    o = prices.offerings[oid]
    od = prices.on_demand[o.pool]
    d = (1 + rate) ** (-np.arange(300) / 8760)

    def pv(q):
        fees = q * (o.rates[o.pool] * d.sum() + o.upfront * 300 / o.term_hours)
        return fees + sum(wi * float(d @ (od * np.maximum(s.values[:, 0] - q, 0))) for wi, s in zip(w, scenarios))

    res = solve_expected_cost(scenarios, w, prices, policy=Policy(cost_of_capital=rate))
    q = float(res.quantities.sum())
    assert res.objective == pytest.approx(pv(q), rel=1e-9)
    assert pv(q) <= min(pv(k) for k in range(0, 15)) + 1e-9
    nominal = solve_expected_cost(scenarios, w, prices, policy=Policy(cost_of_capital=0.0))
    assert nominal.quantities.tolist() == solve_expected_cost(scenarios, w, prices).quantities.tolist()


def test_a_cost_of_capital_prefers_paying_later():
    from models import Offering, OfferingKind, Payment, PriceBook

    usage = UsageMatrix(START, ("p",), np.full((2000, 1), 4.0))
    hours = 12 * 730
    book = PriceBook(on_demand={"p": 1.0}, offerings={
        "later": Offering(id="later", kind=OfferingKind.RESERVATION, term_months=12, payment=Payment.NO_UPFRONT,
                          upfront=0.0, increment=1.0, rates={"p": 0.6}),
        "now": Offering(id="now", kind=OfferingKind.RESERVATION, term_months=12, payment=Payment.ALL_UPFRONT,
                        upfront=0.599 * hours, increment=1.0, rates={"p": 0.0}),
    })
    nominal = solve_expected_cost([usage], [1.0], book)
    assert {o for o, q in zip(nominal.offerings, nominal.quantities) if q > 0} == {"now"}  # cheaper by 0.001 $/h
    discounted = solve_expected_cost([usage], [1.0], book, policy=Policy(cost_of_capital=0.1))
    assert {o for o, q in zip(discounted.offerings, discounted.quantities) if q > 0} == {"later"}


def test_an_unreachable_cvar_limit_says_the_least_cvar():
    scenarios, w, prices = _case(14, scenarios=4)
    averse = solve_expected_cost(scenarios, w, prices, policy=Policy(risk_weight=1000, alpha=0.8))
    with pytest.raises(PlanningError, match=r"this limit cannot hold: CVaR80% of cost at most .* \(the least CVaR any plan reaches is"):
        solve_expected_cost(scenarios, w, prices, policy=Policy(cvar_limit=0.98 * averse.cvar, alpha=0.8))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaling_a_plan_to_a_coverage_maximum_lands_just_under_it(seed: int) -> None:
    """The inner row of a coverage maximum is drawn at t·x with coverage(t·x) ≤ max: the largest
    such t to 1e-7 in coverage, checked against the coverage billed at t and a hair above it."""
    from solver.nonlinear_limits import Measures, scale_to_coverage

    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 5, 300)
    inst = build_instance(usage, random_prices(rng, usage.pools))
    measures = Measures(inst, inst.scenario_weights)
    x = inst.dec_upper * rng.uniform(0.2, 1.0, inst.n_decisions)
    low, high = measures.coverage(0 * x), measures.coverage(x)
    for target in np.linspace(low, high, 7)[1:-1]:
        point = scale_to_coverage(measures, x, float(target))
        t = float(point @ x / (x @ x))
        assert np.allclose(point, t * x) and 0.0 <= t <= 1.0
        assert target - 1e-7 <= measures.coverage(point) <= target
        assert measures.coverage(min(1.0, t + 1e-5) * x) > target - 1e-7
    assert scale_to_coverage(measures, x, high + 0.01) is x  # already under the maximum: unchanged
    assert not np.any(scale_to_coverage(measures, x, low - 0.01))  # even nothing bought exceeds it
