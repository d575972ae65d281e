"""Turn a purchase policy into the optimizer's terms: allowed decisions and linear limits."""

from __future__ import annotations

import numpy as np

from models import Commitment, PriceBook
from models.errors import PlanningError
from models.policy import Policy
from solver.constrained import Problem
from solver.decomposition import LinearLimit
from solver.risk import RiskSpec
from solver.instance import Instance, prune, select
from solver.ladder import monthly_caps
from solver.nonlinear_limits import LimitTargets
from solver.npv import discounted

THREE_YEARS = 36


def apply_policy(inst: Instance, prices: PriceBook, policy: Policy | None) -> tuple[Instance, list[LinearLimit], RiskSpec | None]:
    """Keep the allowed offerings, and return the linear limits and the risk spec of ``policy``.

    Dominance pruning is only safe when no limit can make a dominated offering useful (an upfront
    budget favours no-upfront options; a 3-year cap favours 1-year ones), so it runs only without them.
    """
    if policy is None:
        return prune(inst), [], None
    offerings = [prices.offerings[o] for o in inst.dec_offering]
    keep = np.ones(inst.n_decisions, dtype=bool)
    if policy.allowed_kinds is not None:
        keep &= [o.kind in policy.allowed_kinds for o in offerings]
    if policy.allowed_terms is not None:
        keep &= [o.term_months in policy.allowed_terms for o in offerings]
    if policy.allowed_payments is not None:
        keep &= [o.payment in policy.allowed_payments for o in offerings]
    inst = select(inst, keep, "offerings the policy does not allow were left out")
    offerings = [prices.offerings[o] for o in inst.dec_offering]
    limits = []
    if policy.upfront_budget is not None:
        limits.append(LinearLimit("upfront budget", np.array([o.upfront for o in offerings]), policy.upfront_budget))
    if policy.max_three_year_share is not None:
        share = policy.max_three_year_share
        long = np.array([o.term_months >= THREE_YEARS for o in offerings], dtype=float)
        limits.append(LinearLimit("share of 3-year terms", inst.dec_unit_cost * (long - share), 0.0))
    if not limits and not limits_beyond_linear(policy):
        inst = prune(inst)
    risk = RiskSpec(alpha=policy.alpha, weight=policy.risk_weight) if policy.risk_weight > 0 else None
    return inst, limits, risk


def limits_beyond_linear(policy: Policy) -> bool:
    return any(v is not None for v in (policy.coverage_min, policy.coverage_max, policy.utilization_floor, policy.cvar_limit,
                                       policy.max_monthly_purchase, policy.max_monthly_expiry, policy.cost_of_capital))


def utilization_scenario(inst: Instance, which: str | int) -> int:
    """Index of the named scenario: ``low`` is the one with the least on-demand-equivalent usage."""
    S = len(inst.scenario_weights)
    if which == "low":
        ode = np.bincount(inst.hour_scenario, weights=(inst.u @ inst.on_demand) * inst.row_count, minlength=S)
        return int(np.argmin(ode))
    if not 0 <= int(which) < S:
        raise PlanningError(f"utilization_scenario {which} does not exist: the plan has {S} scenario(s), indexed from 0")
    return int(which)


def problem_for(inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy | None,
                risk: RiskSpec | None = None) -> tuple[Problem, list[str]]:
    """Everything the policy asks, as an optimization problem over ``inst`` (which keeps its
    decisions: pass a copy if the caller still needs all of them)."""
    inst, limits, policy_risk = apply_policy(inst, prices, policy)
    risk = risk if risk is not None else policy_risk
    notes: list[str] = []
    if policy is None:
        return Problem(objective=inst, nominal=inst, risk=risk), notes
    if policy.max_monthly_purchase is not None or policy.max_monthly_expiry is not None:
        caps, notes = monthly_caps(inst, prices, existing, policy.max_monthly_purchase, policy.max_monthly_expiry)
        limits += caps
    targets = LimitTargets(
        coverage_min=policy.coverage_min, coverage_max=policy.coverage_max, utilization_floor=policy.utilization_floor,
        utilization_scenario=utilization_scenario(inst, policy.utilization_scenario) if policy.utilization_floor else 0,
    )
    objective = discounted(inst, prices, existing, policy.cost_of_capital) if policy.cost_of_capital else inst
    return Problem(objective=objective, nominal=inst, limits=limits, targets=targets, risk=risk,
                   cvar_limit=policy.cvar_limit, alpha=policy.alpha), notes
