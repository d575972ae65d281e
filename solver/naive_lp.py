"""The reference formulation: one LP variable per pool-hour (and per savings plan and pool-hour).

It lets the LP allocate savings-plan commitment freely, which bills the same as the providers'
greedy rule when the price book is consistent (:mod:`solver.consistency`). It is exact and simple,
and grows to millions of variables at enterprise size: tests and benchmarks use it as the yardstick.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.backends import INF, LinearProgram, LPResult, solve_lp
from solver.instance import Instance


def build_naive_lp(inst: Instance, hour_weights: np.ndarray | None = None, limits=None) -> LinearProgram:
    """The pool-hour LP; ``limits`` (``LinearLimit``s on the decisions) become extra rows."""
    u, H, P, n = inst.u, inst.hours, inst.n_pools, inst.n_decisions
    if hour_weights is None:
        hour_weights = inst.hour_weight
    weights = np.ones(H) if hour_weights is None else np.asarray(hour_weights, float)
    need = u - inst.existing_ri
    t_idx, p_idx = np.nonzero(need > 0)  # pool-hours that may need coverage
    m = len(t_idx)
    row_of = np.full((H, P), -1)
    row_of[t_idx, p_idx] = np.arange(m)

    rows, cols, vals = [], [], []
    c = [inst.dec_window_cost.copy()]
    hi = [inst.dec_upper.copy()]
    col = n
    # on-demand units per pool-hour
    rows.append(np.arange(m)); cols.append(col + np.arange(m)); vals.append(np.ones(m))
    c.append(weights[t_idx] * inst.on_demand[p_idx]); hi.append(np.full(m, INF))
    col += m
    # reservation decisions cover their pool in their active hours
    hours = np.arange(H)
    for j in np.flatnonzero(inst.dec_kind == 0):
        t = hours[inst.span(inst.dec_start[j], inst.dec_end[j])]
        r = row_of[t, inst.dec_target[j]]
        r = r[r >= 0]
        rows.append(r); cols.append(np.full(len(r), j)); vals.append(np.ones(len(r)))
    # savings-plan allocation variables and hourly capacity rows
    cap_rows, cap_lo, cap_hi = m, [], []
    for s, layer in enumerate(inst.layers):
        sub = row_of[:, layer.pools]  # (H, |E|)
        tt, kk = np.nonzero(sub >= 0)
        k = len(tt)
        rows.append(sub[tt, kk]); cols.append(col + np.arange(k)); vals.append(np.ones(k))
        cap_r = cap_rows + s * H + tt
        rows.append(cap_r); cols.append(col + np.arange(k)); vals.append(layer.rates[kk])
        c.append(np.zeros(k)); hi.append(np.full(k, INF))
        col += k
        for j in np.flatnonzero((inst.dec_kind == 1) & (inst.dec_target == s)):
            t = hours[inst.span(inst.dec_start[j], inst.dec_end[j])]
            rows.append(cap_rows + s * H + t); cols.append(np.full(len(t), j)); vals.append(-np.ones(len(t)))
        cap_lo.append(np.full(H, -INF)); cap_hi.append(inst.existing_sp[:, s].copy())
    n_rows = m + len(inst.layers) * H
    for lim in limits or []:
        nz = np.flatnonzero(lim.coefficients)
        rows.append(np.full(len(nz), n_rows)); cols.append(nz); vals.append(lim.coefficients[nz])
        cap_lo.append(np.array([-INF])); cap_hi.append(np.array([lim.bound]))
        n_rows += 1
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, col)
    )
    row_lo = np.concatenate([need[t_idx, p_idx]] + cap_lo)
    row_hi = np.concatenate([np.full(m, INF)] + cap_hi)
    c_all = np.concatenate(c)
    return LinearProgram(
        c=c_all, A=A, row_lo=row_lo, row_hi=row_hi,
        col_lo=np.zeros(col), col_hi=np.concatenate(hi), offset=inst.existing_cost,
    )


def solve_naive(inst: Instance, backend: str = "highs", limits=None) -> LPResult:
    """Solve the pool-hour LP; ``x[:n_decisions]`` are the purchase quantities.

    HiGHS runs its interior-point method (with crossover): on this LP it is about twice as fast as
    the dual simplex it would choose by itself, so comparisons are against the best plain LP.
    """
    return solve_lp(build_naive_lp(inst, limits=limits), backend, method="ipm")
