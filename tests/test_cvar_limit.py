"""A CVaR limit held as a row in the decomposition's master, checked against the extensive form:
the pool-hour LP of every scenario with Rockafellar–Uryasev rows, solved whole by HiGHS."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models.errors import PlanningError
from models.policy import Policy
from solver.backends import INF, LinearProgram, LPStatus, solve_lp
from solver.constrained import Problem, cvar_of, solve_rows
from solver.decomposition import solve_decomposition
from solver.policy_limits import problem_for
from solver.risk import CVAR_MARGIN, RiskSpec, cvar
from solver.naive_lp import build_naive_lp
from solver.stochastic import build_scenario_instance, solve_expected_cost
from tests.factories import scaled_scenarios


def _case(seed: int, scenarios: int = 5, pools: int = 4, hours: int = 240):
    rng, out, prices = scaled_scenarios(seed, scenarios, pools, hours, 0.5, 1.4)
    w = rng.dirichlet(np.ones(scenarios))
    inst = build_scenario_instance(out, w / w.sum(), prices, prune_dominated=False)
    return inst, out, w / w.sum(), prices


def extensive_form(inst, alpha: float, limit: float | None = None, weight: float = 0.0) -> LinearProgram:
    """min E[cost] + weight·CVaR (s.t. CVaR ≤ limit) over the pool-hour LP: columns η and z_s ≥ 0,
    rows z_s + η − (cost of scenario s) ≥ 0 and η + Σ_s w_s z_s / (1 − α) ≤ limit."""
    lp = build_naive_lp(inst)
    n, w = inst.n_decisions, inst.scenario_weights
    S, cols = len(w), lp.A.shape[1]
    need = inst.u - inst.existing_ri
    t_idx, _ = np.nonzero(need > 0)  # the on-demand columns n .. n + m, in build_naive_lp's order
    m = len(t_idx)
    scen = inst.hour_scenario[t_idx]
    rows = [np.repeat(np.arange(S), n), scen, np.arange(S), np.arange(S)]
    columns = [np.tile(np.arange(n), S), n + np.arange(m), np.full(S, cols), cols + 1 + np.arange(S)]
    values = [np.tile(-inst.dec_window_cost, S), -lp.c[n : n + m] / w[scen], np.ones(S), np.ones(S)]
    cost_rows = sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))), shape=(S, cols + 1 + S))
    tail = sp.csr_matrix(np.r_[np.zeros(cols), 1.0, w / (1 - alpha)][None, :])
    A = sp.vstack([sp.hstack([lp.A, sp.csr_matrix((lp.A.shape[0], 1 + S))]), cost_rows, tail]).tocsr()
    return LinearProgram(
        c=np.r_[lp.c, weight, weight * w / (1 - alpha)], A=A,
        row_lo=np.r_[lp.row_lo, np.full(S, inst.existing_cost), -INF],
        row_hi=np.r_[lp.row_hi, np.full(S, INF), INF if limit is None else limit],
        col_lo=np.r_[lp.col_lo, -INF, np.zeros(S)], col_hi=np.r_[lp.col_hi, np.full(1 + S, INF)], offset=inst.existing_cost,
    )


def _optimum(inst, alpha: float, limit: float | None = None, weight: float = 0.0) -> float:
    res = solve_lp(extensive_form(inst, alpha, limit, weight), "highs")
    assert res.status is LPStatus.OPTIMAL
    return res.objective


@pytest.mark.parametrize("seed", [7, 8])
def test_the_continuous_plan_under_a_cvar_limit_is_the_extensive_forms_optimum(seed: int) -> None:
    """The decomposition's plan meets the limit as billed, and its expected cost lies between the
    extensive form's optimum at the limit and at the limit aimed ``CVAR_MARGIN`` inside."""
    inst, *_ = _case(seed)
    alpha = 0.8
    free, least = _tails(inst, alpha)
    assert least < free - 1e-3 * abs(free), "the case must have risk to trade"
    for share in (0.25, 0.5, 0.9):
        limit = free - share * (free - least)
        res, _ = solve_rows(Problem(objective=inst, nominal=inst, cvar_limit=limit, alpha=alpha), None, "highs", 1e-7, None)
        assert res.cvar <= limit * (1 + 1e-12)
        at_limit = _optimum(inst, alpha, limit)
        inside = _optimum(inst, alpha, limit - CVAR_MARGIN * abs(limit))
        assert at_limit * (1 - 1e-7) <= res.upper <= inside * (1 + 2e-7), share
        assert res.lower <= inside * (1 + 1e-9)  # a bound on the problem it solves: the limit aimed inside


