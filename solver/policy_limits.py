"""Turn a purchase policy into the optimizer's terms: allowed decisions and linear limits."""

from __future__ import annotations

import numpy as np

from models import PriceBook
from models.policy import Policy
from solver.decomposition import LinearLimit, RiskSpec
from solver.instance import Instance, prune, select

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
    if not limits:
        inst = prune(inst)
    risk = RiskSpec(alpha=policy.alpha, weight=policy.risk_weight) if policy.risk_weight > 0 else None
    return inst, limits, risk
