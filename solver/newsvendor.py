"""Per-pool reservation levels from marginal costs: the newsvendor rule, vectorized.

With hourly savings-plan prices fixed, the cost of a pool's reservation level R is
``c·R + Σ_t e_t (need_t − R)^+`` where ``e_t`` is what one more unit of the pool's usage costs in
hour t (on-demand, or the savings-plan commitment it would displace). Its minimum is at the usage
level where the weight of hours above it first reaches ``c``: a weighted quantile. The
decomposition uses these levels to polish each master point, which is what makes its upper bound
converge as fast as its lower bound on large portfolios.
"""

from __future__ import annotations

import numpy as np

from solver.instance import Instance


class NewsvendorLevels:
    """Sorts each pool's usage once; each call re-weights the hours with new marginal costs.

    Only reservation decisions that span the whole window take part (one per pool after pruning).
    """

    def __init__(self, inst: Instance):
        ri = np.flatnonzero((inst.dec_kind == 0) & inst.spans_horizon())
        self.decisions = ri
        self.pools = inst.dec_target[ri]
        need = (inst.u - inst.existing_ri)[:, self.pools]
        self.order = np.argsort(-need, axis=0, kind="stable")
        self.sorted_need = np.take_along_axis(need, self.order, axis=0)
        self.cost = inst.dec_window_cost[ri]

    def levels(self, e: np.ndarray) -> np.ndarray:
        """Level per participating decision for marginal costs ``e`` (hours × pools)."""
        from solver.kernels import newsvendor_levels

        return newsvendor_levels(self.order, self.sorted_need, e, self.pools.astype(np.int64), self.cost)
