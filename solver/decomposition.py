"""Exact solve by cutting planes over the purchase quantities (Benders on the hourly structure).

The total cost F(x) = fixed + c·x + Σ_t g_t(x), where g_t is hour t's on-demand bill under the
billing greedy — a convex piecewise-linear function whose value and subgradient come from
:func:`solver.coverage.evaluate` (one compiled pass over the hours). Hours are grouped into
clusters of similar load and each cluster contributes one cut per iteration (multi-cut); a box
trust region around the best point's capacities (the only place the cuts approximate) keeps the
master LP from jumping, while the purchases behind them move freely. Each master point is also
*polished*: at its marginal costs, reservations separate by pool and each pool's best level is a
weighted newsvendor quantile (:mod:`solver.newsvendor`); without this the upper bound lagged the
lower bound by several times on large portfolios. The master's optimum without the box is a
certified lower bound: the loop stops when the best billed cost is within ``gap`` of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from solver.backends import INF
from solver.coverage import evaluate, total_cost
from solver.master import GenericMaster, HighsMaster, MasterModel, master_model
from solver.newsvendor import NewsvendorLevels
from solver.instance import Instance
from solver.risk import CVAR_MARGIN, SHIFT_EMPTY, RiskSpec, objective_and_tail
from solver.risk import risk_rows as risk_master_rows
from solver.segments import CapacitySegments

log = logging.getLogger("commitplan.solver")


@dataclass
class DecompositionResult:
    x: np.ndarray
    upper: float
    lower: float
    iterations: int
    seconds: float
    status: str
    history: list[tuple[float, float, float]] = field(default_factory=list)  # (seconds, lower, upper)
    cvar: float | None = None  # CVaR of x, when a CVaR limit was held
    cvar_price: float | None = None  # the CVaR limit's multiplier: $ of objective per $ of CVaR limit

    @property
    def gap(self) -> float:
        return (self.upper - self.lower) / max(abs(self.upper), 1e-12)


class _Cuts:
    """Cuts of each cluster of hours over the capacities of its segment (:mod:`solver.segments`):
    θ_k ≥ G_k(Ĉ) + g_k·(C − Ĉ), i.e. rows [−g_k | e_k] ≥ G_k − g_k·Ĉ."""

    def __init__(self, inst: Instance, segments: CapacitySegments, per_segment: int, by_scenario: bool, risk: RiskSpec | None = None):
        self.inst, self.risk, self.segments = inst, risk, segments
        labels, self.cluster_segment, self.cluster_scenario = segments.clusters(inst, per_segment, by_scenario)
        self.k = len(self.cluster_segment)
        self.key = (per_segment, by_scenario, hash(labels.tobytes()), hash(segments.col_segment.tobytes()))
        H = inst.hours
        self.matrix = sp.csr_matrix((np.ones(H), (labels, np.arange(H))), shape=(self.k, H))

    def at(self, x: np.ndarray) -> tuple[float, float | None, sp.csr_matrix, np.ndarray, np.ndarray]:
        """Evaluate the objective at x; return (value, its CVaR (with a risk spec), cut rows (k × m),
        their right-hand sides, marginal costs e)."""
        cov = evaluate(self.inst, x, duals=True)
        values = self.matrix @ cov.on_demand_hourly
        grads = self.segments.gradients(cov, self.matrix, self.cluster_segment)
        rhs = values - grads @ (self.segments.link @ x)
        return *objective_and_tail(self.inst, x, cov, self.risk), grads, rhs, cov.e


@dataclass(frozen=True)
class LinearLimit:
    """A limit ``coefficients · x ≤ bound`` on the purchase quantities (budgets, term shares)."""

    name: str
    coefficients: np.ndarray
    bound: float

    def holds(self, x: np.ndarray, tol: float = 1e-9) -> bool:
        return float(self.coefficients @ x) <= self.bound + tol * max(1.0, abs(self.bound))


def _master(inst: Instance, segments: CapacitySegments, cuts: "_Cuts", risk: RiskSpec | None,
            upper: np.ndarray, caps: np.ndarray | None, cvar_limit: float | None) -> MasterModel:
    """The master's static part: capacity links and the CVaR rows (with their columns)."""
    risk_rows = risk_master_rows(inst, cuts.cluster_scenario, risk, cvar_limit) if risk is not None else None
    return master_model(inst.dec_window_cost, upper, segments.steps(), cuts.k, risk_rows, caps)


