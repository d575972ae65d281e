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

    Only reservation decisions that span the whole window take part: one per pool after pruning,
    or every payment option and term of it on a ladder (those share their pool's sorted hours and
    one walk down them, in :func:`solver.kernels.newsvendor_levels`).
    """

    def __init__(self, inst: Instance):
        ri = np.flatnonzero((inst.dec_kind == 0) & inst.spans_horizon())
        self.decisions = ri
        self.pools = inst.dec_target[ri]
        self.cost = inst.dec_window_cost[ri]
        self.groups, group = np.unique(self.pools, return_inverse=True)
        self.members = np.lexsort((self.cost, group)).astype(np.int64)  # by pool, then by cost
        self.ptr = np.searchsorted(group[self.members], np.arange(len(self.groups) + 1)).astype(np.int64)
        self.order, self.sorted_need = _sorted_need(inst, self.groups)

    def levels(self, e: np.ndarray) -> np.ndarray:
        """Level per participating decision for marginal costs ``e`` (hours × pools)."""
        from solver.kernels import newsvendor_levels

        return newsvendor_levels(self.order, self.sorted_need, e, self.groups.astype(np.int64), self.ptr,
                                 self.members, self.cost)


_SORTED: list[tuple[np.ndarray, np.ndarray, bytes, tuple[np.ndarray, np.ndarray]]] = []


def _sorted_need(inst: Instance, pools: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pool's hours by descending need, kept for the last usage array: the rounds of a
    constrained solve rebuild the polish on the same usage many times, and sorting dominated."""
    key = pools.tobytes()
    for u, existing, k, value in _SORTED:
        if u is inst.u and existing is inst.existing_ri and k == key:
            return value
    need = (inst.u - inst.existing_ri)[:, pools]
    order = np.argsort(-need, axis=0, kind="stable")
    value = (order, np.take_along_axis(need, order, axis=0))
    _SORTED.insert(0, (inst.u, inst.existing_ri, key, value))
    del _SORTED[1:]  # one usage at a time: at 200 pools × 20 scenarios each entry holds ~0.8 GB
    return value
