"""Compiled hourly billing kernel (numba): the greedy fill and its marginal costs in one pass.

Same rules and outputs as the vectorized NumPy path in :mod:`solver.coverage` (tests check that
both agree), but one pass over each hour instead of some thirty passes over hours × pools
arrays: at 1,000 pools × 8,760 hours the NumPy path spends ~1.5 s per evaluation moving memory.
"""

from __future__ import annotations

import types

import numpy as np
from numba import njit, prange

PARALLEL_MIN_CELLS = 4_000_000
"""Hours × pools from which the billing kernel runs its hours in parallel threads. Below it one
thread is faster: on a shared 2-core machine a parallel call waits for its slowest thread, and a
small one measured 20× slower under load than serial."""


def _as(f, name: str):
    """A copy of ``f`` under another name, so numba caches its serial and parallel builds apart."""
    g = types.FunctionType(f.__code__.replace(co_name=name, co_qualname=name), f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    g.__doc__ = f.__doc__
    return g


def bill_hours(u, ri_cap, sp_cap, od, layer_ptr, layer_pools, layer_rates, duals):
    """Bill every hour (see :func:`_bill_hours`), in parallel threads only for large instances."""
    kernel = _bill_hours_parallel if u.shape[0] * u.shape[1] >= PARALLEL_MIN_CELLS else _bill_hours_serial
    return kernel(u, ri_cap, sp_cap, od, layer_ptr, layer_pools, layer_rates, duals)


def _bill_hours(u, ri_cap, sp_cap, od, layer_ptr, layer_pools, layer_rates, duals):
    """Return residual (H,P), sp_used (H,S), on_demand_hourly (H,), e (H,P), pi (H,P), lam (H,S), sp_need (H,S).

    ``sp_need`` is the $ of eligible usage reaching each layer (what it would use with no limit).
    ``e`` is the cost of one more unit of a pool's usage above its reservations, ``pi`` the same
    where usage exceeds the reservations (else 0: more reservation would not help that hour), and
    ``lam`` each layer's price of commitment. They are only filled when ``duals`` is true.
    """
    H, P = u.shape
    S = layer_ptr.shape[0] - 1
    residual = np.empty((H, P))
    sp_used = np.zeros((H, S))
    sp_need = np.zeros((H, S))
    od_hourly = np.zeros(H)
    e = np.zeros((H, P)) if duals else np.zeros((1, 1))
    pi = np.zeros((H, P)) if duals else np.zeros((1, 1))
    lam = np.zeros((H, S))
    n_pairs = layer_pools.shape[0]
    for t in prange(H):
        res = residual[t]
        for p in range(P):
            v = u[t, p] - ri_cap[t, p]
            res[p] = v if v > 0.0 else 0.0
        left = np.zeros(n_pairs, dtype=np.bool_)
        for s in range(S):
            cap = sp_cap[t, s]
            spent = 0.0
            arriving = 0.0
            for k in range(layer_ptr[s], layer_ptr[s + 1]):
                p = layer_pools[k]
                a = layer_rates[k]
                units = res[p]
                if units <= 0.0:
                    continue
                need = units * a
                arriving += need
                if need <= cap:
                    cap -= need
                    spent += need
                    res[p] = 0.0
                else:
                    covered = cap / a
                    spent += cap
                    cap = 0.0
                    rest = units - covered
                    res[p] = rest
                    left[k] = rest > 1e-9 * (units if units > 1.0 else 1.0)
            sp_used[t, s] = spent
            sp_need[t, s] = arriving
        total = 0.0
        for p in range(P):
            total += res[p] * od[p]
        od_hourly[t] = total
        if duals:
            et = e[t]
            for p in range(P):
                et[p] = od[p]
            for s in range(S - 1, -1, -1):
                best = 0.0
                for k in range(layer_ptr[s], layer_ptr[s + 1]):
                    if left[k]:
                        r = et[layer_pools[k]] / layer_rates[k]
                        if r > best:
                            best = r
                lam[t, s] = best
                for k in range(layer_ptr[s], layer_ptr[s + 1]):
                    p = layer_pools[k]
                    price = best * layer_rates[k]
                    if price < et[p]:
                        et[p] = price
            for p in range(P):
                pi[t, p] = et[p] if u[t, p] > ri_cap[t, p] else 0.0
    return residual, sp_used, od_hourly, e, pi, lam, sp_need


_bill_hours_serial = njit(cache=True)(_as(_bill_hours, "_bill_hours_serial"))
_bill_hours_parallel = njit(parallel=True, cache=True)(_as(_bill_hours, "_bill_hours_parallel"))


@njit(cache=True)  # one pass per pool: cheap next to billing, and threads only wait on a shared machine
def newsvendor_levels(order, sorted_need, e, pools, ptr, members, cost):
    """Per decision: the usage level where the weight e of its pool's hours above it first reaches its cost.

    ``order[:, g]`` sorts pool ``pools[g]``'s hours by descending need. The decisions on that pool,
    ``members[ptr[g]:ptr[g + 1]]``, come in increasing cost, so one walk down the hours serves
    them all (the weight above a level only grows as the walk goes on): a weighted quantile each.
    """
    H, groups = order.shape
    out = np.zeros(cost.shape[0])
    for g in prange(groups):
        p = pools[g]
        k, end = ptr[g], ptr[g + 1]
        total = 0.0
        for i in range(H):
            if k >= end:
                break
            total += e[order[i, g], p]
            while k < end and total >= cost[members[k]]:
                level = sorted_need[i, g]
                out[members[k]] = level if level > 0.0 else 0.0
                k += 1
    return out
