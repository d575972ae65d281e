"""Round continuous purchase quantities to what providers sell, at the least extra cost.

Providers sell reservations in whole units (or normalized units) and savings plans in $0.001/h.
From the nearest sellable quantities, a coordinate search minimizes the exact bill along one
offering at a time on its sellable grid (the bill is convex along a line, so a doubling search
and a bisection find that line's best point), sweeps until no offering moves, then tries trading
savings plans against each other and against other offerings a few increments at a time. On
large portfolios reservations only choose between the two sellable neighbours of the continuous
optimum (one bill each) and the search runs on the savings plans the continuous optimum holds.
The extra cost over the continuous optimum is reported as the cost of rounding.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from solver.coverage import evaluate, total_cost
from solver.instance import Instance


def snap(x: np.ndarray, increment: np.ndarray) -> np.ndarray:
    """Nearest multiple of the increment, cleaned of float noise (e.g. 12.000000001 → 12)."""
    steps = np.round(np.asarray(x, float) / increment + 1e-9)
    return np.maximum(steps, 0.0) * increment


def _best_step(cost_at: Callable[[int], float], low: int, current: float) -> tuple[int, float]:
    """Integer step k ≥ low minimizing a convex cost_at(k), knowing cost_at(0) = current."""
    for direction in (1, -1):
        if direction == -1 and low > -1:
            continue
        first = cost_at(direction)
        if first >= current:
            continue
        # doubling until the cost stops falling, then bisection in the last bracket
        prev_k, k, c = 0, direction, first
        while True:
            nxt = 2 * k
            if direction == -1 and nxt < low:
                nxt = low
            if nxt == k:
                return k, c
            c_next = cost_at(nxt)
            if c_next >= c:
                break
            prev_k, k, c = k, nxt, c_next
        lo, hi = sorted((prev_k, nxt))
        best_k, best_c = k, c
        while hi - lo > 2:
            m1, m2 = lo + (hi - lo) // 3, hi - (hi - lo) // 3
            c1, c2 = cost_at(m1), cost_at(m2)
            if c1 < best_c:
                best_k, best_c = m1, c1
            if c2 < best_c:
                best_k, best_c = m2, c2
            if c1 <= c2:
                hi = m2
            else:
                lo = m1
        for k2 in range(lo, hi + 1):
            if k2 not in (best_k, 0) and k2 >= low:
                c2 = cost_at(k2)
                if c2 < best_c:
                    best_k, best_c = k2, c2
        return best_k, best_c
    return 0, current


def round_quantities(
    inst: Instance, x: np.ndarray, time_budget: float = 30.0, max_sweeps: int = 20,
    objective: Callable[[np.ndarray], float] | None = None,
    feasible: Callable[[np.ndarray], bool] | None = None,
    limits: list[np.ndarray] | None = None,
    repair: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, float]:
    """Sellable quantities near x minimizing ``objective`` (default: the total cost) among those
    ``feasible`` accepts (limits such as an upfront budget; moves that break one are never taken).

    ``limits``: coefficients of linear limits ``a·q ≤ b``; when rounding to nearest breaks a limit,
    a start that rounds each offering in the direction that lowers ``a·q`` is tried (a share of
    3-year terms needs long terms rounded down and short ones up); ``repair`` gives a start meeting
    every limit at once (:mod:`solver.repair`), tried first."""
    base_cost = objective or (lambda q: total_cost(inst, q))
    cost_of = base_cost if feasible is None else (lambda q: base_cost(q) if feasible(q) else np.inf)
    inc = inst.dec_increment
    q = snap(x, inc)
    if feasible is not None and not feasible(q):
        # nearest first; rounding down meets caps and utilization floors, up meets a coverage minimum
        x = np.asarray(x, float)
        down, up = np.maximum(np.floor(x / inc + 1e-9), 0.0) * inc, np.ceil(x / inc - 1e-9) * inc
        trials = [down] + [np.where(a > 0, down, np.where(a < 0, up, q)) for a in limits or []] + [up, np.zeros_like(q)]
        for trial in ([repair(x)] if repair is not None else []) + trials:
            if trial is not None and feasible(trial):
                q = trial
                break
        else:
            return q, np.inf
    best = cost_of(q)
    deadline = time.perf_counter() + time_budget
    everything = np.arange(inst.n_decisions)
    # large portfolios: each trial bills every hour, and a savings plan the continuous optimum leaves
    # at zero is left there (at 200 pools x 12 dates, 20 of 24 savings-plan decisions: one bill of
    # 175,200 scenario-hours each to find that $0.001/h more costs more)
    held = (np.asarray(x, float) > 0) | (q > 0)
    search = everything if inst.n_decisions <= 16 else np.flatnonzero((inst.dec_kind == 1) & held)
    if len(search) < inst.n_decisions:
        q, best = _floor_or_ceil(inst, np.asarray(x, float), q, best, np.setdiff1d(everything, search), deadline, cost_of)
    for _ in range(max_sweeps):
        q, best = _coordinate_sweeps(inst, q, best, deadline, max_sweeps, search, cost_of)
        q, better = _pair_moves(inst, q, best, deadline, cost_of)
        if better >= best - 1e-12 * abs(best):
            break
        best = better
    return q, best


def _pair_moves(
    inst: Instance, q: np.ndarray, best: float, deadline: float, cost_of: Callable[[np.ndarray], float], reach: int = 3
) -> tuple[np.ndarray, float]:
    """Trade one offering against another by a few increments each (savings plans overlap, so a
    move along one coordinate can be worse while a joint one is better)."""
    inc = inst.dec_increment
    sp = np.flatnonzero(inst.dec_kind == 1)
    others = np.arange(inst.n_decisions) if inst.n_decisions <= 16 else sp
    steps = [(a, b) for a in range(-reach, reach + 1) for b in range(-reach, reach + 1) if a and b]
    pools = [set(inst.layers[inst.dec_target[i]].pools.tolist()) if inst.dec_kind[i] == 1 else {int(inst.dec_target[i])}
             for i in range(inst.n_decisions)]
    for i in sp:
        for j in others:
            if j == i or (j in sp and j < i) or not pools[i] & pools[j]:
                continue
            if (q[i] == 0 or q[j] == 0) and len(others) < inst.n_decisions:
                continue
            for a, b in steps:
                trial = q.copy()
                trial[i] = (round(q[i] / inc[i]) + a) * inc[i]
                trial[j] = (round(q[j] / inc[j]) + b) * inc[j]
                if trial[i] < 0 or trial[j] < 0:
                    continue
                c = cost_of(trial)
                if c < best - 1e-12 * abs(best):
                    q, best = trial, c
            if time.perf_counter() > deadline:
                return q, best
    return q, best


def _floor_or_ceil(
    inst: Instance, x: np.ndarray, q: np.ndarray, best: float, which: np.ndarray, deadline: float,
    cost_of: Callable[[np.ndarray], float],
) -> tuple[np.ndarray, float]:
    """Choose, per reservation, the better of the two sellable neighbours of x.

    Each choice is judged on the pool's own cost ``c·R + Σ_t e_t (need_t − R)^+`` with the
    marginal costs ``e`` of the current point (one bill for all pools at once); the combined
    choice is kept only if the exact bill confirms it is cheaper.
    """
    inc = inst.dec_increment
    lo = np.floor(x / inc + 1e-9) * inc
    hi = np.ceil(x / inc - 1e-9) * inc
    cov = evaluate(inst, q, duals=True)
    need = inst.u - inst.existing_ri
    trial = q.copy()
    for j in which:
        if inst.dec_kind[j] != 0 or np.isclose(lo[j], hi[j]):
            continue
        p, rows = inst.dec_target[j], inst.span(inst.dec_start[j], inst.dec_end[j])
        n, e = need[rows, p], cov.e[rows, p]
        others = cov.ri_cap[rows, p] - q[j] - inst.existing_ri[rows, p]  # other reservations on the pool

        def pool_cost(level: float) -> float:
            return inst.dec_window_cost[j] * level + float(e @ np.maximum(n - others - level, 0.0))

        trial[j] = lo[j] if pool_cost(lo[j]) <= pool_cost(hi[j]) else hi[j]
    if not np.array_equal(trial, q):
        cost = cost_of(trial)
        if cost < best:
            q, best = trial, cost
    return q, best


def _coordinate_sweeps(
    inst: Instance, q: np.ndarray, best: float, deadline: float, max_sweeps: int, which: np.ndarray,
    cost_of: Callable[[np.ndarray], float],
) -> tuple[np.ndarray, float]:
    inc = inst.dec_increment
    for _ in range(max_sweeps):
        moved = False
        for j in which[np.argsort(-inst.dec_window_cost[which] * inc[which], kind="stable")]:
            units = round(q[j] / inc[j])

            def cost_at(k: int, j: int = j, units: int = units) -> float:
                trial = q.copy()
                trial[j] = (units + k) * inc[j]
                return cost_of(trial)

            k, c = _best_step(cost_at, -units, best)
            if k != 0 and c < best - 1e-12 * abs(best):
                q[j] = (units + k) * inc[j]
                best, moved = c, True
            if time.perf_counter() > deadline:
                return q, best
        if not moved:
            break
    return q, best