def _limit_rows(limits: list[LinearLimit], n: int) -> tuple[list, sp.csr_matrix, np.ndarray]:
    """The limits as rows −a·x ≥ −b, each with a key that names it (its name and numbers)."""
    keys = [(lim.name, float(lim.bound), hash(np.asarray(lim.coefficients, float).tobytes())) for lim in limits]
    if not limits:
        return keys, sp.csr_matrix((0, n)), np.zeros(0)
    A = -np.array([lim.coefficients for lim in limits], dtype=float)
    return keys, sp.csr_matrix(A), -np.array([lim.bound for lim in limits], dtype=float)


@dataclass
class WarmStart:
    """The master LPs of one solve, kept for the next solve of the same instance and hour clusters
    (:func:`solver.constrained.solve_rows`' rounds, each risk weight): they keep their cuts, which
    stay valid because the objective is the same, and their simplex basis."""

    key: tuple | None = None
    masters: tuple | None = None
    radius: float = 0.25  # the trust region's last radius: a round starts where the last one ended
    penalty: float = 1.0  # $ of merit per $ of CVaR over a CVaR limit (see solve_decomposition)


def _within_caps(y: np.ndarray, decisions: np.ndarray, pools: np.ndarray, segments: CapacitySegments,
                 caps: np.ndarray) -> np.ndarray:
    """The levels ``y[decisions]`` (reservations over the whole horizon) cut back to the floor caps:
    each pool's room is its least cap, over the months, less what its other decisions hold there,
    and the pool's decisions take it in turn."""
    others = y.copy()
    others[decisions] = 0.0
    left = caps - segments.link @ others
    ri = np.flatnonzero(segments.col_kind == 0)
    room = np.full(int(segments.col_target.max(initial=-1)) + 1, np.inf)
    np.minimum.at(room, segments.col_target[ri], left[ri])
    order = np.lexsort((np.arange(len(decisions)), pools))
    want, pool = y[decisions][order], pools[order]
    starts = np.r_[0, np.flatnonzero(np.diff(pool)) + 1]
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(pool)]))
    cum = np.cumsum(want)
    cum -= (cum - want)[starts][group]  # running total within the pool
    taken = np.maximum(np.minimum(cum, room[pool]), 0.0)
    before = np.r_[0.0, taken[:-1]]
    before[starts] = 0.0
    out = np.empty(len(decisions))
    out[order] = taken - before
    return out


def _scaled_into(x: np.ndarray, link: sp.csr_matrix, caps: np.ndarray | None) -> np.ndarray:
    """t·x with the largest t ≤ 1 whose capacities fit ``caps`` (limits a·x ≤ b with b ≥ 0 that x
    met, t·x meets too)."""
    if caps is None:
        return x
    held = link @ x
    over = held > caps
    return x * float(np.min(caps[over] / held[over])) if np.any(over) else x


def _initial_point(inst: Instance) -> np.ndarray:
    """Reservations at the newsvendor level against on-demand, savings plans at zero."""
    x = np.zeros(inst.n_decisions)
    u = inst.u - inst.existing_ri
    # several reservation offerings of one pool share it: only the cheapest gets a level
    ri = np.flatnonzero(inst.dec_kind == 0)
    order = ri[np.lexsort((ri, inst.dec_unit_cost[ri], inst.dec_target[ri]))]
    first = np.r_[True, np.diff(inst.dec_target[order]) != 0][: len(order)]
    for j in order[first]:
        p = inst.dec_target[j]
        ratio = inst.dec_unit_cost[j] / inst.on_demand[p]
        if ratio < 1:
            col = u[inst.span(inst.dec_start[j], inst.dec_end[j]), p]
            x[j] = max(0.0, float(np.quantile(col, ratio)))
    return x


