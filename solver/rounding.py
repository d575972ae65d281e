"""Round continuous purchase quantities to what providers sell, at the least extra cost.

Providers sell reservations in whole units (or normalized units) and savings plans in $0.001/h.
Starting from the nearest sellable quantities, a coordinate search moves one increment at a time
while the exact bill falls, trying first the direction the marginal cost points to. Its result is
a local optimum on the sellable grid (no single one-increment move bills lower); the extra cost
over the continuous optimum is reported as the cost of rounding.
"""

from __future__ import annotations

import time

import numpy as np

from solver.coverage import evaluate, hourly_gradients, total_cost
from solver.instance import Instance


def snap(x: np.ndarray, increment: np.ndarray) -> np.ndarray:
    """Nearest multiple of the increment, cleaned of float noise (e.g. 12.000000001 → 12)."""
    steps = np.round(np.asarray(x, float) / increment + 1e-9)
    return np.maximum(steps, 0.0) * increment


def _step(q: np.ndarray, inc: np.ndarray, j: int, direction: float) -> np.ndarray | None:
    trial = q.copy()
    trial[j] = (round(q[j] / inc[j]) + direction) * inc[j]
    return None if trial[j] < 0 else trial


def round_quantities(
    inst: Instance, x: np.ndarray, time_budget: float = 30.0, max_passes: int = 2
) -> tuple[np.ndarray, float]:
    inc = inst.dec_increment
    q = snap(x, inc)
    if inst.n_decisions == 0:
        return q, total_cost(inst, q)
    cov = evaluate(inst, q, duals=True)
    best = total_cost(inst, q, cov)
    slope = inst.dec_window_cost + hourly_gradients(inst, cov).sum(axis=0)
    deadline = time.perf_counter() + time_budget
    for _ in range(max_passes):
        changed = False
        for j in np.argsort(-inst.dec_window_cost * inc):  # biggest steps first
            first = -1.0 if slope[j] > 0 else 1.0
            for direction in (first, -first):
                trial = _step(q, inc, j, direction)
                if trial is None:
                    continue
                cost = total_cost(inst, trial)
                if cost < best - 1e-9 * abs(best):
                    q, best, changed = trial, cost, True
                    break
            if time.perf_counter() > deadline:
                return q, best
        if not changed:
            break
    return q, best
