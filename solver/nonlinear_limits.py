"""Coverage band and utilization floors: limits that are not linear in the purchase quantities.

Each is measured exactly by the billing kernel and enters the optimizer as linear rows built
from its value and gradient at a point:

- coverage ≥ min: coverage is concave in x (the on-demand bill is convex), so a tangent row is
  an outer approximation; rows accumulate (Kelley) and never cut off a feasible plan;
- coverage ≤ max: the tangent row is an inner approximation (a concave function lies below its
  tangent), so the plan stays feasible; it is re-drawn at each new plan (convex–concave
  iterations, a local optimum of the restricted problem);
- utilization ≥ floor for each new commitment in a named scenario, month by month: not rows but
  caps on the capacity each pool and savings plan holds in every time segment (:class:`FloorCaps`;
  exact for reservations, a fixed point for savings plans).

Coverage is the one the plan reports: the probability-weighted mean over scenarios of covered
on-demand-equivalent $ over all on-demand-equivalent $.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from solver.coverage import Coverage, cluster_gradients, evaluate
from solver.decomposition import LinearLimit
from solver.instance import Instance
from solver.segments import CapacitySegments, hour_segments


@dataclass(frozen=True)
class LimitTargets:
    coverage_min: float | None = None
    coverage_max: float | None = None
    utilization_floor: float | None = None
    utilization_scenario: int = 0

    @property
    def any(self) -> bool:
        return self.coverage_min is not None or self.coverage_max is not None or self.utilization_floor is not None

    def inside(self, by: float) -> LimitTargets:
        """The coverage band narrowed by ``by`` at each end it has (by at most a quarter of its width)."""
        lo, hi = self.coverage_min, self.coverage_max
        if lo is not None and hi is not None:
            by = min(by, (hi - lo) / 4)
        return replace(self, coverage_min=None if lo is None else lo + by, coverage_max=None if hi is None else hi - by)


class Measures:
    """Coverage and per-commitment utilization of plans on a (nominal, undiscounted) instance."""

    def __init__(self, inst: Instance, weights: np.ndarray, floor_hours: Instance | None = None):
        """``floor_hours``: where utilization floors are measured, when not on ``inst`` (a sample of
        hours): every hour of the floor's scenario, with the same decisions."""
        self.floors = Measures(floor_hours, weights) if floor_hours is not None else None
        self.inst = replace(inst, hour_weight=None, dec_cost=None, notes=[], _flat=None)
        self.weights = np.asarray(weights, float)
        scen = inst.hour_scenario
        S = len(self.weights)
        self.count = inst.row_count  # a sampled row stands for several hours
        self.scen_matrix = sp.csr_matrix((self.count, (scen, np.arange(inst.hours))), shape=(S, inst.hours))
        self.ode = self.scen_matrix @ (inst.u @ inst.on_demand)
        self.scale = np.divide(1.0, self.ode, out=np.zeros(S), where=self.ode > 0)
        self.segments = CapacitySegments.of(self.inst)
        self._last: tuple[bytes, Coverage] | None = None

    def evaluate(self, x: np.ndarray, duals: bool = False) -> Coverage:
        """The bill of ``x``, kept for the last plan: a round of :func:`solver.constrained.solve_rows`
        asks for its plan's coverage, floors and band in turn, each of which used to bill it again."""
        key = np.asarray(x, float).tobytes()
        if self._last is None or self._last[0] != key or (duals and self._last[1].pi is None):
            self._last = (key, evaluate(self.inst, x, duals=duals))
        return self._last[1]

    def coverage(self, x: np.ndarray, cov: Coverage | None = None) -> float:
        cov = cov or self.evaluate(x)
        od = self.scen_matrix @ cov.on_demand_hourly
        return float(self.weights @ np.where(self.ode > 0, 1.0 - od * self.scale, 0.0))

    def coverage_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        cov = self.evaluate(x, duals=True)
        grads = cluster_gradients(self.inst, cov, self.scen_matrix)  # d(on-demand $ of scenario s)/dx
        return self.coverage(x, cov), -(self.weights * self.scale) @ grads

    def monthly_fill(self, x: np.ndarray, scenario: int, cov: Coverage | None = None) -> np.ndarray:
        """Per decision: the lowest mean fill, in ``scenario``, over the time segments (months of a
        ladder) of its life — the measure a utilization floor holds (nan where nothing is bought).
        Every commitment on a pool or savings plan fills pro rata, so the fill is the target's.
        (Measured on ``floor_hours`` when given: ``cov``, a bill of ``inst``, is then not used.)"""
        if self.floors is not None:
            return self.floors.monthly_fill(x, scenario)
        inst, seg = self.inst, self.segments
        cov = cov or self.evaluate(x)
        rows = np.flatnonzero(inst.hour_scenario == scenario)
        hs = seg.hour_segment[rows]
        G = len(seg.bounds)
        hours = self.count[rows]
        counts = np.bincount(hs, weights=hours, minlength=G)
        out = np.full(inst.n_decisions, np.nan)
        bought = np.flatnonzero(x > 1e-12)
        for kind, cap_all, load_all in ((0, cov.ri_cap, inst.u), (1, cov.sp_cap, cov.sp_used)):
            js = bought[inst.dec_kind[bought] == kind]
            if not len(js):
                continue
            targets, col = np.unique(inst.dec_target[js], return_inverse=True)
            cap, load = cap_all[np.ix_(rows, targets)], load_all[np.ix_(rows, targets)]
            fill = pro_rata_fill(load, cap)
            sums = np.zeros((G, len(targets)))
            np.add.at(sums, hs, fill * hours[:, None])
            mean = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], np.inf)
            first = np.searchsorted(seg.bounds, inst.dec_start[js])
            last = np.searchsorted(seg.bounds, inst.dec_end[js])
            for j, c, a, b in zip(js, col.ravel(), first, last):
                out[j] = float(mean[a:b, c].min()) if b > a else np.nan
        return out

    def meets(self, x: np.ndarray, targets: LimitTargets, tol: float = 1e-7) -> bool:
        cov = self.evaluate(x)
        if targets.coverage_min is not None or targets.coverage_max is not None:
            c = self.coverage(x, cov)
            if targets.coverage_min is not None and c < targets.coverage_min - tol:
                return False
            if targets.coverage_max is not None and c > targets.coverage_max + tol:
                return False
        if targets.utilization_floor is not None:
            util = self.monthly_fill(x, targets.utilization_scenario, cov)
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


