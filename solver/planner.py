"""Plan purchases for exactly the given usage: build, solve, round, explain (the core job)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Callable

import numpy as np

from models import Commitment, CommitmentUsage, OfferingKind, PriceBook, UsageMatrix
from models.errors import PlanningError
from models.plan import Plan, PlanSummary, PurchaseLine, SolveInfo
from solver.consistency import greedy_is_optimal
from solver.coverage import evaluate, total_cost
from models.policy import Policy
from solver.decomposition import LinearLimit, solve_decomposition
from solver import ladder
from solver.conflicts import solve_under_policy
from solver.policy_limits import apply_policy, limits_beyond_linear
from solver.instance import Instance, build_instance
from solver.naive_lp import solve_naive
from solver.backends import LPStatus
from solver.report import figures
from solver.rounding import round_quantities
from solver.purchase_value import purchase_values
from solver.schedule import monthly_schedule

COST_CONVENTION = (
    "amortized: every commitment costs, for each hour it is active inside the planning window, "
    "its hourly rate plus its upfront payment divided by the hours of its term (a savings plan: its "
    "$/h commitment); a window shorter than a term pays that window's share of the term (pro rata), "
    "and the rest of the term is neither counted nor credited"
)
METHODS = ("decomposition", "naive")


def solve_continuous(
    inst: Instance,
    backend: str = "highs",
    method: str = "decomposition",
    gap: float = 1e-6,
    progress: Callable[[int, float, float], None] | None = None,
    time_limit: float = 600.0,
    limits: list[LinearLimit] | None = None,
) -> tuple[np.ndarray, float, float, int, str]:
    """Return (x, upper bound = billed cost of x, certified lower bound, iterations, status)."""
    if method == "naive":
        if limits:
            raise PlanningError("policy limits need the decomposition method")
        res = solve_naive(inst, backend)
        if res.status is not LPStatus.OPTIMAL:
            raise PlanningError(f"the pool-hour LP ended {res.status.value} on backend {backend}")
        x = np.clip(res.x[: inst.n_decisions], 0, None)
        return x, total_cost(inst, x), res.objective, 1, "optimal"
    if method != "decomposition":
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    d = solve_decomposition(inst, backend=backend, gap=gap, progress=progress, time_limit=time_limit, limits=limits)
    return d.x, d.upper, d.lower, d.iterations, d.status


def plan_for_usage(
    usage: UsageMatrix,
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    backend: str = "highs",
    method: str = "decomposition",
    gap: float = 1e-6,
    progress: Callable[[int, float, float], None] | None = None,
    time_limit: float = 600.0,
    policy: Policy | None = None,
) -> Plan:
    t0 = time.perf_counter()
    existing = list(existing or [])
    dates, renewals = ladder.decision_dates(usage, existing, policy)
    full = build_instance(usage, prices, existing, dates, prune_dominated=False, renewals=renewals)
    extra: list[str] = []
    if policy is not None and needs_constrained_solve(policy):
        if method != "decomposition":
            raise PlanningError("coverage, utilization, CVaR, monthly and NPV limits need the decomposition method")
        x_cont, x, inst, upper, lower, iterations, status, extra, rounding = _solve_constrained(
            full, prices, existing, policy, backend, gap)
        exact, problems = greedy_is_optimal(inst)
    else:
        inst, limits, _ = apply_policy(full, prices, policy)
        exact, problems = greedy_is_optimal(inst)
        x_cont, upper, lower, iterations, status = solve_continuous(inst, backend, method, gap, progress, time_limit, limits)
        x, rounded = round_quantities(inst, x_cont, feasible=lambda q: all(lim.holds(q) for lim in limits))
        rounding = rounded - upper
    cov = evaluate(inst, x, duals=True)
    fig = figures(inst, prices, existing, x, cov)
    base = figures(inst, prices, existing, np.zeros(inst.n_decisions))
    bought = np.flatnonzero(x > 0)
    steps = _one_increment_effects(inst, x, fig.total_cost, bought) if len(bought) <= 60 else {}
    held = [c for c in fig.commitments if c.source == "purchase"]  # one per bought decision, in order
    break_even, marginal = purchase_values(inst, x, cov)
    lines = [
        _line(inst, prices, j, x[j], x_cont[j], steps.get(j), usage).model_copy(update={
            "hourly_commitment": float(x[j] * inst.dec_unit_cost[j]),
            "break_even_utilization": float(break_even[j]), "marginal_value": float(marginal[j]),
        })
        for j, usage in zip(bought, held)
    ]
    notes = list(inst.notes) + problems + extra
    return Plan(
        window_start=usage.start,
        window_hours=usage.hours,
        cost_convention=COST_CONVENTION,
        purchases=lines,
        summary=PlanSummary(
            on_demand_equivalent=fig.on_demand_equivalent,
            expected_cost=fig.total_cost,
            expected_savings=fig.savings,
            effective_savings_rate=fig.effective_savings_rate,
            coverage=fig.coverage,
            utilization=fig.utilization,
            commitment_cost=fig.commitment_cost,
            on_demand_paid=fig.on_demand_paid,
            cost_without_purchases=base.total_cost,
        ),
        commitments=fig.commitments,
        schedule=monthly_schedule(usage.start, usage.hours, existing, lines, prices),
        solve=SolveInfo(
            backend=backend, method=method, status=status, lower_bound=lower, continuous_cost=upper,
            gap=(upper - lower) / max(abs(upper), 1e-12), rounding_cost=rounding,
            seconds=time.perf_counter() - t0, iterations=iterations, exact_billing_model=exact, notes=notes,
        ),
    )


def needs_constrained_solve(policy: Policy) -> bool:
    """Whether the policy asks more than the linear limits the plain solve handles."""
    return policy.ladder_months > 1 or limits_beyond_linear(policy)


def _solve_constrained(inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy, backend: str, gap: float):
    problem, sol, notes = solve_under_policy(inst, prices, existing, policy, backend=backend, gap=gap)
    r = sol.result
    return (sol.continuous, sol.x, problem.nominal, r.upper, r.lower, r.iterations, r.status, notes + sol.notes,
            sol.objective - r.upper)


def _one_increment_effects(inst: Instance, x: np.ndarray, cost: float, which: np.ndarray) -> dict[int, tuple[float, float]]:
    """Exact change of the window's bill for one increment more and one increment less of each purchase."""
    out = {}
    for j in which:
        more, less = x.copy(), x.copy()
        more[j] += inst.dec_increment[j]
        less[j] = max(0.0, less[j] - inst.dec_increment[j])
        out[int(j)] = (total_cost(inst, more) - cost, total_cost(inst, less) - cost)
    return out


