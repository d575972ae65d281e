"""Certified lower bounds on the optimal cost from Lagrangian duality.

For any hourly savings-plan prices λ ≥ 0 the cost is bounded below by
``fixed + Σ_pools min_R [c·R + Σ_t e_t (u_t − R)^+] + Σ_plans min_y (c − Σ_t λ_t)·y``, where
``e_t`` is what one more unit of the pool's usage would cost at those prices: a separable
newsvendor problem per pool, solved exactly from sorted usage. At an optimal plan the prices the
greedy fill implies are optimal duals except in hours where a plan's commitment ends exactly on a
pool boundary; there any price in an interval is a dual, and we pick the one that balances each
plan's marginal value against its cost, which closes the bound.
"""

from __future__ import annotations

import numpy as np

from solver.coverage import Coverage, evaluate
from solver.instance import Instance


def weighted_newsvendor(u: np.ndarray, e: np.ndarray, cost: float) -> tuple[float, float]:
    """min over R ≥ 0 of cost·R + Σ e_t (u_t − R)^+ ; returns (value, argmin R)."""
    order = np.argsort(-u, kind="stable")
    us, es = u[order], e[order]
    above = np.cumsum(es)  # weight of hours with usage ≥ us[k]
    k = int(np.searchsorted(above, cost, side="left"))
    R = float(us[k]) if k < len(us) else 0.0
    R = max(R, 0.0)
    return cost * R + float(np.dot(e, np.maximum(u - R, 0.0))), R


def _price_intervals(inst: Instance, cov: Coverage, s: int, e_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    layer, st = inst.layers[s], cov.layer_state[s]
    ratio = e_next[:, layer.pools] / layer.rates
    lo = np.where(st.left_over, ratio, 0.0).max(axis=1) if ratio.shape[1] else np.zeros(inst.hours)
    hi_cov = np.where(st.covered, ratio, np.inf).min(axis=1) if ratio.shape[1] else np.zeros(inst.hours)
    hi = np.where(st.exhausted, np.maximum(hi_cov, lo), lo)
    hi = np.where(np.isfinite(hi), hi, lo)
    return lo, hi


def lagrangian_bound(inst: Instance, x: np.ndarray, cov: Coverage | None = None, balance: bool = True, debug: bool = False) -> float:
    cov = cov if cov is not None else evaluate(inst, x, duals=True)
    H, P = inst.u.shape
    e = np.broadcast_to(inst.on_demand, (H, P)).copy()
    sp_dec = np.flatnonzero(inst.dec_kind == 1)
    lam = np.zeros((H, len(inst.layers)))
    for s in range(len(inst.layers) - 1, -1, -1):
        lo, hi = _price_intervals(inst, cov, s, e)
        lam_s = lo
        target = inst.dec_window_cost[sp_dec[inst.dec_target[sp_dec] == s]]
        if balance and len(target) and np.all(inst.dec_start[sp_dec[inst.dec_target[sp_dec] == s]] == 0):
            want = float(target.min())  # one full-window commitment: its marginal value should equal its cost
            low, high = lo.sum(), hi.sum()
            if low < want <= high:
                theta = (want - low) / (high - low)
                lam_s = lo + theta * (hi - lo)
            elif want > high:
                lam_s = hi
        lam[:, s] = lam_s
        if debug: print('layer', s, 'want', target, 'lo', lo.sum(), 'hi', hi.sum(), 'got', lam_s.sum())
        layer = inst.layers[s]
        e[:, layer.pools] = np.minimum(e[:, layer.pools], lam_s[:, None] * layer.rates)
    return dual_value(inst, e, lam)


def dual_value(inst: Instance, e: np.ndarray, lam: np.ndarray) -> float:
    """The Lagrangian bound for given marginal costs ``e`` (H×P) and plan prices ``lam`` (H×S)."""
    H, P = inst.u.shape
    need = inst.u - inst.existing_ri
    total = inst.existing_cost - float((lam * inst.existing_sp).sum())
    ri = inst.dec_kind == 0
    covered_pools = set()
    for p in np.unique(inst.dec_target[ri]):
        js = np.flatnonzero(ri & (inst.dec_target == p))
        if np.any((inst.dec_start[js] > 0) | (inst.dec_end[js] < H)) or len(js) > 1:
            return _general_dual_value(inst, e, lam)
        value, _ = weighted_newsvendor(need[:, p], e[:, p], float(inst.dec_window_cost[js[0]]))
        total += value
        covered_pools.add(int(p))
    rest = [p for p in range(P) if p not in covered_pools]
    if rest:
        total += float((e[:, rest] * np.maximum(need[:, rest], 0.0)).sum())
    for j in np.flatnonzero(~ri):
        s = inst.dec_target[j]
        slope = inst.dec_window_cost[j] - lam[inst.dec_start[j] : inst.dec_end[j], s].sum()
        total += min(0.0, slope * inst.dec_upper[j])
    return total


def _general_dual_value(inst: Instance, e: np.ndarray, lam: np.ndarray) -> float:
    raise NotImplementedError("bounds with several reservation spans per pool arrive with laddering")


class NewsvendorLevels:
    """Per-pool reservation levels that minimize c·R + Σ_t e_t (need_t − R)^+, vectorized.

    The sort of each pool's usage is done once; each call re-weights it with new marginal costs.
    Only reservation decisions that span the whole window take part (one per pool after pruning).
    """

    def __init__(self, inst: Instance):
        H = inst.hours
        ri = np.flatnonzero((inst.dec_kind == 0) & (inst.dec_start == 0) & (inst.dec_end == H))
        self.decisions = ri
        self.pools = inst.dec_target[ri]
        need = (inst.u - inst.existing_ri)[:, self.pools]
        self.order = np.argsort(-need, axis=0, kind="stable")
        self.sorted_need = np.take_along_axis(need, self.order, axis=0)
        self.cost = inst.dec_window_cost[ri]

    def levels(self, e: np.ndarray) -> np.ndarray:
        w = np.take_along_axis(e[:, self.pools], self.order, axis=0)
        cum = np.cumsum(w, axis=0)
        reached = cum >= self.cost[None, :]
        k = np.where(reached.any(axis=0), reached.argmax(axis=0), self.sorted_need.shape[0] - 1)
        level = self.sorted_need[k, np.arange(len(k))]
        level = np.where(reached.any(axis=0), level, 0.0)
        return np.maximum(level, 0.0)