def _tails(inst, alpha: float) -> tuple[float, float]:
    """CVaR of the risk-neutral optimum, and the least CVaR any plan has (both from the extensive form)."""
    lp = extensive_form(inst, alpha)
    neutral = solve_lp(lp, "highs")
    S = len(inst.scenario_weights)
    # at the risk-neutral optimum η and z are free to be anything feasible: minimize CVaR with the plan's cost fixed
    fixed = LinearProgram(c=np.r_[np.zeros(len(lp.c) - 1 - S), 1.0, inst.scenario_weights / (1 - alpha)],
                          A=sp.vstack([lp.A, sp.csr_matrix(lp.c[None, :])]).tocsr(),
                          row_lo=np.r_[lp.row_lo, -INF], row_hi=np.r_[lp.row_hi, neutral.objective - lp.offset + 1e-6 * abs(neutral.objective)],
                          col_lo=lp.col_lo, col_hi=lp.col_hi)
    free = solve_lp(fixed, "highs").objective
    least = solve_lp(LinearProgram(c=fixed.c, A=lp.A, row_lo=lp.row_lo, row_hi=lp.row_hi, col_lo=lp.col_lo, col_hi=lp.col_hi),
                     "highs").objective
    return free, least


def _halfway(seed: int, alpha: float = 0.8):
    """The case, its CVaR level, and a CVaR limit halfway between the free plan's and the least."""
    inst, *_ = _case(seed)
    free, least = _tails(inst, alpha)
    return inst, alpha, free, least, free - 0.5 * (free - least)


def _continuous(inst, alpha: float, limit: float, gap: float):
    return solve_rows(Problem(objective=inst, nominal=inst, cvar_limit=limit, alpha=alpha), None, "highs", gap, None)[0]


def test_the_limits_multiplier_is_the_slope_of_the_optimal_cost() -> None:
    """The reported multiplier λ is a subgradient of the optimal expected cost V(L) as a function of
    the limit: V(L − δ) − V(L) ≥ λδ ≥ V(L) − V(L + δ) (V is convex and falls as L rises)."""
    inst, alpha, free, least, limit = _halfway(7)
    lam = _continuous(inst, alpha, limit, 1e-8).cvar_price
    assert lam is not None and lam > 0
    aim = limit - CVAR_MARGIN * abs(limit)
    delta = 1e-3 * (free - least)
    here = _optimum(inst, alpha, aim)
    tighter, looser = _optimum(inst, alpha, aim - delta), _optimum(inst, alpha, aim + delta)
    tol = 1e-7 * abs(here)
    assert tighter - here >= lam * delta - tol
    assert lam * delta >= here - looser - tol


def test_the_plan_under_a_cvar_limit_minimizes_expected_cost_plus_its_multiplier_times_cvar() -> None:
    """Lagrangian duality: the same optimum as the extensive form with weight λ on CVaR and no limit."""
    inst, alpha, _, _, limit = _halfway(8)
    res = _continuous(inst, alpha, limit, 1e-8)
    lam = res.cvar_price
    weighted = _optimum(inst, alpha, weight=lam)
    assert res.upper + lam * res.cvar == pytest.approx(weighted, rel=1e-6)


@pytest.mark.parametrize("backend", ["ortools"])
def test_a_cvar_limit_holds_on_another_backend(backend: str) -> None:
    """Masters rebuilt by another LP solver (no multipliers read: the penalty keeps its start) reach
    the same optimum."""
    inst, alpha, _, _, limit = _halfway(7)
    risk = RiskSpec(alpha=alpha)
    ref = solve_decomposition(inst, gap=1e-7, risk=risk, cvar_limit=limit)
    other = solve_decomposition(inst, backend=backend, gap=1e-7, risk=risk, cvar_limit=limit)
    assert other.status == "optimal" and other.cvar <= limit
    assert other.upper == pytest.approx(ref.upper, rel=2e-7)


def test_a_cvar_limit_no_plan_meets_is_explained_with_the_least_cvar() -> None:
    """Below the least CVaR the bounding master, which relaxes the problem, has no solution: the
    solve stops, and the explanation names the least CVaR any plan reaches."""
    inst, scenarios, w, prices = _case(7)
    alpha = 0.8
    _, least = _tails(inst, alpha)
    with pytest.raises(PlanningError, match="least CVaR any plan reaches"):
        solve_expected_cost(scenarios, w, prices, policy=Policy(cvar_limit=0.99 * least, alpha=alpha))


def _every_limit_case(seed: int):
    """A 5-pool estate with a utilization floor, a coverage maximum and an upfront budget that bind,
    and the CVaR of the cheapest plan under them (``high``) and of a CVaR-averse one (``low``)."""
    rng, scenarios, prices = scaled_scenarios(seed, 5, 5, 336, 0.6, 1.4)
    w = rng.dirichlet(np.ones(5))
    w = w / w.sum()
    base = Policy(alpha=0.8, utilization_floor=0.7)
    under = solve_expected_cost(scenarios, w, prices, policy=base)
    upfront = sum(q * prices.offerings[o].upfront for o, q in zip(under.offerings, under.quantities))
    coverage = float(w @ [b.coverage for b in _bills(scenarios, prices, under.offerings, under.quantities, under.starts)])
    limits = base.model_copy(update={"coverage_max": coverage - 0.02, "upfront_budget": 0.8 * upfront + 1.0})

    def problem(cvar_limit=None):  # afresh each time: the floor caps are re-drawn in place
        p, _ = problem_for(build_scenario_instance(scenarios, w, prices, prune_dominated=False), prices, [],
                           limits.model_copy(update={"cvar_limit": cvar_limit}))
        return p
    free, _ = solve_rows(problem(), None, "highs", 1e-6, None)
    averse, _ = solve_rows(problem(), RiskSpec(alpha=0.8, weight=50.0), "highs", 1e-6, None)
    high, low = cvar_of(problem(), free.x), cvar_of(problem(), averse.x)
    assert low < high - 1e-4 * high, "the case must have risk to trade"
    return scenarios, w, prices, limits, problem, free, high, low