def scale_to_coverage(measures: Measures, x: np.ndarray, target: float, tol: float = 1e-7, iterations: int = 60) -> np.ndarray:
    """The largest t·x (0 ≤ t ≤ 1) whose coverage is at most ``target`` (coverage rises with t),
    to ``tol`` in coverage: regula falsi (Illinois) on t, a handful of bills where bisection to the
    same precision took forty."""
    f_hi = measures.coverage(x) - target
    if f_hi <= 0:
        return x
    lo, hi, f_lo = 0.0, 1.0, measures.coverage(0.0 * x) - target
    if f_lo > 0:
        return 0.0 * x
    side = 0
    for _ in range(iterations):
        if f_lo > -tol or hi - lo < 1e-12:
            break
        t = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        t = min(max(t, lo + 1e-3 * (hi - lo)), hi - 1e-3 * (hi - lo))  # stay strictly inside the bracket
        f = measures.coverage(t * x) - target
        if f <= 0:
            lo, f_lo = t, f
            if side == -1:
                f_hi *= 0.5
            side = -1
        else:
            hi, f_hi = t, f
            if side == 1:
                f_lo *= 0.5
            side = 1
    return lo * x


def pro_rata_fill(load: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Share of each unit of capacity used, hour by hour: min(1, load / capacity) (1 where there is none)."""
    return np.where(capacity > 0, np.minimum(1.0, np.divide(load, capacity, out=np.ones_like(capacity), where=capacity > 0)), 1.0)


@contextmanager
def frozen(caps: FloorCaps | None) -> Iterator[None]:
    """Keep the savings plans' caps where they are for the solves inside the block."""
    if caps is None:
        yield
        return
    caps.frozen = True
    try:
        yield
    finally:
        caps.frozen = False


class FloorCaps:
    """Utilization floors as capacity caps per time segment, for :func:`solve_decomposition`.

    Every commitment active on a pool (or savings-plan layer) fills pro rata, existing ones too:
    in hour t each unit is used min(1, load_t / capacity_t). The mean fill over a segment's hours
    in the named scenario falls as the capacity rises, so the floor holds in the segment exactly
    when the capacity added is at most a level found by bisection. Holding it in every segment
    (month) of a commitment's life holds it over the life: the floor is kept month by month, a
    little stricter than over the whole term, and in exchange it is a convex limit.

    A reservation's load is its pool's usage: its caps are exact. A savings plan's load is the
    eligible usage left by the reservations and narrower plans below it, which depends on the plan:
    its caps are drawn at ``point`` (a fixed-point iteration re-draws them at each new plan; at
    ``point`` = 0 they are the loosest any plan can have, a valid relaxation).
    """

    def __init__(self, inst: Instance, floor: float, scenario: int, margin: float = 1e-6):
        self.inst, self.aim = inst, min(1.0, floor + margin)
        self.in_scenario = inst.hour_scenario == scenario
        self.point = np.zeros(inst.n_decisions)
        self.frozen = False  # while true, solves keep the savings plans' caps where they are
        self._need: tuple[bytes, np.ndarray] | None = None
        self._held: np.ndarray | None = None  # the caps last given: re-drawn caps never exceed them
        self._exact: tuple[tuple, np.ndarray] | None = None  # the reservations' caps, for these segments

    def redraw(self, x: np.ndarray) -> None:
        """Re-draw the savings plans' caps at plan ``x``, never above the caps drawn before. Left
        free, the redraws cycled between two plans at 200 pools (each plan's caps admitting the
        other); caps that only tighten settle, and a plan within them meets its floors whenever
        the caps drawn at that plan admit it."""
        self.point = np.asarray(x, float).copy()

    def loosest(self) -> None:
        """Back to the caps at buying nothing, the loosest any plan can have (forgets the redraws)."""
        self.point = np.zeros_like(self.point)
        self._held = None

    def layer_load(self) -> np.ndarray:
        """$ of eligible usage reaching each savings-plan layer at ``point`` (hours × layers)."""
        key = self.point.tobytes()
        if self._need is None or self._need[0] != key:
            self._need = (key, evaluate(self.inst, self.point, duals=False).sp_need)
        return self._need[1]

    def __call__(self, segments: CapacitySegments) -> np.ndarray:
        inst = self.inst
        key = (segments.col_segment.tobytes(), segments.col_kind.tobytes(), segments.col_target.tobytes(),
               hash(segments.hour_segment.tobytes()))
        if self._exact is None or self._exact[0] != key:  # reservations' caps: the same for every plan
            self._exact = (key, self._levels(segments, 0, inst.u, inst.existing_ri, np.full(segments.m, np.inf)))
        out = self._levels(segments, 1, None, inst.existing_sp, self._exact[1].copy())
        if self._held is not None and self._held.shape == out.shape:
            out = np.minimum(out, self._held)
        self._held = out
        return out

    def _levels(self, segments: CapacitySegments, kind: int, load: np.ndarray | None, existing: np.ndarray,
                out: np.ndarray) -> np.ndarray:
        """``out`` with the caps of the capacity columns of ``kind`` filled in, month by month."""
        hour_segment = hour_segments(self.inst, segments.bounds)  # this instance's own hours (the caller's may be a sample)
        for g in np.unique(segments.col_segment):
            hours = np.flatnonzero(self.in_scenario & (hour_segment == g))
            cols = np.flatnonzero((segments.col_segment == g) & (segments.col_kind == kind))
            if len(hours) and len(cols):
                load = self.layer_load() if load is None else load
                targets = segments.col_target[cols]
                out[cols] = _fill_level(load[np.ix_(hours, targets)], existing[np.ix_(hours, targets)], self.aim,
                                        self.inst.row_count[hours])
        return out


def _fill_level(u: np.ndarray, existing: np.ndarray, aim: float, hours: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Per column: the largest added capacity C ≥ 0 with mean_t min(1, u_t / (existing_t + C)) ≥ aim,
    the mean weighted by the ``hours`` each row stands for (inf when even the peak usage's capacity
    keeps it; 0 when nothing added does)."""
    share = hours / hours.sum() if len(hours) else hours

    def fill(c: np.ndarray) -> np.ndarray:
        return share @ pro_rata_fill(u, existing + c)

    lo = np.zeros(u.shape[1])
    hi = (u.max(axis=0) if len(u) else lo) + 1e-9  # above the peak, so no usage at all gives a cap of 0
    out = np.where(fill(hi) >= aim, np.inf, 0.0)
    search = np.isfinite(out) & (fill(lo) >= aim)
    hi = np.where(search, hi, 0.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        ok = fill(mid) >= aim
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(search, lo, out)
