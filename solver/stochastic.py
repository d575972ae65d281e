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
from solver.coverage import evaluate
from solver.decomposition import RiskSpec, cvar, risk_objective, scenario_costs, solve_decomposition
from models.policy import Policy
from solver.instance import Instance, build_instance, decision_upper_bounds
from solver.policy_limits import apply_policy
from solver.rounding import round_quantities


def build_scenario_instance(
    scenarios: Sequence[UsageMatrix],
    weights: Sequence[float],
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    prune_dominated: bool = True,
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
    base = build_instance(first, prices, existing, prune_dominated=prune_dominated)
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
    expected_cost: float  # of the sellable quantities
    lower_bound: float  # certified, for the continuous problem's objective
    scenario_costs: np.ndarray  # cost of the sellable plan in each scenario
    status: str
    objective: float = 0.0  # expected cost + risk weight × CVaR, of the sellable quantities
    continuous_objective: float = 0.0  # the same for the continuous optimum (before rounding)
    iterations: int = 0
    cvar: float = 0.0  # CVaR_alpha of the sellable plan's cost (alpha of the risk spec, 0.95 by default)
    risk: RiskSpec | None = None  # the risk setting used (given, or the policy's)


def solve_expected_cost(
    scenarios: Sequence[UsageMatrix],
    weights: Sequence[float],
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    backend: str = "highs",
    gap: float = 1e-6,
    risk: RiskSpec | None = None,
    policy: Policy | None = None,
) -> ExpectedCostResult:
    """Minimize E[cost] (+ risk.weight · CVaR_alpha[cost]) over the weighted scenarios, within the
    policy's limits (its risk settings apply when ``risk`` is not given)."""
    inst = build_scenario_instance(scenarios, weights, prices, existing, prune_dominated=False)
    inst, limits, policy_risk = apply_policy(inst, prices, policy)
    risk = risk if risk is not None else policy_risk
    res = solve_decomposition(inst, backend=backend, gap=gap, risk=risk, limits=limits)
    q, objective = round_quantities(
        inst, res.x, objective=lambda y: risk_objective(inst, y, risk=risk),
        feasible=lambda y: all(lim.holds(y) for lim in limits),
    )
    costs = scenario_costs(inst, q, evaluate(inst, q, duals=False))
    alpha = risk.alpha if risk is not None else 0.95
    return ExpectedCostResult(
        list(inst.dec_offering), q, res.x, float(np.dot(weights, costs)), res.lower, costs, res.status,
        objective=objective, cvar=cvar(costs, np.asarray(weights, float), alpha),
        continuous_objective=res.upper, iterations=res.iterations, risk=risk,
    )
