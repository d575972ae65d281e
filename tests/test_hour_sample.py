"""Optimizing on a stratified sample of hours: the sample covers every hour once, estimates the
bill without bias, and a plan optimized on it meets every limit re-billed on all hours by the
simulator, at a cost close to the plan optimized on all hours."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from models import Purchase, UsageMatrix
from models.policy import Policy
from solver.constrained import Solution, cvar_of, solve_problem
from solver.coverage import total_cost
from solver.risk import cvar
from solver.hour_sample import restrict, stratified
from solver.ladder import purchase_hours
from solver.nonlinear_limits import Measures
from solver.policy_limits import problem_for
from solver.sampled_solve import _moved_targets, on_sample
from solver.segments import CapacitySegments
from solver.simulator import simulate_bill
from solver.stochastic import build_scenario_instance, solve_expected_cost
from tests.factories import START, random_prices, random_usage


def _estate(seed: int, scenarios: int = 3, pools: int = 3, months: int = 3):
    """Growing usage with daily swings, and scenarios that scale each pool differently."""
    rng = np.random.default_rng(seed)
    hours = 90 * 24 * months // 3
    base = random_usage(rng, pools, hours)
    growth = 100 * (1 + 0.8 * np.arange(hours)[:, None] / hours)  # hundreds of units: whole reservations are fine steps
    out = []
    for s in range(scenarios):
        factor = np.ones(pools) if s == 0 else rng.uniform(0.3, 1.6, pools)
        out.append(UsageMatrix(base.start, base.pools, np.round(base.values * growth * factor, 3)))
    w = rng.dirichlet(np.ones(scenarios))
    return out, w / w.sum(), random_prices(rng, base.pools)


def _instance(seed: int, months: int = 3):
    scenarios, w, prices = _estate(seed, months=months)
    first = scenarios[0]
    inst = build_scenario_instance(scenarios, w, prices, prune_dominated=False,
                                   purchase_hours=purchase_hours(first.start, first.hours, months))
    return inst, scenarios, w, prices


def _random_plan(inst, rng):
    return rng.uniform(0, 1, inst.n_decisions) * inst.dec_upper * (rng.uniform(size=inst.n_decisions) < 0.3)


@pytest.mark.parametrize("seed", [1, 2])
def test_every_hour_is_counted_once_and_whole_scenarios_keep_every_hour(seed):
    inst, *_ = _instance(seed)
    sample = stratified(inst, per_block=24, whole=(1,))
    assert np.all(np.diff(sample.rows) > 0)
    segments = CapacitySegments.of(inst)
    block = inst.hour_scenario * segments.count + segments.hour_segment
    sizes = np.bincount(block, minlength=block.max() + 1)
    counted = np.bincount(block[sample.rows], weights=sample.count, minlength=len(sizes))
    np.testing.assert_array_equal(counted, sizes)  # each block's hours, each stood for once
    in_whole = inst.hour_scenario[sample.rows] == 1
    assert in_whole.sum() == inst.horizon and np.all(sample.count[in_whole] == 1)
    others = inst.hour_scenario[sample.rows] != 1
    assert np.bincount(block[sample.rows][others]).max() == 24


def _plans_measured_both_ways(inst, small, seed: int, plans: int):
    """Random plans with their total cost and coverage on the full instance and on ``small``."""
    rng = np.random.default_rng(seed)
    full_m, small_m = Measures(inst, inst.scenario_weights), Measures(small, small.scenario_weights)
    for _ in range(plans):
        x = _random_plan(inst, rng)
        yield x, full_m, small_m, (total_cost(inst, x), total_cost(small, x)), (full_m.coverage(x), small_m.coverage(x))


def test_a_sample_of_every_hour_bills_exactly_as_the_full_instance():
    inst, *_ = _instance(3)
    sample = stratified(inst, per_block=10_000)
    assert len(sample.rows) == inst.hours and np.all(sample.count == 1)
    for x, full_m, small_m, cost, coverage in _plans_measured_both_ways(inst, restrict(inst, sample), 0, 3):
        assert cost[1] == pytest.approx(cost[0], rel=1e-12)
        assert coverage[1] == pytest.approx(coverage[0], rel=1e-12)
        np.testing.assert_allclose(small_m.monthly_fill(x, 2), full_m.monthly_fill(x, 2), rtol=1e-12)


def test_the_sample_estimates_cost_and_coverage_closely():
    inst, *_ = _instance(4)
    small = restrict(inst, stratified(inst, per_block=48))
    assert small.hours < inst.hours / 10
    for _, _, _, cost, coverage in _plans_measured_both_ways(inst, small, 1, 5):
        assert cost[1] == pytest.approx(cost[0], rel=5e-3)
        assert coverage[1] == pytest.approx(coverage[0], abs=1e-2)


def _purchases(res):
    return [Purchase(offering=o, quantity=float(q), start=START + timedelta(hours=int(h)))
            for o, q, h in zip(res.offerings, res.quantities, res.starts) if q > 0]


def _billed(res, scenarios, prices):
    return [simulate_bill(u, prices, [], _purchases(res)) for u in scenarios]


def test_a_plan_optimized_on_a_sample_meets_a_cvar_limit_and_coverage_minimum_billed_on_all_hours():
    scenarios, w, prices = _estate(5)
    ladder = Policy(ladder_months=3, alpha=0.8)
    free = solve_expected_cost(scenarios, w, prices, policy=ladder, sample_per_month=0)
    averse = solve_expected_cost(scenarios, w, prices, policy=ladder.model_copy(update={"risk_weight": 50.0}), sample_per_month=0)
    assert averse.cvar < free.cvar - 1e-3 * free.cvar, "the case must have risk to trade"
    policy = ladder.model_copy(update={"cvar_limit": 0.5 * (free.cvar + averse.cvar),  # binds
                                       "coverage_min": float(w @ [b.coverage for b in _billed(free, scenarios, prices)]) - 0.05})
    full = solve_expected_cost(scenarios, w, prices, policy=policy, sample_per_month=0)
    sampled = solve_expected_cost(scenarios, w, prices, policy=policy, sample_per_month=48)
    assert sampled.optimized_hours < full.optimized_hours / 10
    assert any("stratified sample" in n for n in sampled.notes)
    bills = _billed(sampled, scenarios, prices)
    assert float(w @ [b.coverage for b in bills]) >= policy.coverage_min - 1e-9
    assert cvar(np.array([b.total_cost for b in bills]), w, 0.8) <= policy.cvar_limit * (1 + 1e-9)
    assert float(w @ [b.total_cost for b in bills]) == pytest.approx(sampled.expected_cost, rel=1e-9)
    assert full.expected_cost - 1e-6 <= sampled.expected_cost <= full.expected_cost * 1.005


def test_a_samples_floors_are_measured_and_capped_on_every_hour_of_their_scenario():
    """The sample draws the floor's scenario like the others, and its problem's floor caps and
    monthly fills equal the full problem's at any plan (the floors hold exactly)."""
    inst, scenarios, w, prices = _instance(6)
    problem, _ = problem_for(replace(inst, notes=[]), prices, [], Policy(ladder_months=3, utilization_floor=0.9))
    s = problem.targets.utilization_scenario
    sample = stratified(problem.nominal, per_block=24)
    assert np.sum(problem.nominal.hour_scenario[sample.rows] == s) < problem.nominal.horizon
    small = on_sample(problem, sample)
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = _random_plan(problem.nominal, rng)
        full_caps, small_caps = problem.floor_caps(), small.floor_caps()
        full_caps.redraw(x)
        small_caps.redraw(x)
        assert np.array_equal(small_caps(CapacitySegments.of(small.nominal)), full_caps(CapacitySegments.of(problem.nominal)))
        fill = Measures(problem.nominal, problem.weights).monthly_fill(x, s)
        np.testing.assert_array_equal(small.measures().monthly_fill(x, s), fill)
        problem.caps = small.caps = None  # caps only tighten: start each plan afresh


