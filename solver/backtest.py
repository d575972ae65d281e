"""Backtest: plan on the history, bill the months that followed, compare with baselines (DESIGN.md §7).

The usage is split at the end of history (``history_days`` after its first hour). Every strategy
decides there, with what it may know, and buys commitments that start at the first billed hour:

- ``planner``: :func:`solver.future_plan.plan_for_history` on the history, over a horizon of the
  billed months (forecast scenarios, expected cost, the policy's limits and risk weight);
- ``cost_explorer``, ``ladder``: the practitioners' baselines of :mod:`solver.baselines`;
- ``hindsight``: :func:`solver.planner.plan_for_usage` on the realized billed usage — the best
  plan bought at the first billed hour with perfect knowledge (within the policy), the upper bound.

Each strategy's purchases are then billed by :func:`solver.simulator.simulate_bill` on the realized
billed window, with the same existing commitments and the same cost convention (amortized, pro rata
inside the window: a 3-year term billed for 12 months pays 12/36 of its cost, see
``solver.planner.COST_CONVENTION``). The billed window is whole 730-hour months: ``billed_months``
of them, or as many as the usage holds after the history (the result says so).

The share of hindsight captured compares savings *from the purchases*: the bill with them against
the bill with the existing commitments alone (with none held, that is simply savings vs on-demand).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel

from models import HOURS_PER_MONTH, Bill, Commitment, PriceBook, Purchase, UsageMatrix
from models.policy import Policy
from solver.baselines import LOOKBACK_DAYS, cautious_ladder, cost_explorer_style
from solver.future_plan import plan_for_history
from solver.planner import COST_CONVENTION, plan_for_usage
from solver.simulator import simulate_bill

STRATEGIES = ("planner", "cost_explorer", "ladder", "hindsight")
LABELS = {
    "planner": "commitplan planner",
    "cost_explorer": "Cost-Explorer style",
    "ladder": "cautious ladder",
    "hindsight": "hindsight optimum",
}
MIN_HISTORY_DAYS = LOOKBACK_DAYS
# policy limits a practitioner's baseline does not know about (the planner and hindsight obey them)
BASELINES_IGNORE = ("coverage_min", "coverage_max", "utilization_floor", "max_monthly_purchase",
                    "max_monthly_expiry", "cvar_limit")


class BacktestWindowError(ValueError):
    """The usage is too short for the history and billed window asked for."""


class StrategyResult(BaseModel):
    name: str
    label: str
    description: str
    purchases: list[Purchase]
    commitment_cost: float  # amortized, of every commitment held in the billed window
    on_demand_paid: float
    total_cost: float
    savings: float  # vs on-demand
    effective_savings_rate: float
    coverage: float
    utilization: float
    savings_from_purchases: float  # vs holding the existing commitments only
    share_of_hindsight: float | None  # savings_from_purchases / the hindsight's (None when that is ≤ 0)
    seconds: float


class BacktestResult(BaseModel):
    history_start: datetime
    history_hours: int
    billed_start: datetime
    billed_hours: int
    billed_months: int
    months_requested: int
    notes: list[str]
    pools: int
    on_demand_equivalent: float  # of the billed window
    cost_existing_only: float  # billed window under the existing commitments alone
    hindsight_lower_bound: float  # certified: no plan bought at the first billed hour costs less
    cost_convention: str
    strategies: list[StrategyResult]

    def strategy(self, name: str) -> StrategyResult:
        return next(s for s in self.strategies if s.name == name)


def split_usage(usage: UsageMatrix, history_days: int, billed_months: int) -> tuple[UsageMatrix, UsageMatrix, list[str]]:
    """History = the first ``history_days`` days; billed = the whole 730-hour months after it."""
    if history_days < MIN_HISTORY_DAYS:
        raise BacktestWindowError(
            f"the history must span at least {MIN_HISTORY_DAYS} days (the baselines' lookback), got {history_days}")
    if billed_months < 1:
        raise BacktestWindowError(f"bill at least one month, got {billed_months}")
    k = history_days * 24
    left = usage.hours - k
    if left < HOURS_PER_MONTH:
        have = usage.hours / 24
        raise BacktestWindowError(
            f"the usage spans {have:g} days: {history_days} days of history leave less than one month "
            f"({HOURS_PER_MONTH} hours) to bill; give more usage or fewer --history-days"
        )
    months = min(billed_months, left // HOURS_PER_MONTH)
    notes = []
    if months < billed_months:
        billed_text = "1 month is billed" if months == 1 else f"{months} months are billed"
        notes.append(f"the usage holds {months} whole month{'s' * (months != 1)} after the history, not the "
                     f"{billed_months} asked for: {billed_text}")
    history = UsageMatrix(usage.start, usage.pools, usage.values[:k])
    billed = UsageMatrix(usage.start + timedelta(hours=k), usage.pools, usage.values[k : k + months * HOURS_PER_MONTH])
    return history, billed, notes


def _purchases(plan) -> list[Purchase]:
    return [Purchase(offering=p.offering, quantity=p.quantity, start=p.start) for p in plan.purchases if p.quantity > 0]


def _describe(purchases: list[Purchase]) -> str:
    if not purchases:
        return "buys nothing"
    shown = ", ".join(f"{p.quantity:g} × {p.offering}" for p in purchases[:3])
    more = f" and {len(purchases) - 3} more" if len(purchases) > 3 else ""
    return f"{len(purchases)} purchases: {shown}{more}"


def run_backtest(
    usage: UsageMatrix,
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    policy: Policy | None = None,
    history_days: int = 180,
    billed_months: int = 12,
    scenarios: int = 20,
    seed: int = 0,
    backend: str = "highs",
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Run every strategy at the end of history and bill it on the realized months that followed."""
    existing = list(existing or [])
    history, billed, notes = split_usage(usage, history_days, billed_months)
    months = billed.hours // HOURS_PER_MONTH
    start = billed.start
    say = progress or (lambda _: None)
    chosen: dict[str, tuple[list[Purchase], str, float]] = {}

    say(f"planner: forecasting {scenarios} scenarios of {months} months and optimizing")
    t0 = time.perf_counter()
    plan = plan_for_history(history=history, prices=prices, horizon_months=months, existing=existing,
                            scenarios=scenarios, seed=seed, backend=backend, policy=policy)
    bought = _purchases(plan)
    forecast = f"; forecast {plan.risk.forecast_model}" if plan.risk else ""
    chosen["planner"] = (bought, _describe(bought) + f" (expected savings ${plan.summary.expected_savings:,.2f}{forecast})",
                         time.perf_counter() - t0)

    for name, rule in (("cost_explorer", cost_explorer_style), ("ladder", cautious_ladder)):
        say(f"{LABELS[name]} baseline")
        t0 = time.perf_counter()
        choice = rule(history=history, prices=prices, start=start, existing=existing, policy=policy)
        chosen[name] = (choice.purchases, choice.description, time.perf_counter() - t0)

    say("hindsight optimum on the realized usage")
    t0 = time.perf_counter()
    best = plan_for_usage(usage=billed, prices=prices, existing=existing, backend=backend, gap=1e-6, policy=policy)
    bought = _purchases(best)
    chosen["hindsight"] = (bought, _describe(bought) + " (knows the billed usage)", time.perf_counter() - t0)

    alone = simulate_bill(billed, prices, existing, [])
    bills: dict[str, Bill] = {name: simulate_bill(billed, prices, existing, chosen[name][0]) for name in STRATEGIES}
    ceiling = alone.total_cost - bills["hindsight"].total_cost
    if best.solve is not None and not best.solve.exact_billing_model:
        notes.append("the price book's billing greedy is not always the cheapest allocation: the hindsight "
                     "optimum is the LP model's, not certified against the bill")
    ignored = [name for name in BASELINES_IGNORE if getattr(policy, name, None) is not None]
    if ignored:
        notes.append("the baselines follow the policy's products, upfront budget and 3-year share but not "
                     f"{', '.join(ignored)}; hindsight obeys every limit, so a baseline may save more than it")
    if ceiling <= 0:
        notes.append("with hindsight, no purchase saves money over the billed window: shares are not defined")
    strategies = []
    for name in STRATEGIES:
        purchases, description, seconds = chosen[name]
        bill = bills[name]
        own = alone.total_cost - bill.total_cost
        strategies.append(StrategyResult(
            name=name, label=LABELS[name], description=description, purchases=purchases,
            commitment_cost=bill.commitment_cost, on_demand_paid=bill.on_demand_paid, total_cost=bill.total_cost,
            savings=bill.savings, effective_savings_rate=bill.effective_savings_rate, coverage=bill.coverage,
            utilization=bill.utilization, savings_from_purchases=own,
            share_of_hindsight=own / ceiling if ceiling > 0 else None, seconds=seconds,
        ))
    return BacktestResult(
        history_start=history.start, history_hours=history.hours, billed_start=start, billed_hours=billed.hours,
        billed_months=months, months_requested=billed_months, notes=notes, pools=len(usage.pools),
        on_demand_equivalent=alone.on_demand_equivalent, cost_existing_only=alone.total_cost,
        hindsight_lower_bound=best.solve.lower_bound if best.solve is not None else bills["hindsight"].total_cost,
        cost_convention=COST_CONVENTION, strategies=strategies,
    )
