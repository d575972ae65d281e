"""Exact solve by cutting planes over the purchase quantities (Benders on the hourly structure).

The total cost F(x) = fixed + c·x + Σ_t g_t(x), where g_t is hour t's on-demand bill under the
billing greedy — a convex piecewise-linear function whose value and subgradient come from
:func:`solver.coverage.evaluate` (one compiled pass over the hours). Hours are grouped into
clusters of similar load and each cluster contributes one cut per iteration (multi-cut); a box
trust region around the best point keeps the master LP from jumping. Each master point is also
*polished*: at its marginal costs, reservations separate by pool and each pool's best level is a
weighted newsvendor quantile (:mod:`solver.newsvendor`); without this the upper bound lagged the
lower bound by several times on large portfolios. The master's optimum without the box is a
certified lower bound: the loop stops when the best billed cost is within ``gap`` of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.sparse as sp

from solver.backends import INF, LinearProgram, LPStatus, new_highs, solve_lp
from solver.coverage import cluster_gradients, evaluate, total_cost
from solver.newsvendor import NewsvendorLevels
from solver.instance import Instance


@dataclass
class DecompositionResult:
    x: np.ndarray
    upper: float
    lower: float
    iterations: int
    seconds: float
    status: str
    history: list[tuple[float, float, float]] = field(default_factory=list)  # (seconds, lower, upper)

    @property
    def gap(self) -> float:
        return (self.upper - self.lower) / max(abs(self.upper), 1e-12)


@dataclass(frozen=True)
class RiskSpec:
    """Objective E[cost] + weight · CVaR_alpha[cost] over the scenarios (Rockafellar–Uryasev).

    ``alpha`` is the confidence level (0.95: the mean of the worst 5% of outcomes), not a quantile
    of savings; ``weight`` ≥ 0 is the risk aversion (0: the risk-neutral plan).
    """

    alpha: float = 0.95
    weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha is the CVaR confidence level in [0, 1), got {self.alpha}")
        if self.weight < 0:
            raise ValueError(f"the risk weight must be ≥ 0, got {self.weight}")


def cvar(costs: np.ndarray, probabilities: np.ndarray, alpha: float) -> float:
    """CVaR_alpha of a discrete cost distribution: min over η of η + E[(cost − η)^+] / (1 − alpha)."""
    costs = np.asarray(costs, float)
    return float(min(eta + probabilities @ np.maximum(costs - eta, 0.0) / (1 - alpha) for eta in costs))


def hour_clusters(inst: Instance, k: int) -> np.ndarray:
    """Cluster label per hour: quantile bins of total on-demand-equivalent load, per scenario
    (scenario s's bins are labelled s·k … s·k + k − 1, so no cut mixes scenarios)."""
    load = inst.u @ inst.on_demand
    scenario = inst.hour_scenario
    labels = np.empty(inst.hours, dtype=int)
    for s in range(int(scenario.max()) + 1 if inst.hours else 0):
        rows = np.flatnonzero(scenario == s)
        kk = max(1, min(k, len(rows)))
        ranks = np.argsort(np.argsort(load[rows], kind="stable"), kind="stable")
        labels[rows] = s * k + (ranks * kk) // len(rows)
    return labels


def load_clusters(inst: Instance, k: int) -> np.ndarray:
    """Cluster label per hour: quantile bins of total on-demand-equivalent load over all hours."""
    load = inst.u @ inst.on_demand
    kk = max(1, min(k, inst.hours))
    ranks = np.argsort(np.argsort(load, kind="stable"), kind="stable")
    return (ranks * kk) // max(inst.hours, 1)


class _Cuts:
    """Cuts of each cluster of hours: θ_k ≥ G_k(x̂) + g_k·(x − x̂), i.e. rows [−g_k | e_k] ≥ G_k − g_k·x̂."""

    def __init__(self, inst: Instance, labels: np.ndarray, k: int, risk: RiskSpec | None = None):
        self.inst, self.risk, self.k = inst, risk, k
        H = inst.hours
        self.matrix = sp.csr_matrix((np.ones(H), (labels, np.arange(H))), shape=(self.k, H))

    def at(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate the objective at x; return (value, cluster values, cluster gradients (k × n), marginal costs e)."""
        cov = evaluate(self.inst, x, duals=True)
        values = self.matrix @ cov.on_demand_hourly
        grads = cluster_gradients(self.inst, cov, self.matrix)
        return risk_objective(self.inst, x, cov, self.risk), values, grads, cov.e


def risk_objective(inst: Instance, x: np.ndarray, cov=None, risk: RiskSpec | None = None) -> float:
    """E[cost] + weight · CVaR_alpha[cost] of x (just E[cost] without risk)."""
    cov = cov if cov is not None else evaluate(inst, x, duals=False)
    expected = total_cost(inst, x, cov)
    if risk is None or risk.weight == 0:
        return expected
    return expected + risk.weight * cvar(scenario_costs(inst, x, cov), inst.scenario_weights, risk.alpha)


def scenario_costs(inst: Instance, x: np.ndarray, cov) -> np.ndarray:
    """Total cost of x in each scenario (the on-demand part un-weighted)."""
    w = inst.scenario_weights
    od = np.bincount(inst.hour_scenario, weights=cov.on_demand_hourly, minlength=len(w))
    return inst.existing_cost + float(inst.dec_window_cost @ x) + np.divide(od, w, out=np.zeros_like(od), where=w > 0)


@dataclass(frozen=True)
class LinearLimit:
    """A limit ``coefficients · x ≤ bound`` on the purchase quantities (budgets, term shares)."""

    name: str
    coefficients: np.ndarray
    bound: float

    def holds(self, x: np.ndarray, tol: float = 1e-9) -> bool:
        return float(self.coefficients @ x) <= self.bound + tol * max(1.0, abs(self.bound))


def _static_rows(inst: Instance, k: int, clusters: int, risk: RiskSpec | None, limits: list[LinearLimit]):
    """Rows the master holds from the start: the CVaR rows (with their columns) and the limits."""
    n = inst.n_decisions
    if risk is not None:
        cost, lo, A, rhs = _risk_rows(inst, k, clusters, risk)
    else:
        cost, lo, A, rhs = np.zeros(0), np.zeros(0), np.zeros((0, n + k)), np.zeros(0)
    if limits:
        L = np.zeros((len(limits), A.shape[1]))
        L[:, :n] = -np.array([lim.coefficients for lim in limits])
        A = np.vstack([A, L])
        rhs = np.r_[rhs, [-lim.bound for lim in limits]]
    return cost, lo, A, rhs


def _risk_rows(inst: Instance, k: int, clusters_per_scenario: int, risk: RiskSpec):
    """Columns η (free) and z_s ≥ 0 and rows z_s + η − c·x − Σ_{k∈s} θ_k / w_s ≥ fixed (one per scenario)."""
    w = inst.scenario_weights
    S, n = len(w), inst.n_decisions
    cost = np.r_[risk.weight, risk.weight * w / (1 - risk.alpha)]
    lo = np.r_[-INF, np.zeros(S)]
    A = np.zeros((S, n + k + 1 + S))
    for s in range(S):
        A[s, :n] = -inst.dec_window_cost
        A[s, n + s * clusters_per_scenario : n + (s + 1) * clusters_per_scenario] = -1.0 / w[s] if w[s] > 0 else 0.0
        A[s, n + k] = 1.0
        A[s, n + k + 1 + s] = 1.0
    return cost, lo, A, np.full(S, inst.existing_cost)



def _initial_point(inst: Instance) -> np.ndarray:
    """Reservations at the newsvendor level against on-demand, savings plans at zero."""
    x = np.zeros(inst.n_decisions)
    u = inst.u - inst.existing_ri
    for j in np.flatnonzero(inst.dec_kind == 0):
        p = inst.dec_target[j]
        ratio = inst.dec_unit_cost[j] / inst.on_demand[p]
        if ratio < 1:
            col = u[inst.span(inst.dec_start[j], inst.dec_end[j]), p]
            x[j] = max(0.0, float(np.quantile(col, ratio)))
    # several reservation offerings of one pool share it: keep the cheapest's level only
    for p in np.unique(inst.dec_target[inst.dec_kind == 0]):
        js = np.flatnonzero((inst.dec_kind == 0) & (inst.dec_target == p))
        best = js[np.argmin(inst.dec_unit_cost[js])]
        x[js[js != best]] = 0.0
    return x


class _HighsMaster:
    """Master LP kept alive in HiGHS so each solve warm-starts from the last basis."""

    def __init__(self, inst: Instance, k: int, theta_lo: np.ndarray, risk_rows=None):
        import highspy

        self.h = new_highs()
        self.h.setOptionValue("presolve", "off")  # presolve would discard the warm-start basis
        self.h.setOptionValue("solver", "simplex")
        self.n, self.k = inst.n_decisions, k
        n = self.n
        h = self.h
        cost = np.r_[inst.dec_window_cost, np.ones(k)]
        lo = np.r_[np.zeros(n), theta_lo]
        hi = np.r_[inst.dec_upper, np.full(k, h.getInfinity())]
        h.addVars(n + k, lo, hi)
        h.changeColsCost(n + k, np.arange(n + k, dtype=np.int32), cost)
        self.global_lo, self.global_hi = lo.copy(), hi.copy()
        self.highspy = highspy
        self.extra = 0  # columns after x and θ (risk terms)
        self.static = 0  # rows before the cuts (risk rows)
        if risk_rows is not None:
            cost_r, lo_r, A, rhs_r = risk_rows
            m = len(cost_r)
            inf = h.getInfinity()
            if m:
                h.addVars(m, np.where(np.isinf(lo_r), -inf, lo_r), np.full(m, inf))
                h.changeColsCost(m, np.arange(n + k, n + k + m, dtype=np.int32), cost_r)
            if A.shape[0]:
                M = sp.csr_matrix(A)
                h.addRows(A.shape[0], rhs_r, np.full(A.shape[0], inf), M.nnz, M.indptr[:-1].astype(np.int32), M.indices.astype(np.int32), M.data)
            self.extra, self.static = m, A.shape[0]
        self.rhs = np.zeros(0)
        self.idle = np.zeros(0, dtype=int)  # consecutive solves each cut has been slack

    def add_cuts(self, rows: np.ndarray, rhs: np.ndarray) -> None:
        k, n = rows.shape
        self.rhs = np.r_[self.rhs, rhs]
        self.idle = np.r_[self.idle, np.zeros(k, dtype=int)]
        M = sp.hstack([sp.csr_matrix(rows), sp.identity(k, format="csr"), sp.csr_matrix((k, self.extra))]).tocsr()
        M.eliminate_zeros()
        inf = self.h.getInfinity()
        self.h.addRows(k, rhs, np.full(k, inf), M.nnz, M.indptr[:-1].astype(np.int32), M.indices.astype(np.int32), M.data)

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        n = self.n
        self.h.changeColsBounds(n, np.arange(n, dtype=np.int32), lo, hi)
        self.h.run()
        if self.h.getModelStatus() != self.highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"master LP: {self.h.modelStatusToString(self.h.getModelStatus())}")
        solution = self.h.getSolution()
        sol = np.asarray(solution.col_value)
        value = self.h.getInfo().objective_function_value
        self._forget_idle_cuts(np.asarray(solution.row_value)[self.static :])
        return sol[:n], value

    def _forget_idle_cuts(self, activity: np.ndarray, patience: int = 10, keep: int = 2000) -> None:
        """Drop cuts slack for ``patience`` solves once the pool is large: any subset of valid cuts
        still gives a valid lower bound, and the master stays small enough to re-solve quickly."""
        slack = activity - self.rhs > 1e-9 * np.maximum(1.0, np.abs(self.rhs))
        self.idle = np.where(slack, self.idle + 1, 0)
        if len(self.rhs) <= keep:
            return
        drop = np.flatnonzero(self.idle >= patience)
        if len(drop):
            self.h.deleteRows(len(drop), (drop + self.static).astype(np.int32))
            mask = np.ones(len(self.rhs), dtype=bool)
            mask[drop] = False
            self.rhs, self.idle = self.rhs[mask], self.idle[mask]


class _GenericMaster:
    """Master LP rebuilt and solved from scratch by any backend (OR-Tools, CBC)."""

    def __init__(self, inst: Instance, k: int, theta_lo: np.ndarray, backend: str, risk_rows=None):
        self.inst, self.k, self.backend = inst, k, backend
        self.n = inst.n_decisions
        self.theta_lo = theta_lo
        self.risk_rows = risk_rows
        self.extra = 0 if risk_rows is None else len(risk_rows[0])
        self.rows: list[np.ndarray] = [] if risk_rows is None else [risk_rows[2]]
        self.rhs: list[np.ndarray] = [] if risk_rows is None else [risk_rows[3]]

    def add_cuts(self, rows: np.ndarray, rhs: np.ndarray) -> None:
        self.rows.append(np.hstack([rows, np.eye(self.k), np.zeros((rows.shape[0], self.extra))]))
        self.rhs.append(rhs)

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        A = sp.csr_matrix(np.vstack(self.rows))
        rhs = np.concatenate(self.rhs)
        extra_c, extra_lo = (np.zeros(0), np.zeros(0)) if self.risk_rows is None else self.risk_rows[:2]
        lp = LinearProgram(
            c=np.r_[self.inst.dec_window_cost, np.ones(self.k), extra_c], A=A,
            row_lo=rhs, row_hi=np.full(len(rhs), INF),
            col_lo=np.r_[lo, self.theta_lo, extra_lo], col_hi=np.r_[hi, np.full(self.k + self.extra, INF)],
        )
        res = solve_lp(lp, self.backend)
        if res.status is not LPStatus.OPTIMAL:
            raise RuntimeError(f"master LP ({self.backend}): {res.status.value}")
        return res.x[: self.n], res.objective


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
    cut_pool: dict | None = None,
) -> DecompositionResult:
    """Minimize the (risk) objective of ``inst`` under ``limits`` to a certified ``gap``.

    ``cut_pool``: a dict this call reads cuts from and writes its cuts to, so that a later solve of
    the same instance (other limits or risk weight) starts with them; cuts are kept only while
    the hour clusters are the same.
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
    risky = risk is not None and risk.weight > 0
    S = len(inst.scenario_weights)
    if risky:  # CVaR rows need each scenario's cost: clusters never mix scenarios
        clusters = max(2, -(-clusters // S))
        labels = hour_clusters(inst, clusters)
        k = clusters * S
    else:  # any partition of the hours gives valid cuts: keep the master's width independent of S
        labels = load_clusters(inst, clusters)
        k = clusters
    cuts = _Cuts(inst, labels, k, risk if risky else None)
    limits = list(limits or [])
    rows = _static_rows(inst, k, clusters, risk if risky else None, limits) if risky or limits else None

    def feasible(x: np.ndarray) -> bool:
        return all(lim.holds(x) for lim in limits)
    if backend == "highs":
        # two live masters: the trust-region one moves its bounds every iteration; the unboxed one,
        # which certifies the lower bound, keeps its bounds and so warm-starts well
        master, bound_master = _HighsMaster(inst, k, np.zeros(k), rows), _HighsMaster(inst, k, np.zeros(k), rows)
    else:
        master = bound_master = _GenericMaster(inst, k, np.zeros(k), backend, rows)
    upper_bound = inst.dec_upper.copy()

    polish = NewsvendorLevels(inst)
    last_e = [None]

    def add(rows: np.ndarray, rhs: np.ndarray) -> None:
        master.add_cuts(rows, rhs)
        if bound_master is not master:
            bound_master.add_cuts(rows, rhs)

    key = (k, labels.tobytes().__hash__())
    if cut_pool is not None:
        if cut_pool.get("key") != key:
            cut_pool.clear()
            cut_pool.update(key=key, rows=[])
        for rows_, rhs_ in cut_pool["rows"]:
            add(rows_, rhs_)

    def probe(x: np.ndarray) -> float:
        F, values, grads, e = cuts.at(x)
        add(-grads, values - grads @ x)
        if cut_pool is not None:
            cut_pool["rows"].append((-grads, values - grads @ x))
            del cut_pool["rows"][:-40]  # the latest iterations' cuts: enough to restart near the optimum
        last_e[0] = e
        return F

    def polished(x: np.ndarray) -> np.ndarray:
        """x with each pool's reservation at its newsvendor level for the current marginal costs."""
        y = x.copy()
        y[polish.decisions] = np.minimum(polish.levels(last_e[0]), upper_bound[polish.decisions])
        return y

    best_x = np.clip(_initial_point(inst) if x0 is None else np.asarray(x0, float), 0, upper_bound)
    if not feasible(best_x):
        probe(best_x)  # its cuts are valid anyway
        best_x = np.zeros(n)  # buying nothing meets every limit on purchases ...
        if not feasible(best_x):  # ... but not a coverage minimum: start from the unboxed master's point
            best_x, _ = bound_master.solve(np.zeros(n), upper_bound)
            best_x = np.clip(best_x, 0, upper_bound)
    best_F = probe(best_x)
    probe(np.zeros(n))
    probe(upper_bound * 0.5)
    lower = -np.inf
    scale = np.maximum(upper_bound, 1e-9)
    radius = 0.25
    history = []
    status = "iteration_limit"
    it = 0
    for it in range(1, max_iterations + 1):
        lo = np.maximum(0.0, best_x - radius * scale)
        hi = np.minimum(upper_bound, best_x + radius * scale)
        x_m, model_val = master.solve(lo, hi)
        tol = 1e-9 * scale
        box_active = np.any((x_m <= lo + tol) & (lo > tol)) or np.any((x_m >= hi - tol) & (hi < upper_bound - tol))
        if not box_active:
            lower = max(lower, fixed + model_val)
        elif best_F - (fixed + model_val) <= gap * abs(best_F) or it % 5 == 0:
            _, global_val = bound_master.solve(np.zeros(n), upper_bound)
            lower = max(lower, fixed + global_val)
        F = probe(x_m)
        if use_polish and len(polish.decisions):
            x_p = polished(x_m)
            F_p = probe(x_p)
            if F_p < F and feasible(x_p):
                x_m, F = x_p, F_p
        predicted = best_F - (fixed + model_val)
        if F < best_F - 0.1 * max(predicted, 0.0) or F < best_F - 1e-12 * abs(best_F) and predicted <= 0:
            if box_active and F < best_F - 0.5 * predicted:
                radius = min(1.0, radius * 2)
            best_x, best_F = x_m, F
        else:
            radius = max(1e-4, radius * 0.5)
        history.append((time.perf_counter() - t0, lower, best_F))
        if progress:
            progress(it, lower, best_F)
        if best_F - lower <= gap * abs(best_F):
            status = "optimal"
            break
        if time.perf_counter() - t0 > time_limit:
            status = "time_limit"
            break
    return DecompositionResult(best_x, best_F, lower, it, time.perf_counter() - t0, status, history)