def test_a_utilization_floor_holds_exactly_on_the_bills_of_a_plan_optimized_on_a_sample():
    scenarios, w, prices = _estate(6)
    policy = Policy(ladder_months=3, utilization_floor=0.9)
    sampled = solve_expected_cost(scenarios, w, prices, policy=policy, sample_per_month=24)
    bills = _billed(sampled, scenarios, prices)
    low = int(np.argmin([b.on_demand_equivalent for b in bills]))
    bought = [c for c in bills[low].commitments if c.source == "purchase"]
    assert bought and all(c.utilization >= 0.9 - 1e-9 for c in bought)


def test_a_missed_limit_moves_the_samples_target_by_twice_the_miss():
    inst, scenarios, w, prices = _instance(6)
    policy = Policy(ladder_months=3, coverage_min=0.5, coverage_max=0.9, cvar_limit=1.0)
    problem, _ = problem_for(replace(inst, notes=[]), prices, [], policy)
    small = on_sample(problem, stratified(problem.nominal, per_block=24))
    x = _random_plan(problem.nominal, np.random.default_rng(2))
    c = Measures(problem.nominal, problem.weights).coverage(x)
    v = cvar_of(problem, x)
    sol = Solution(x, x, None, 0.0, None, 1)
    high = replace(problem, targets=replace(problem.targets, coverage_min=c + 0.01, coverage_max=None), cvar_limit=v - 5.0)
    moved = _moved_targets(high, replace(small, targets=high.targets, cvar_limit=high.cvar_limit), Measures(problem.nominal, problem.weights), sol)
    assert moved.targets.coverage_min == pytest.approx(c + 0.03 + 1e-5)
    assert moved.cvar_limit == pytest.approx(v - 15.0 - 1e-5 * (v - 5.0))
    low = replace(problem, targets=replace(problem.targets, coverage_min=None, coverage_max=c - 0.01), cvar_limit=None)
    moved = _moved_targets(low, replace(small, targets=low.targets, cvar_limit=None), Measures(problem.nominal, problem.weights), sol)
    assert moved.targets.coverage_max == pytest.approx(c - 0.03 - 1e-5)
    met = replace(problem, targets=replace(problem.targets, coverage_min=c - 0.01, coverage_max=c + 0.01), cvar_limit=v + 1)
    assert _moved_targets(met, replace(small, targets=met.targets, cvar_limit=met.cvar_limit), Measures(problem.nominal, problem.weights), sol) is None