def _bills(scenarios, prices, offerings, quantities, starts):
    from datetime import timedelta

    from models import Purchase
    from solver.simulator import simulate_bill
    from tests.factories import START

    bought = [Purchase(offering=o, quantity=float(q), start=START + timedelta(hours=int(h)))
              for o, q, h in zip(offerings, quantities, starts) if q > 0]
    return [simulate_bill(u, prices, [], bought) for u in scenarios]


def _assert_every_limit_holds(scenarios, w, prices, policy, offerings, quantities, starts) -> None:
    billed = _bills(scenarios, prices, offerings, quantities, starts)
    low = int(np.argmin([b.on_demand_equivalent for b in billed]))
    assert all(c.utilization >= policy.utilization_floor - 1e-6 for c in billed[low].commitments
               if c.source == "purchase" and c.quantity > 1e-9)
    assert float(w @ [b.coverage for b in billed]) <= policy.coverage_max + 1e-6
    assert sum(q * prices.offerings[o].upfront for o, q in zip(offerings, quantities)) <= policy.upfront_budget * (1 + 1e-9)
    assert cvar(np.array([b.total_cost for b in billed]), w, policy.alpha) <= policy.cvar_limit * (1 + 1e-9)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_binding_cvar_limit_with_a_floor_a_coverage_maximum_and_a_budget_holds_on_the_bills(seed: int) -> None:
    """The CVaR limit joins the master after rounds that re-draw floor caps and coverage rows: every
    limit is re-checked on the simulator's bills of the continuous plan, which costs more than the
    plan without the CVaR limit (it binds). (The continuous plan: on estates this small whole
    reservation units can move CVaR by more than a limit this tight leaves; the tests below.)"""
    scenarios, w, prices, limits, problem, free, high, low = _every_limit_case(seed)
    limit = 0.5 * (high + low)  # binds: the plan without it has CVaR `high`
    res, _ = solve_rows(problem(limit), None, "highs", 1e-6, None)
    inst = problem().nominal
    _assert_every_limit_holds(scenarios, w, prices, limits.model_copy(update={"cvar_limit": limit}),
                              inst.dec_offering, res.x, inst.dec_start)
    assert res.upper >= free.upper - 1e-6 * abs(free.upper)


def test_whole_units_meet_a_tight_cvar_limit_when_the_continuous_plan_is_held_inside_it() -> None:
    """Here no sellable plan near the continuous optimum meets the CVaR limit: whole reservation
    units move CVaR by more than the optimum leaves. The continuous plan is solved again aimed
    inside the limit by twice the rounding's miss, and its rounding meets every limit on the bills."""
    scenarios, w, prices, limits, problem, free, high, low = _every_limit_case(6)
    policy = limits.model_copy(update={"cvar_limit": 0.5 * (high + low)})
    plan = solve_expected_cost(scenarios, w, prices, policy=policy)
    assert any("inside the CVaR limit, so that whole reservation units meet it" in n for n in plan.notes)
    _assert_every_limit_holds(scenarios, w, prices, policy, plan.offerings, plan.quantities, plan.starts)
    on_the_limit, _ = solve_rows(problem(policy.cvar_limit), None, "highs", 1e-6, None)
    assert plan.lower_bound <= on_the_limit.upper * (1 + 1e-6)  # a bound of the problem as asked, not as aimed


def test_a_cvar_limit_whole_units_cannot_meet_is_explained_by_how_far_and_loosening_by_that_gives_a_plan() -> None:
    """Here the CVaR limit sits 2 $ above the least CVaR of the continuous plans, while a whole
    reservation unit moves CVaR by more: no sellable plan near the continuous one meets it. The
    explanation names how far the sellable plans tried miss it, and a limit loosened by that much
    gives a plan that meets every limit on the bills."""
    import re

    scenarios, w, prices, limits, problem, free, high, low = _every_limit_case(4)
    limit = 0.5 * (high + low)
    with pytest.raises(PlanningError, match="exceed the CVaR limit by") as failed:
        solve_expected_cost(scenarios, w, prices, policy=limits.model_copy(update={"cvar_limit": limit}))
    by = float(re.search(r"exceed the CVaR limit by ([\d,.]+) \$", str(failed.value)).group(1).replace(",", ""))
    assert by > high - low  # further than the whole range of CVaR the continuous plans trade
    policy = limits.model_copy(update={"cvar_limit": limit + by})
    plan = solve_expected_cost(scenarios, w, prices, policy=policy)
    _assert_every_limit_holds(scenarios, w, prices, policy, plan.offerings, plan.quantities, plan.starts)
