"""Exact solve by a rich local model: per-pool Lagrangian newsvendors plus exact volatile hours.

For hourly savings-plan prices λ̂ taken from the billing greedy at a centre x̂, each hour's
on-demand bill is bounded below by ``Σ_p e_p (need_p − R_p)^+ − λ̂·C(y)`` (LP duality), tight at
x̂. Summed over the *stable* hours this is separable by pool: one convex piecewise-linear function
of the pool's reservation level, written exactly (every usage breakpoint) near the centre and
under-estimated farther out. The *volatile* hours — where λ is ambiguous or moves — keep the
exact pool-hour rows. The model is below the true cost everywhere, so its minimum is a certified
lower bound, and it is exact at the centre; iterating (new centre, more volatile hours) closes
the gap in a few LP solves that are a fraction of the pool-hour LP's size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from solver.backends import INF, LinearProgram, LPStatus, solve_lp
from solver.coverage import Coverage, evaluate, total_cost
from solver.instance import Instance


@dataclass
class LocalModelResult:
    x: np.ndarray
    upper: float
    lower: float
    iterations: int
    seconds: float
    status: str
    volatile_hours: int = 0
    lp_columns: int = 0
    history: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return (self.upper - self.lower) / max(abs(self.upper), 1e-12)


def supports(inst: Instance) -> bool:
    """The separable form needs one full-window reservation decision per pool at most."""
    H = inst.hours
    ri = np.flatnonzero(inst.dec_kind == 0)
    if np.any((inst.dec_start[ri] > 0) | (inst.dec_end[ri] < H)):
        return False
    return len(np.unique(inst.dec_target[ri])) == len(ri)


def _segments(need: np.ndarray, e: np.ndarray, centre: float, radius: float, upper: float, coarse: int):
    """Ψ(R) = Σ e (need − R)^+ on [0, upper] as M(0) + increasing slopes over segment lengths.

    Exact on the window [centre − radius, centre + radius] (every breakpoint there is a grid
    point). Outside, segments follow the tangent at their end nearer the window (left: the left
    derivative at the right end; right: the right derivative at the left end), so the model is
    convex, below Ψ everywhere and equal to it on the window.
    """
    pos = need > 0
    n, w = need[pos], e[pos]
    order = np.argsort(n, kind="stable")
    n, w = n[order], w[order]
    total = float(w.sum())
    cum = np.r_[0.0, np.cumsum(w)]
    lo_w, hi_w = max(0.0, centre - radius), min(upper, centre + radius)
    near = n[(n > lo_w) & (n < hi_w)]
    ranks = np.linspace(0, len(n) - 1, coarse).astype(int) if len(n) else np.zeros(0, int)
    far = n[ranks] if len(n) else np.zeros(0)
    grid = np.unique(np.concatenate([[0.0, upper, lo_w, hi_w], near, far[(far > 0) & (far < upper)]]))
    left, right = grid[:-1], grid[1:]
    weight_above = total - cum[np.searchsorted(n, left, side="right")]  # right derivative at left end
    weight_from = total - cum[np.searchsorted(n, right, side="left")]  # left derivative at right end
    slopes = np.where(right <= lo_w, -weight_from, -weight_above)
    k0 = int(np.searchsorted(grid, lo_w))
    psi_lo = float(w @ np.maximum(n - lo_w, 0.0))
    base = psi_lo - float(slopes[:k0] @ (right[:k0] - left[:k0]))
    return base, slopes, right - left


def _volatile_from_intervals(cov: Coverage, inst: Instance) -> np.ndarray:
    """Hours where some layer's price is not pinned down (commitment ends on a pool boundary)."""
    H = inst.hours
    mask = np.zeros(H, dtype=bool)
    e = np.broadcast_to(inst.on_demand, (H, inst.n_pools)).copy()
    for s in range(len(inst.layers) - 1, -1, -1):
        layer, st = inst.layers[s], cov.layer_state[s]
        ratio = e[:, layer.pools] / layer.rates
        lo = cov.lam[:, s]
        hi = np.where(st.covered, ratio, np.inf).min(axis=1) if ratio.shape[1] else lo
        hi = np.where(st.exhausted & np.isfinite(hi), hi, lo)
        mask |= hi > lo * (1 + 1e-9) + 1e-12
        e[:, layer.pools] = np.minimum(e[:, layer.pools], lo[:, None] * layer.rates)
    return mask


