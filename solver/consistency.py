"""Is the providers' greedy fill also the cheapest allocation for this price book?

The optimizer treats each hour's bill as a convex function of the commitments, which holds when
the greedy order (narrow plans first, each by descending savings percentage) never strands a
plan's commitment where another would have used it better. A sufficient condition, met by the
published AWS and Azure rate structures (an EC2 Instance SP rate is the Compute SP rate times one
factor per family and region): for every earlier layer and every later layer sharing its pools,
the later-to-earlier rate ratio does not rise along the earlier layer's fill order, and pools the
later layer cannot cover come first (to a relative 1e-4, the rounding of published rates). When it fails, plans are still billed exactly, but the
optimality certificate is only against the LP relaxation.
"""

from __future__ import annotations

import numpy as np

from solver.instance import Instance


def greedy_is_optimal(inst: Instance, tol: float = 1e-4) -> tuple[bool, list[str]]:
    problems = []
    for i, first in enumerate(inst.layers):
        for later in inst.layers[i + 1 :]:
            rate_later = dict(zip(later.pools.tolist(), later.rates.tolist()))
            if not set(rate_later) & set(first.pools.tolist()):
                continue
            ratios = np.array([
                rate_later[p] / r if p in rate_later else np.inf
                for p, r in zip(first.pools.tolist(), first.rates.tolist())
            ])
            finite = np.where(np.isinf(ratios), np.finfo(float).max, ratios)
            if np.any(np.diff(finite) > tol * np.maximum(1.0, np.abs(finite[:-1]))):
                problems.append(
                    f"{first.offering} fills its pools in an order that can strand commitment {later.offering} would use better"
                )
    return not problems, problems