def _line(inst: Instance, prices: PriceBook, j: int, q: float, q_cont: float, steps, usage: CommitmentUsage) -> PurchaseLine:
    o = prices.offerings[inst.dec_offering[j]]
    start = inst.usage.start + timedelta(hours=int(inst.dec_start[j]))
    if o.kind is OfferingKind.RESERVATION:
        od = prices.on_demand[o.pool]
        break_even = o.hourly_cost_per_unit() / od
        why = (
            f"reserves {q:g} units of {o.pool}; each unit pays off when used more than {break_even:.1%} of hours "
            f"(amortized {o.hourly_cost_per_unit():.6f} $/h against {od:.6f} $/h on demand); "
            f"this purchase is used {usage.utilization:.1%} of its hours in the window"
        )
        pool, upfront = o.pool, q * o.upfront
    else:
        rates = np.array([r / prices.on_demand[p] for p, r in o.rates.items()])
        why = (
            f"commits {q:g} $/h; it covers usage at {1 - rates.max():.1%}–{1 - rates.min():.1%} below on-demand "
            f"and pays off when more than {rates.min():.1%}–{rates.max():.1%} of the commitment is used; "
            f"it is used {usage.utilization:.1%} in the window"
        )
        pool, upfront = None, q * o.upfront
    if steps is not None:
        unit = "$/h" if o.kind is OfferingKind.SAVINGS_PLAN else "units"
        why += (f"; buying {inst.dec_increment[j]:g} {unit} more would change the window's bill by {steps[0]:+.2f} $, "
                f"{inst.dec_increment[j]:g} {unit} less by {steps[1]:+.2f} $")
    return PurchaseLine(
        offering=o.id, quantity=q, start=start, kind=o.kind.value, pool=pool, term_months=o.term_months,
        payment=o.payment.value, upfront_cost=upfront, window_cost=usage.cost, continuous_quantity=q_cont, why=why,
    )