def solve_decomposition(
    inst: Instance,
    backend: str = "highs",
    gap: float = 1e-6,
    clusters: int | None = None,
    max_iterations: int = 500,
    time_limit: float = 600.0,
    x0: np.ndarray | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    use_polish: bool = True,
    risk: RiskSpec | None = None,
    limits: list[LinearLimit] | None = None,
    warm: WarmStart | None = None,
    capacity_caps: Callable[[CapacitySegments], np.ndarray] | None = None,
    cvar_limit: float | None = None,
) -> DecompositionResult:
    """Minimize the (risk) objective of ``inst`` under ``limits`` to a certified ``gap``.

    ``warm``: masters this call takes up (when built for the same instance, backend and hour
    clusters) and leaves for the next call, with their cuts and basis. ``capacity_caps`` gives the
    most capacity each pool and layer may hold in each time segment (utilization floors).
    ``cvar_limit``: the most CVaR at ``risk.alpha`` the plan may have. The master holds it as a row
    over its CVaR columns, aimed ``CVAR_MARGIN`` inside (the cuts under-estimate each scenario's
    cost, so the plans it proposes approach the row from above); the trust region ranks plans by
    objective plus a penalty on their billed excess, and a plan is returned as optimal only when
    its billed CVaR meets the limit. A master infeasible under the limit proves that no plan meets it.
    """
    t0 = time.perf_counter()
    n = inst.n_decisions
    fixed = inst.existing_cost
    if n == 0:
        F = total_cost(inst, np.zeros(0))
        return DecompositionResult(np.zeros(0), F, F, 0, time.perf_counter() - t0, "optimal")
    if clusters is None:
        # more clusters give stronger cuts but a denser master: measured best at 16 for ~50
        # decisions and 48 for 200 to 1,000 (benchmarks/)
        clusters = 16 if n <= 100 else 48
    if cvar_limit is not None and risk is None:
        raise ValueError("a CVaR limit needs the risk spec that names its alpha")
    limited = cvar_limit is not None
    risky = risk is not None and (risk.weight > 0 or limited)
    S = len(inst.scenario_weights)
    segments = CapacitySegments.of(inst)
    G = segments.count
    # with risk the CVaR rows need each scenario's cost, so clusters never mix scenarios; without
    # it any partition of the hours gives valid cuts, and the master's width stays independent of S
    per_segment = max(1 if G > 1 else 2, -(-clusters // (G * (S if risky else 1))))
    cuts = _Cuts(inst, segments, per_segment, risky, risk if risky else None)
    limits = list(limits or [])
    upper_bound = inst.dec_upper.copy()
    link = segments.link
    coo = link.tocoo()
    caps = capacity_caps(segments) if capacity_caps is not None else None
    if caps is not None:  # no decision holds more than the capacity of any segment it is active in
        np.minimum.at(upper_bound, coo.col, caps[coo.row])
    aim = cvar_limit - CVAR_MARGIN * abs(cvar_limit) if limited else None
    eta = n + segments.m + cuts.k
    tail_w = inst.scenario_weights / (1 - risk.alpha) if limited else None
    model = _master(inst, segments, cuts, risk if risky else None, upper_bound, caps, aim)

    def feasible(x: np.ndarray, tol: float = 1e-9) -> bool:
        if caps is not None and np.any(link @ x > caps + tol * np.maximum(1.0, caps)):
            return False
        return all(lim.holds(x, tol) for lim in limits)
    key = (backend, cuts.key, risky, n, model.width, aim)
    fresh = warm is None or warm.key != key
    if not fresh:
        master, bound_master = warm.masters
    elif backend == "highs":
        # two live masters: the trust-region one moves its bounds every iteration; the unboxed one,
        # which certifies the lower bound, keeps its bounds and so warm-starts well
        master = HighsMaster(model)
        bound_master = master if limited else HighsMaster(model)
    elif limited:  # the trust-region master prices the CVaR excess, the bounding one forbids it
        master, bound_master = GenericMaster(model, backend), GenericMaster(model, backend)
    else:
        master = bound_master = GenericMaster(model, backend)
    if warm is not None:
        warm.key, warm.masters = key, (master, bound_master)
        if fresh:
            warm.penalty = 1.0
    penalty = warm.penalty if warm is not None else 1.0  # $ of merit per $ of CVaR over the aim
    limit_keys, limit_A, limit_lo = _limit_rows(limits, n)

    def set_columns(mst, bounding: bool) -> None:
        cost, hi = model.cost.copy(), model.col_hi.copy()
        if limited:  # the excess column: priced in the trust-region master, held at 0 in the bounding one
            cost[-1], hi[-1] = (0.0, 0.0) if bounding else (penalty, INF)
        mst.set_columns(cost, hi)
    for mst in {id(master): master, id(bound_master): bound_master}.values():
        mst.set_limits(limit_keys, limit_A, limit_lo)
        set_columns(mst, mst is bound_master and mst is not master)
    limit_row, shift = model.rows.shape[0] - 1, 0.0

    def aim_inside(mst, by: float) -> None:
        """The CVaR limit's row in ``mst``: η + Σ_s w_s z_s / (1 − α) − excess ≤ aim − by."""
        mst.set_static_lower(limit_row, -(aim - by))
    if limited and not fresh:  # a kept master may still aim where the last solve moved it
        aim_inside(master, 0.0)
    price = [None]  # the CVaR row's multiplier in the bounding master, when solved

    def bound() -> float:
        nonlocal penalty
        shared = bound_master is master and limited
        if shared:  # one master: open its box, forbid the excess, aim at the limit
            set_columns(master, True)
            aim_inside(master, 0.0)
        x_b, value = bound_master.solve(*everywhere)
        d = bound_master.row_dual(limit_row) if limited else None
        if d is not None:
            price[0] = abs(d)
            penalty = max(penalty, 2 * price[0])  # an exact penalty needs more than the multiplier
            if warm is not None:
                warm.penalty = penalty
        if shared or d is not None:  # back to the trust-region master's excess price and aim
            set_columns(master, False)
            aim_inside(master, shift)
        if limited and kept[2] is None:  # the model's best plan under the limit: a start for blends
            x_b = np.clip(x_b, 0, upper_bound)
            keep(x_b, *probe(x_b))
        return value

    polish = NewsvendorLevels(inst)
    last_e = [None]

    def add(rows: sp.csr_matrix, rhs: np.ndarray) -> None:
        master.add_cuts(rows, rhs)
        if bound_master is not master:
            bound_master.add_cuts(rows, rhs)

    def probe(x: np.ndarray) -> tuple[float, float]:
        """(objective, billed CVaR or 0 without a limit) of x; its cuts join the masters."""
        F, tail, grads, rhs, e = cuts.at(x)
        add(grads, rhs)
        last_e[0] = e
        return F, tail if limited else 0.0

    def merit(F: float, tail: float) -> float:
        return F + penalty * max(0.0, tail - aim) if limited else F

    # with a CVaR limit the trust region follows the merit, which may rank a plan over the limit
    # best; the certificate and the answer are the cheapest probed plan that meets every limit
    kept: list = [np.inf, np.inf, None]  # its objective, CVaR and quantities

    def keep(x: np.ndarray, F: float, tail: float) -> None:
        if limited and tail <= cvar_limit and F < kept[0] and feasible(x, 1e-7):  # the master's plans hold its rows to 1e-7
            kept[:] = [F, tail, x]

    def polished(x: np.ndarray) -> np.ndarray:
        """x with each pool's reservation at its newsvendor level for the current marginal costs."""
        y = x.copy()
        y[polish.decisions] = np.minimum(polish.levels(last_e[0]), upper_bound[polish.decisions])
        if caps is not None:
            y[polish.decisions] = _within_caps(y, polish.decisions, polish.pools, segments, caps)
        return y

    cap_hi = caps if caps is not None else np.full(segments.m, np.inf)
    everywhere = (np.zeros(n + segments.m), np.r_[upper_bound, cap_hi])
    best_x = np.clip(_initial_point(inst) if x0 is None else np.asarray(x0, float), 0, upper_bound)
    if not feasible(best_x):
        probe(best_x)  # its cuts are valid anyway
        best_x = _scaled_into(best_x, link, caps)  # caps re-drawn below the last plan: scale it down to them
    if not feasible(best_x):
        best_x = np.zeros(n)  # buying nothing meets every limit on purchases ...
        if not feasible(best_x):  # ... but not a coverage minimum: start from the unboxed master's point
            best_x, _ = bound_master.solve(*everywhere)
            best_x = np.clip(best_x, 0, upper_bound)
    best_F, best_tail = probe(best_x)
    keep(best_x, best_F, best_tail)
    if fresh:  # cuts spread over the box, so the first master is bounded
        probe(np.zeros(n))
        probe(upper_bound * 0.5)
    lower = -np.inf
    # the trust region bounds the capacities, where the model of the bill is an approximation; the
    # purchases behind them (terms, payment options, dates) enter the cost and the limits exactly,
    # so they move freely (a box on the purchases took 27 iterations to 1e-3 at 200 pools × 12 dates
    # where this takes 18: every change of term or payment mix had to crawl through the box)
    scale = np.zeros(segments.m)
    np.maximum.at(scale, coo.row, upper_bound[coo.col])
    scale = np.maximum(scale, 1e-9)
    radius = warm.radius if warm is not None and not fresh else 0.25
    history = []
    status = "iteration_limit"
    it = 0
    for it in range(1, max_iterations + 1):
        at = link @ best_x
        lo_c, hi_c = np.maximum(0.0, at - radius * scale), np.minimum(cap_hi, at + radius * scale)
        x_m, model_val = master.solve(np.r_[np.zeros(n), lo_c], np.r_[upper_bound, hi_c])
        if limited:  # the master's CVaR at its plan: η + Σ_s w_s z_s / (1 − α), columns [x | C | θ | η | z | v]
            model_tail = float(master.columns[eta] + tail_w @ master.columns[eta + 1 : -1])
        c_m = link @ x_m
        tol = 1e-9 * scale
        box_active = np.any((c_m <= lo_c + tol) & (lo_c > tol)) or np.any((c_m >= hi_c - tol) & (hi_c < cap_hi - tol))
        if not box_active and shift == 0.0:  # (an aim moved inside bounds only the moved problem)
            lower = max(lower, fixed + model_val)
        elif not box_active or (kept[0] if limited else best_F) - (fixed + model_val) <= gap * abs(best_F) or it % 5 == 0:
            lower = max(lower, fixed + bound())
        F, tail = probe(x_m)
        keep(x_m, F, tail)
        under = max(0.0, tail - model_tail) if limited else 0.0
        if use_polish and len(polish.decisions):
            x_p = polished(x_m)
            F_p, tail_p = probe(x_p)
            keep(x_p, F_p, tail_p)
            if merit(F_p, tail_p) < merit(F, tail) and feasible(x_p):
                x_m, F, tail = x_p, F_p, tail_p
        incumbent, candidate = merit(best_F, best_tail), merit(F, tail)
        predicted = incumbent - (fixed + model_val)
        if candidate < incumbent - 0.1 * max(predicted, 0.0) or candidate < incumbent - 1e-12 * abs(incumbent) and predicted <= 0:
            if box_active and candidate < incumbent - 0.5 * predicted:
                radius = min(1.0, radius * 2)
            best_x, best_F, best_tail = x_m, F, tail
            if limited:  # the master's next plans aim inside by what it under-estimated this one's CVaR
                shift = min(under * (SHIFT_EMPTY if kept[2] is None else 1.0), 0.05 * abs(aim))
                aim_inside(master, shift)
        else:
            radius = max(1e-4, radius * 0.5)
            if limited and shift > 0:  # the aim moved inside may be what keeps the master from a better plan
                shift = 0.5 * shift if shift > 1e-9 * abs(aim) else 0.0
                aim_inside(master, shift)
        history.append((time.perf_counter() - t0, lower, best_F))
        if warm is not None:
            warm.radius = radius
        if progress:
            progress(it, lower, best_F)
        if limited and best_tail > cvar_limit and kept[2] is not None and merit(best_F, best_tail) - lower <= gap * abs(best_F):
            # the model is good enough but its best plan is over the limit: the CVaR of a blend with the
            # kept plan is at most the blend of theirs (CVaR is convex), so the blend that meets the aim
            # does, and it costs at most the blend of their costs
            t = float(np.clip((max(aim, kept[1]) - kept[1]) / (best_tail - kept[1]), 0.0, 1.0))
            x_t = kept[2] + t * (best_x - kept[2])
            keep(x_t, *probe(x_t))
        upper = kept[0] if limited else best_F
        if np.isfinite(upper) and upper - lower <= gap * abs(upper):
            status = "optimal"
            break
        if time.perf_counter() - t0 > time_limit:
            status = "time_limit"
            break
    if limited and price[0] is None:
        bound()
    log.debug("decomposition: %d iterations, %.1f s, %s, lower %.2f, upper %.2f%s", it, time.perf_counter() - t0, status,
              lower, kept[0] if limited else best_F, f", CVaR penalty {penalty:.3g}, multiplier {price[0]}" if limited else "")
    if limited and kept[2] is not None:
        best_x, best_F, best_tail = kept[2], kept[0], kept[1]
    return DecompositionResult(best_x, best_F, lower, it, time.perf_counter() - t0, status, history,
                               cvar=best_tail if limited else None, cvar_price=price[0])
