"""Plan for the future: forecast scenarios from history, apply what-ifs, minimize expected cost
(optionally plus a CVaR penalty), and report the plan over every scenario.

Purchases start at the first hour after the history; figures are over the horizon.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from models import Commitment, Plan, PriceBook, UsageMatrix
from models.errors import InputError
from models.policy import Policy
from models.plan import PlanSummary, PurchaseLine, ScenarioFigures, SolveInfo, RiskFigures
from scenarios.forecast import forecast
from scenarios.whatif import apply_to_paths, load_overlays
from solver.risk import RiskSpec
from solver.planner import COST_CONVENTION
from solver.report import figures
from solver.purchase_value import purchase_values
from solver.schedule import monthly_schedule
from solver.stochastic import scenario_slice, solve_expected_cost
from models import HOURS_PER_MONTH


def outlook(history: UsageMatrix, horizon_months: int, scenarios: int, seed: int, whatif: Path | None):
    """Forecast scenarios (with the holdout WAPE measured) and apply the what-if overlays."""
    if horizon_months <= 0:
        raise ValueError("the horizon must be at least one month")
    horizon = horizon_months * HOURS_PER_MONTH
    holdout = min(28 * 24, history.hours // 4)
    fc = forecast(history, horizon, scenarios=scenarios, seed=seed, backtest_hours=holdout)
    paths, pools = fc.paths, fc.pools
    if whatif is not None:
        paths, pools = apply_to_paths(paths, pools, fc.start, load_overlays(whatif))
    usages = [UsageMatrix(fc.start, tuple(pools), paths[s].astype(np.float64)) for s in range(paths.shape[0])]
    return usages, fc.weights, fc


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(np.searchsorted(cum, q * cum[-1] - 1e-12), len(values) - 1)])


def plan_for_history(
    history: UsageMatrix,
    prices: PriceBook,
    horizon_months: int,
    existing: list[Commitment] | None = None,
    whatif: Path | None = None,
    scenarios: int = 20,
    seed: int = 0,
    risk: RiskSpec | None = None,
    backend: str = "highs",
    gap: float = 1e-5,
    policy: Policy | None = None,
    sample_per_month: int | None = None,
) -> Plan:
    t0 = time.perf_counter()
    existing = list(existing or [])
    usages, weights, fc = outlook(history, horizon_months, scenarios, seed, whatif)
    missing = sorted(set(usages[0].pools) - set(prices.on_demand))
    if missing:
        raise InputError(str(whatif) if whatif else "forecast", f"pools without an on-demand price in the price book: {', '.join(missing)}")
    res = solve_expected_cost(usages, weights, prices, existing, backend=backend, gap=gap, risk=risk, policy=policy,
                              sample_per_month=sample_per_month)
    risk = res.risk
    per, without = [], []
    for k in range(len(usages)):
        inst = scenario_slice(res.instance, k)
        per.append(figures(inst, prices, existing, res.quantities))
        without.append(figures(inst, prices, existing, np.zeros(inst.n_decisions)).total_cost)
    w = np.asarray(weights, float)
    ode = np.array([b.on_demand_equivalent for b in per])
    cost = np.array([b.total_cost for b in per])
    savings = ode - cost
    start = usages[0].start
    break_even, marginal = purchase_values(res.instance, res.quantities)
    held = [[c for c in b.commitments if c.source == "purchase"] for b in per]  # per scenario, in decision order
    lines = []
    for k, j in enumerate(np.flatnonzero(res.quantities > 0)):
        o, q = prices.offerings[res.offerings[j]], float(res.quantities[j])
        used = [h[k] for h in held]
        lines.append(PurchaseLine(
            offering=o.id, quantity=q, start=start + timedelta(hours=int(res.starts[j])), kind=o.kind.value,
            pool=o.pool if o.kind.value == "reservation" else None, term_months=o.term_months,
            payment=o.payment.value, upfront_cost=q * o.upfront, continuous_quantity=float(res.continuous[j]),
            window_cost=float(w @ [c.cost for c in used]), hourly_commitment=q * o.hourly_cost_per_unit(),
            break_even_utilization=float(break_even[j]), marginal_value=float(marginal[j]),
            why=_why(o.term_months, int(res.starts[j]), used, w),
        ))
    alpha = risk.alpha if risk else (policy.alpha if policy else 0.95)
    return Plan(
        window_start=start,
        window_hours=usages[0].hours,
        cost_convention=COST_CONVENTION,
        purchases=lines,
        summary=PlanSummary(
            on_demand_equivalent=float(w @ ode),
            expected_cost=float(w @ cost),
            expected_savings=float(w @ savings),
            effective_savings_rate=float(w @ savings) / float(w @ ode) if float(w @ ode) > 0 else 0.0,
            coverage=float(w @ [b.coverage for b in per]),
            utilization=float(w @ [b.utilization for b in per]),
            commitment_cost=float(w @ [b.commitment_cost for b in per]),
            on_demand_paid=float(w @ [b.on_demand_paid for b in per]),
            cost_without_purchases=float(w @ without),
        ),
        schedule=monthly_schedule(start, usages[0].hours, existing, lines, prices),
        scenarios=[
            ScenarioFigures(index=s, weight=float(w[s]), on_demand_equivalent=b.on_demand_equivalent, cost=b.total_cost,
                            savings=b.savings, effective_savings_rate=b.effective_savings_rate, coverage=b.coverage,
                            utilization=b.utilization)
            for s, b in enumerate(per)
        ],
        risk=RiskFigures(
            alpha=alpha, weight=risk.weight if risk else 0.0, cvar_cost=res.cvar,
            cvar_basis=f"present value at {policy.cost_of_capital:.2%} a year" if policy and policy.cost_of_capital else "as billed",
            savings_p10=_weighted_quantile(savings, w, 0.10), savings_p50=_weighted_quantile(savings, w, 0.50),
            savings_p90=_weighted_quantile(savings, w, 0.90),
            worst_idle_commitment=float(max(b.commitment_cost * (1 - b.utilization) for b in per)),
            forecast_model=fc.model, forecast_wape=fc.wape,
        ),
        solve=SolveInfo(
            backend=backend, status=res.status, scenario_hours=res.instance.hours, optimized_hours=res.optimized_hours,
            method="decomposition over stacked scenarios" + (", on a sample of hours" if res.optimized_hours < res.instance.hours else ""),
            lower_bound=res.lower_bound, continuous_cost=res.continuous_objective,
            gap=max(0.0, (res.continuous_objective - res.lower_bound) / max(abs(res.continuous_objective), 1e-12)),
            rounding_cost=res.objective - res.continuous_objective, seconds=time.perf_counter() - t0,
            iterations=res.iterations, notes=res.notes or [],
        ),
    )


def _why(term_months: int, hour: int, used: list, w: np.ndarray) -> str:
    """The purchase's utilization over the scenarios (its line in each scenario's bill), in words."""
    util = np.array([c.utilization for c in used])
    when = "now" if hour == 0 else f"{hour:,} hours into the horizon"
    return (f"bought {when} for {term_months} months; used {float(w @ util):.1%} on average over the scenarios "
            f"(lowest {util.min():.1%}, highest {util.max():.1%})")