def test_a_rounded_plan_keeps_inside_the_coverage_band_by_its_margin_where_it_can():
    """A sample's rounded plan keeps ``round_inside`` within the band (whole units change which hours
    are covered, so the sample's coverage of a rounded plan differs from all hours'); a band too
    narrow for the margin narrows by a quarter of its width, and a plan is still found."""
    inst, *_ = _instance(6)
    prices = _estate(6)[2]
    free, _ = problem_for(replace(inst, notes=[]), prices, [], Policy(ladder_months=3))
    c = free.measures() if free.targets.any else Measures(free.nominal, free.weights)
    top = c.coverage(solve_problem(free).x) - 0.05
    problem, _ = problem_for(replace(inst, notes=[]), prices, [], Policy(ladder_months=3, coverage_max=top))
    measures = problem.measures()
    plain, inside = solve_problem(problem), solve_problem(replace(problem, round_inside=0.01))
    assert top - 0.01 < measures.coverage(plain.x) <= top + 1e-9, "without the margin the plan rounds up to the maximum"
    assert measures.coverage(inside.x) <= top - 0.01 + 1e-9
    assert inside.objective >= plain.objective - 1e-6 * abs(plain.objective)
    narrow, _ = problem_for(replace(inst, notes=[]), prices, [], Policy(ladder_months=3, coverage_min=top - 0.004, coverage_max=top))
    q = solve_problem(replace(narrow, round_inside=0.01)).x
    assert top - 0.003 - 1e-9 <= measures.coverage(q) <= top - 0.001 + 1e-9
