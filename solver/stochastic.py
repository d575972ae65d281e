"""Expected cost over weighted usage scenarios, solved as one stacked instance.

Each hour is billed on its own, so scenarios can be stacked along the hour axis: scenario s's
hour t becomes one row, its on-demand bill weighted by the scenario's probability, while a
commitment's capacity applies to every scenario's hour t and its cost is paid once (the weights
sum to 1). The decomposition, its certificate and the rounding then apply unchanged; with one
scenario this is exactly the core planner's problem.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from models import Commitment, PriceBook, UsageMatrix
from models.policy import Policy
from solver.conflicts import solve_under_policy
from solver.constrained import cvar_of
from solver.coverage import evaluate
from solver.risk import RiskSpec, scenario_costs
from solver.instance import Instance, build_instance, decision_upper_bounds
from solver import ladder


def build_scenario_instance(
    scenarios: Sequence[UsageMatrix],
    weights: Sequence[float],
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    prune_dominated: bool = True,
    purchase_hours: tuple[int, ...] = (0,),
    renewals: tuple[tuple[str, int], ...] = (),
) -> Instance:
    w = np.asarray(weights, float)
    if not scenarios or len(w) != len(scenarios):
        raise ValueError("give one weight per scenario (and at least one scenario)")
    if np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-9):
        raise ValueError(f"scenario weights must be ≥ 0 and sum to 1, got {w.tolist()}")
    first = scenarios[0]
    for k, s in enumerate(scenarios[1:], start=2):
        if s.start != first.start or s.pools != first.pools or s.hours != first.hours:
            raise ValueError(f"scenario {k} does not cover the same hours and pools as scenario 1")
    base = build_instance(first, prices, existing, purchase_hours, prune_dominated, renewals)
    S, H = len(scenarios), first.hours
    stacked = UsageMatrix(first.start, first.pools, np.vstack([s.values for s in scenarios]))
    inst = replace(
        base,
        usage=stacked,
        existing_ri=np.tile(base.existing_ri, (S, 1)),
        existing_sp=np.tile(base.existing_sp, (S, 1)),
        hour_time=np.tile(np.arange(H), S),
        hour_weight=np.repeat(w, H),
        notes=list(base.notes),
    )
    inst.dec_upper = decision_upper_bounds(inst)
    return inst


@dataclass
class ExpectedCostResult:
    offerings: list[str]
    quantities: np.ndarray  # sellable quantities
    continuous: np.ndarray
    expected_cost: float  # of the sellable quantities (nominal)
    lower_bound: float  # certified, for the continuous problem's objective
    scenario_costs: np.ndarray  # cost of the sellable plan in each scenario (nominal)
    status: str
    objective: float = 0.0  # what was minimized (expected cost or its present value, + risk weight × CVaR), of the sellable quantities
    continuous_objective: float = 0.0  # the same for the continuous optimum (before rounding)
    iterations: int = 0
    cvar: float = 0.0  # CVaR_alpha of the sellable plan's cost (alpha of the risk spec, 0.95 by default;
    # of the present value of cost when the policy states a cost of capital)
    risk: RiskSpec | None = None  # the risk weight minimized (given or the policy's); a CVaR limit's multiplier is in the notes
    starts: np.ndarray | None = None  # purchase hour of each decision (offset from the window start)
    instance: Instance | None = None  # the (nominal) stacked instance the decisions index
    notes: list[str] | None = None
    optimized_hours: int = 0  # scenario-hours the optimizer saw (all of the instance's unless sampled)


def solve_expected_cost(
    scenarios: Sequence[UsageMatrix],
    weights: Sequence[float],
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    backend: str = "highs",
    gap: float = 1e-6,
    risk: RiskSpec | None = None,
    policy: Policy | None = None,
    sample_per_month: int | None = None,
) -> ExpectedCostResult:
    """Minimize E[cost] (+ risk.weight · CVaR_alpha[cost]) over the weighted scenarios, within the
    policy's limits (its risk settings apply when ``risk`` is not given). Purchases may start on
    the policy's ladder dates, and each existing commitment that expires in the window may be
    renewed then; limits that cannot all hold raise a PlanningError naming the smallest conflict."""
    existing = list(existing or [])
    first = scenarios[0]
    dates, renewals = ladder.decision_dates(first, existing, policy)
    inst = build_scenario_instance(scenarios, weights, prices, existing, prune_dominated=False,
                                   purchase_hours=dates, renewals=renewals)
    problem, sol, notes = solve_under_policy(inst, prices, existing, policy, risk, backend, gap, sample_per_month)
    nominal, q = problem.nominal, sol.x
    costs = scenario_costs(nominal, q, evaluate(nominal, q, duals=False))
    alpha = sol.risk.alpha if sol.risk is not None else problem.alpha
    w = np.asarray(weights, float)
    return ExpectedCostResult(
        list(nominal.dec_offering), q, sol.continuous, float(w @ costs), sol.result.lower, costs, sol.result.status,
        objective=sol.objective, cvar=cvar_of(problem, q, alpha), continuous_objective=sol.result.upper,
        iterations=sol.result.iterations, risk=sol.risk, starts=nominal.dec_start.copy(), instance=nominal,
        notes=list(nominal.notes) + notes + sol.notes, optimized_hours=sol.optimized_hours or nominal.hours,
    )


def scenario_slice(inst: Instance, s: int) -> Instance:
    """Scenario ``s`` of a stacked instance as a one-scenario instance with the same decisions."""
    H = inst.horizon
    rows = slice(s * H, (s + 1) * H)
    one = replace(
        inst, usage=UsageMatrix(inst.usage.start, inst.usage.pools, inst.u[rows]),
        existing_ri=inst.existing_ri[rows], existing_sp=inst.existing_sp[rows],
        hour_time=None, hour_weight=None, dec_cost=None, notes=list(inst.notes), _flat=None,
    )
    one.dec_end = np.minimum(one.dec_end, H)
    return one