def _build(inst: Instance, cov: Coverage, centre: np.ndarray, volatile: np.ndarray, radius: np.ndarray, coarse: int):
    H, P, n = inst.hours, inst.n_pools, inst.n_decisions
    need = inst.u - inst.existing_ri
    stable = ~volatile
    e, lam = cov.e, cov.lam
    cols_c, cols_hi = [inst.dec_window_cost.copy()], [inst.dec_upper.copy()]
    rows, cols, vals = [], [], []
    row_lo, row_hi = [], []
    n_rows, col = 0, n
    const = inst.existing_cost - float((lam[stable] * inst.existing_sp[stable]).sum())

    ri = np.flatnonzero(inst.dec_kind == 0)
    ri_pool = {int(inst.dec_target[j]): int(j) for j in ri}
    for p in range(P):
        if p not in ri_pool:
            const += float((e[stable, p] * np.maximum(need[stable, p], 0.0)).sum())
            continue
        j = ri_pool[p]
        base, slopes, lengths = _segments(
            need[stable, p], e[stable, p], centre[j], radius[j], inst.dec_upper[j], coarse
        )
        const += base
        k = len(slopes)
        # x_j − Σ δ = 0
        rows.append(np.full(k + 1, n_rows)); cols.append(np.r_[j, col + np.arange(k)]); vals.append(np.r_[1.0, -np.ones(k)])
        row_lo.append([0.0]); row_hi.append([0.0]); n_rows += 1
        cols_c.append(slopes); cols_hi.append(lengths); col += k
    # savings plans: Lagrangian price over stable hours
    c0 = cols_c[0]
    for j in np.flatnonzero(inst.dec_kind == 1):
        s, a, b = inst.dec_target[j], inst.dec_start[j], inst.dec_end[j]
        c0[j] -= float(lam[a:b, s][stable[a:b]].sum())
    # volatile hours: exact pool-hour rows
    T = np.flatnonzero(volatile)
    if len(T):
        sub = need[T]
        tt, pp = np.nonzero(sub > 0)
        m = len(tt)
        row_of = np.full((len(T), P), -1)
        row_of[tt, pp] = n_rows + np.arange(m)
        rows.append(n_rows + np.arange(m)); cols.append(col + np.arange(m)); vals.append(np.ones(m))
        cols_c.append(inst.on_demand[pp]); cols_hi.append(np.full(m, INF)); col += m
        row_lo.append(sub[tt, pp]); row_hi.append(np.full(m, INF))
        for p, j in ri_pool.items():
            r = row_of[:, p]; r = r[r >= 0]
            rows.append(r); cols.append(np.full(len(r), j)); vals.append(np.ones(len(r)))
        cap0 = n_rows + m
        for s, layer in enumerate(inst.layers):
            blk = row_of[:, layer.pools]
            t2, k2 = np.nonzero(blk >= 0)
            q = len(t2)
            rows.append(blk[t2, k2]); cols.append(col + np.arange(q)); vals.append(np.ones(q))
            rows.append(cap0 + s * len(T) + t2); cols.append(col + np.arange(q)); vals.append(layer.rates[k2])
            cols_c.append(np.zeros(q)); cols_hi.append(np.full(q, INF)); col += q
            for j in np.flatnonzero((inst.dec_kind == 1) & (inst.dec_target == s)):
                act = np.flatnonzero((T >= inst.dec_start[j]) & (T < inst.dec_end[j]))
                rows.append(cap0 + s * len(T) + act); cols.append(np.full(len(act), j)); vals.append(-np.ones(len(act)))
            row_lo.append(np.full(len(T), -INF)); row_hi.append(inst.existing_sp[T, s])
        n_rows = cap0 + len(inst.layers) * len(T)
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, col))
    return LinearProgram(
        c=np.concatenate(cols_c), A=A,
        row_lo=np.concatenate([np.asarray(r, float) for r in row_lo]),
        row_hi=np.concatenate([np.asarray(r, float) for r in row_hi]),
        col_lo=np.zeros(col), col_hi=np.concatenate(cols_hi), offset=const,
    )


def solve_local_model(
    inst: Instance,
    x0: np.ndarray,
    backend: str = "highs",
    gap: float = 1e-6,
    max_iterations: int = 30,
    time_limit: float = 600.0,
    add_per_iteration: int = 64,
    coarse: int = 24,
    progress: Callable[[int, float, float], None] | None = None,
) -> LocalModelResult:
    t0 = time.perf_counter()
    scale = np.maximum(inst.dec_upper, 1e-9)
    centre = np.clip(np.asarray(x0, float), 0, inst.dec_upper)
    cov = evaluate(inst, centre, duals=True)
    best_x, best_F = centre, total_cost(inst, centre, cov)
    volatile = _volatile_from_intervals(cov, inst)
    radius = 0.05 * scale
    lower = -np.inf
    history, status, it, lp = [], "iteration_limit", 0, None
    for it in range(1, max_iterations + 1):
        lp = _build(inst, cov, centre, volatile, radius, coarse)
        res = solve_lp(lp, backend)
        if res.status is not LPStatus.OPTIMAL:
            raise RuntimeError(f"local model LP: {res.status.value}")
        lower = max(lower, res.objective)
        x_m = np.clip(res.x[: inst.n_decisions], 0, inst.dec_upper)
        cov_m = evaluate(inst, x_m, duals=True)
        F_m = total_cost(inst, x_m, cov_m)
        if F_m < best_F:
            best_x, best_F = x_m, F_m
        history.append((time.perf_counter() - t0, lower, best_F))
        if progress:
            progress(it, lower, best_F)
        if best_F - lower <= gap * abs(best_F):
            status = "optimal"
            break
        if time.perf_counter() - t0 > time_limit:
            status = "time_limit"
            break
        # where was the model wrong at x_m? hours whose prices moved
        moved = np.abs(cov_m.lam - cov.lam).max(axis=1) if inst.layers else np.zeros(inst.hours)
        moved[volatile] = 0.0
        candidates = np.flatnonzero(moved > 1e-12)
        if len(candidates) > add_per_iteration:
            impact = moved[candidates] * (cov_m.sp_cap[candidates].sum(axis=1) + 1e-9)
            candidates = candidates[np.argsort(-impact)[:add_per_iteration]]
        volatile = volatile.copy()
        volatile[candidates] = True
        volatile |= _volatile_from_intervals(cov_m, inst)
        radius = np.maximum(radius, 2 * np.abs(x_m - centre))
        centre, cov = best_x, (cov_m if best_x is x_m else evaluate(inst, best_x, duals=True))
    return LocalModelResult(
        best_x, best_F, lower, it, time.perf_counter() - t0, status,
        int(volatile.sum()), lp.shape[1] if lp is not None else 0, history,
    )
