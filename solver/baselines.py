"""What a FinOps practitioner would buy without commitplan: the baselines of the backtest (DESIGN.md §7).

Both baselines decide at the end of history, look back over its last ``LOOKBACK_DAYS`` days, buy
ONE savings-plan offering, and size it with the hour-by-hour bill simulator (no optimizer code), on
top of the commitments already held, as they were active during the lookback:

- **Cost-Explorer style** (:func:`cost_explorer_style`). AWS Cost Explorer's Savings Plans
  recommendation assumes the lookback repeats and recommends, for one savings-plan type, term and
  payment option, the hourly commitment that maximizes savings over the lookback. We compute that
  recommendation for every savings-plan offering the policy allows — each Compute SP and each EC2
  Instance SP (one family in one region), each term and payment — and buy the one whose
  recommendation saves the most over the lookback: the most generous reading of the
  recommendations page, a user who reads all of them and picks the best one. One product only: no
  reservations, no mix of plans.
- **Cautious ladder** (:func:`cautious_ladder`). The conservative rule: commit only to the floor,
  the largest hourly commitment that was fully used in *every* hour of the lookback (the minimum
  hourly eligible on-demand spend, at savings-plan rates), in the most flexible product — the
  savings plan with the most eligible pools, then the shortest term, then the least upfront.
  Practitioners re-run this every month and top up to the new floor (a ladder of monthly
  purchases with staggered expirations); a backtest that decides once buys the first rung, which
  is the whole floor less what existing commitments already cover.

Of a policy, both follow the allowed kinds, terms and payments, the upfront budget and the 3-year
share (one product is all of the purchase, so a 3-year one needs a share cap of 1); coverage bands,
utilization floors, monthly caps and CVaR limits are not a practitioner's rule and are ignored (the
backtest says so). Sizes are multiples of the offering's increment. Savings over the lookback are concave in the
commitment (the hourly bill is convex in it when the providers' greedy is the cheapest allocation,
README "How the solver works"), so both searches bisect on whole increments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from models import (
    Commitment,
    Offering,
    OfferingKind,
    Payment,
    PriceBook,
    Purchase,
    UsageMatrix,
)
from models.policy import Policy
from solver.simulator import simulate_bill

LOOKBACK_DAYS = 30
THREE_YEARS = 36
FULLY_USED = 1.0 - 1e-9  # utilization at which a commitment counts as used in every hour


@dataclass
class BaselineChoice:
    """A baseline's purchases (starting at the decision date) and how it chose them."""

    purchases: list[Purchase]
    description: str
    lookback_savings: float = 0.0  # savings of the purchase over the lookback, on top of existing commitments
    candidates: dict[str, float] = field(default_factory=dict)  # offering -> its best lookback savings (CE)


def lookback_window(history: UsageMatrix, days: int = LOOKBACK_DAYS) -> UsageMatrix:
    """The last ``days`` days of ``history`` (all of it when shorter)."""
    hours = min(history.hours, days * 24)
    start = history.start + timedelta(hours=history.hours - hours)
    return UsageMatrix(start, history.pools, history.values[history.hours - hours :])


def allowed_savings_plans(prices: PriceBook, policy: Policy | None, pools: tuple[str, ...]) -> list[Offering]:
    """Savings-plan offerings the policy allows that cover at least one pool of the usage."""
    present = set(pools)
    plans = [o for o in prices.savings_plans() if present & set(o.rates)]
    if policy is None:
        return sorted(plans, key=lambda o: o.id)
    if policy.allowed_kinds is not None and OfferingKind.SAVINGS_PLAN not in policy.allowed_kinds:
        return []
    plans = [
        o for o in plans
        if (policy.allowed_terms is None or o.term_months in policy.allowed_terms)
        and (policy.allowed_payments is None or o.payment in policy.allowed_payments)
        # a single product is 100% of the new purchases: a 3-year one breaks any share cap below 1
        and not (o.term_months >= THREE_YEARS and policy.max_three_year_share is not None
                 and policy.max_three_year_share < 1.0)
    ]
    return sorted(plans, key=lambda o: o.id)


def _max_steps(offering: Offering, lookback: UsageMatrix, policy: Policy | None) -> int:
    """Increments beyond which more commitment cannot help: the busiest hour's eligible usage at the
    plan's rates (and the policy's upfront budget)."""
    rates = np.array([offering.rates.get(p, 0.0) for p in lookback.pools])
    peak = float((lookback.values @ rates).max()) if lookback.hours else 0.0
    steps = int(peak / offering.increment) + 1
    if policy is not None and policy.upfront_budget is not None and offering.upfront > 0:
        steps = min(steps, int(policy.upfront_budget / (offering.upfront * offering.increment) + 1e-9))
    return max(steps, 0)


