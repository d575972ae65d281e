"""Coverage band and utilization floors: limits that are not linear in the purchase quantities.

Each is measured exactly by the billing kernel and enters the optimizer as linear rows built
from its value and gradient at a point:

- coverage ≥ min: coverage is concave in x (the on-demand bill is convex), so a tangent row is
  an outer approximation; rows accumulate (Kelley) and never cut off a feasible plan;
- coverage ≤ max: the tangent row is an inner approximation (a concave function lies below its
  tangent), so the plan stays feasible; it is re-drawn at each new plan (convex–concave
  iterations, a local optimum of the restricted problem);
- utilization ≥ floor for each new commitment in a named scenario: tangent rows of
  ``floor·capacity_j − used_j(x)`` in the commitments sharing its pool or savings-plan layer.

Coverage is the one the plan reports: the probability-weighted mean over scenarios of covered
on-demand-equivalent $ over all on-demand-equivalent $.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from solver.coverage import Coverage, cluster_gradients, evaluate
from solver.decomposition import LinearLimit
from solver.instance import Instance


@dataclass(frozen=True)
class LimitTargets:
    coverage_min: float | None = None
    coverage_max: float | None = None
    utilization_floor: float | None = None
    utilization_scenario: int = 0

    @property
    def any(self) -> bool:
        return self.coverage_min is not None or self.coverage_max is not None or self.utilization_floor is not None


class Measures:
    """Coverage and per-commitment utilization of plans on a (nominal, undiscounted) instance."""

    def __init__(self, inst: Instance, weights: np.ndarray):
        self.inst = replace(inst, hour_weight=None, dec_cost=None, notes=[], _flat=None)
        self.weights = np.asarray(weights, float)
        scen = inst.hour_scenario
        S = len(self.weights)
        self.scen_matrix = sp.csr_matrix((np.ones(inst.hours), (scen, np.arange(inst.hours))), shape=(S, inst.hours))
        self.ode = self.scen_matrix @ (inst.u @ inst.on_demand)
        self.scale = np.divide(1.0, self.ode, out=np.zeros(S), where=self.ode > 0)

    def evaluate(self, x: np.ndarray, duals: bool = False) -> Coverage:
        return evaluate(self.inst, x, duals=duals)

    def coverage(self, x: np.ndarray, cov: Coverage | None = None) -> float:
        cov = cov or self.evaluate(x)
        od = self.scen_matrix @ cov.on_demand_hourly
        return float(self.weights @ np.where(self.ode > 0, 1.0 - od * self.scale, 0.0))

    def coverage_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        cov = self.evaluate(x, duals=True)
        grads = cluster_gradients(self.inst, cov, self.scen_matrix)  # d(on-demand $ of scenario s)/dx
        return self.coverage(x, cov), -(self.weights * self.scale) @ grads

    def utilization(self, x: np.ndarray, scenario: int, cov: Coverage | None = None) -> np.ndarray:
        """Utilization of each decision in ``scenario`` (nan where nothing is bought)."""
        return self._utilization(x, scenario, cov or self.evaluate(x))[0]

    def _rows(self, scenario: int, a: int, b: int) -> np.ndarray:
        inst = self.inst
        first = scenario * inst.horizon
        return np.arange(first + a, first + b)

    def _utilization(self, x: np.ndarray, scenario: int, cov: Coverage):
        """Per decision: utilization, and per hour of its span the fill ratio m_t and dm_t/dcapacity."""
        inst = self.inst
        out = np.full(inst.n_decisions, np.nan)
        parts = {}
        for j in np.flatnonzero(x > 1e-12):
            rows = self._rows(scenario, inst.dec_start[j], inst.dec_end[j])
            t = inst.dec_target[j]
            if inst.dec_kind[j] == 0:
                cap, load = cov.ri_cap[rows, t], inst.u[rows, t]
            else:
                cap, load = cov.sp_cap[rows, t], cov.sp_used[rows, t]
            m = np.where(cap > 0, np.minimum(1.0, np.divide(load, cap, out=np.ones_like(cap), where=cap > 0)), 1.0)
            dm = np.where((cap > 0) & (load < cap * (1 - 1e-12)), -np.divide(load, cap**2, out=np.zeros_like(cap), where=cap > 0), 0.0)
            out[j] = float(m.mean()) if len(m) else np.nan
            parts[j] = (m, dm)
        return out, parts

    def floor_rows(self, x: np.ndarray, floor: float, scenario: int, margin: float = 1e-6) -> list[LinearLimit]:
        """Tangent rows of ``floor·T·X_g − used_g(x) ≤ 0`` for each group g below the floor.

        A group is the decisions of one pool (or savings-plan layer) over the same hours: they
        share capacity pro rata, so their utilization is one number, and a row on their sum keeps
        the plan from trading one payment option for another just to dodge the row.
        """
        inst = self.inst
        cov = self.evaluate(x)
        util, parts = self._utilization(x, scenario, cov)
        aim = min(1.0, floor + margin)  # a little inside, so the plan meets the floor itself; buying nothing meets every row
        groups: dict[tuple[int, int, int, int], list[int]] = {}
        for j in np.flatnonzero(~np.isnan(util)):
            groups.setdefault((int(inst.dec_kind[j]), int(inst.dec_target[j]), int(inst.dec_start[j]), int(inst.dec_end[j])), []).append(j)
        rows = []
        for (kind, target, a, b), members in groups.items():
            X = float(x[members].sum())
            j = members[0]
            if util[j] >= floor - 1e-9 or X <= 1e-3 * float(inst.dec_increment[j]):
                continue
            m, dm = parts[j]
            T = b - a
            g = np.zeros(inst.n_decisions)
            cum = np.r_[0.0, np.cumsum(dm)]
            for k in np.flatnonzero((inst.dec_kind == kind) & (inst.dec_target == target)):
                lo, hi = max(a, int(inst.dec_start[k])) - a, min(b, int(inst.dec_end[k])) - a
                if hi > lo:  # d used_g / d x_k through the shared capacity over the overlap of spans
                    g[k] += X * (cum[hi] - cum[lo])
            g[members] += m.sum()
            grad_h = -g
            grad_h[members] += aim * T
            h_hat = aim * T * X - X * m.sum()
            what = inst.usage.pools[target] if kind == 0 else inst.layers[target].offering
            rows.append(LinearLimit(f"utilization of {what} bought at hour {a} ≥ {floor:.0%}",
                                    grad_h, max(0.0, float(grad_h @ x - h_hat))))
        return rows

    def meets(self, x: np.ndarray, targets: LimitTargets, tol: float = 1e-7) -> bool:
        cov = self.evaluate(x)
        if targets.coverage_min is not None or targets.coverage_max is not None:
            c = self.coverage(x, cov)
            if targets.coverage_min is not None and c < targets.coverage_min - tol:
                return False
            if targets.coverage_max is not None and c > targets.coverage_max + tol:
                return False
        if targets.utilization_floor is not None:
            util = self.utilization(x, targets.utilization_scenario, cov)
            bought = ~np.isnan(util) & (x > 1e-3 * self.inst.dec_increment)  # sellable plans buy ≥ one increment
            if np.any(util[bought] < targets.utilization_floor - tol):
                return False
        return True


def coverage_min_row(measures: Measures, x: np.ndarray, target: float) -> LinearLimit:
    """Tangent of coverage at x: coverage(x̂) + g·(x − x̂) ≥ target (outer approximation)."""
    c, g = measures.coverage_gradient(x)
    return LinearLimit(f"coverage ≥ {target:.1%}", -g, float(c - g @ x - target))


def coverage_max_row(measures: Measures, x: np.ndarray, target: float) -> LinearLimit:
    """Tangent of coverage at x: coverage(x̂) + g·(x − x̂) ≤ target (inner approximation)."""
    c, g = measures.coverage_gradient(x)
    return LinearLimit(f"coverage ≤ {target:.1%}", g, float(target - c + g @ x))


def scale_to_coverage(measures: Measures, x: np.ndarray, target: float, iterations: int = 40) -> np.ndarray:
    """The largest t·x (0 ≤ t ≤ 1) whose coverage is at most ``target`` (coverage rises with t)."""
    lo, hi = 0.0, 1.0
    if measures.coverage(x) <= target:
        return x
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if measures.coverage(mid * x) <= target:
            lo = mid
        else:
            hi = mid
    return lo * x