class _Lookback:
    """Bills one offering's purchase of ``n`` increments over the lookback, on top of what is held."""

    def __init__(self, lookback: UsageMatrix, prices: PriceBook, existing: list[Commitment], offering: Offering):
        self.lookback, self.prices, self.existing, self.offering = lookback, prices, existing, offering
        self.base = simulate_bill(lookback, prices, existing, []).total_cost
        self._cache: dict[int, tuple[float, float]] = {}

    def quantity(self, n: int) -> float:
        return round(n * self.offering.increment, 9)

    def _bill(self, n: int) -> tuple[float, float]:
        if n not in self._cache:
            q = self.quantity(n)
            bill = simulate_bill(self.lookback, self.prices, self.existing,
                                 [Purchase(offering=self.offering.id, quantity=q, start=self.lookback.start)])
            bought = [c for c in bill.commitments if c.source == "purchase"]
            self._cache[n] = (self.base - bill.total_cost, bought[0].utilization if bought else 1.0)
        return self._cache[n]

    def savings(self, n: int) -> float:
        return self._bill(n)[0]

    def fully_used(self, n: int) -> bool:
        return n == 0 or self._bill(n)[1] >= FULLY_USED


def _best_steps(look: _Lookback, upper: int) -> int:
    """The number of increments maximizing lookback savings (concave: bisect on the first step down)."""
    lo, hi = 0, upper  # the optimum lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        if look.savings(mid + 1) > look.savings(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


def _floor_steps(look: _Lookback, upper: int) -> int:
    """The largest number of increments fully used in every hour of the lookback."""
    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if look.fully_used(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def cost_explorer_style(
    history: UsageMatrix, prices: PriceBook, start: datetime, existing: list[Commitment] | None = None,
    policy: Policy | None = None, lookback_days: int = LOOKBACK_DAYS,
) -> BaselineChoice:
    """The single savings-plan offering and commitment that would have saved most over the lookback."""
    lookback = lookback_window(history, lookback_days)
    existing = list(existing or [])
    candidates: dict[str, tuple[float, float]] = {}
    for offering in allowed_savings_plans(prices, policy, history.pools):
        look = _Lookback(lookback, prices, existing, offering)
        n = _best_steps(look, _max_steps(offering, lookback, policy))
        candidates[offering.id] = (look.savings(n), look.quantity(n))
    best = max(candidates, key=lambda o: (candidates[o][0], o), default=None)
    days = lookback.hours / 24
    if best is None or candidates[best][1] <= 0:
        why = "no allowed savings plan" if best is None else "no savings-plan commitment"
        return BaselineChoice([], f"{why} would have saved money over the last {days:g} days; buys nothing",
                              candidates={o: s for o, (s, _) in candidates.items()})
    saved, q = candidates[best]
    return BaselineChoice(
        [Purchase(offering=best, quantity=q, start=start)],
        f"{q:g} $/h of {best}: of {len(candidates)} savings-plan offerings, the one whose savings-maximizing "
        f"commitment saved most (${saved:,.2f}) over the last {days:g} days, assumed to repeat",
        lookback_savings=saved, candidates={o: s for o, (s, _) in candidates.items()},
    )


_PAYMENT_RANK = {Payment.NO_UPFRONT: 0, Payment.PARTIAL_UPFRONT: 1, Payment.ALL_UPFRONT: 2}


def ladder_product(prices: PriceBook, policy: Policy | None, pools: tuple[str, ...]) -> Offering | None:
    """The most flexible allowed savings plan: most eligible pools, then shortest term, then least upfront."""
    plans = allowed_savings_plans(prices, policy, pools)
    return min(plans, key=lambda o: (-len(o.rates), o.term_months, _PAYMENT_RANK[o.payment], o.id), default=None)


def cautious_ladder(
    history: UsageMatrix, prices: PriceBook, start: datetime, existing: list[Commitment] | None = None,
    policy: Policy | None = None, lookback_days: int = LOOKBACK_DAYS,
) -> BaselineChoice:
    """Commit to the floor of the lookback — the commitment fully used in every one of its hours —
    in the most flexible savings plan (the first rung of a monthly top-up ladder)."""
    lookback = lookback_window(history, lookback_days)
    offering = ladder_product(prices, policy, history.pools)
    days = lookback.hours / 24
    if offering is None:
        return BaselineChoice([], "no allowed savings plan; buys nothing")
    look = _Lookback(lookback, prices, list(existing or []), offering)
    n = _floor_steps(look, _max_steps(offering, lookback, policy))
    q = look.quantity(n)
    if q <= 0:
        return BaselineChoice([], f"existing commitments already cover the floor of the last {days:g} days; buys nothing")
    return BaselineChoice(
        [Purchase(offering=offering.id, quantity=q, start=start)],
        f"{q:g} $/h of {offering.id} (the most flexible savings plan): the most that was used in every hour "
        f"of the last {days:g} days (their minimum uncovered eligible spend at its rates)",
        lookback_savings=look.savings(n),
    )
