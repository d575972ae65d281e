"""The decomposition's master LP: columns [x | C | θ | risk terms].

``x`` are the purchase quantities, ``C = link @ x`` the capacity of each pool and savings-plan
layer per time segment (:mod:`solver.segments`), ``θ_k`` the modelled on-demand cost of cluster k
of hours. Cuts ``θ_k ≥ G_k(Ĉ) + g_k·(C − Ĉ)`` touch only the capacities of their cluster's
segment; linear limits (budgets, term shares, coverage tangents) and the CVaR rows act on x.

A master outlives one solve: the rounds of :func:`solver.constrained.solve_rows` change only the
limit rows, the capacity caps and (between risk weights) the CVaR columns' costs, and a master
that keeps its cuts and basis through those changes re-solves in a few hundred simplex iterations
where a new one took thousands (200 pools: ~4,000 per cold start, ten cold starts per plan).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.backends import INF, LinearProgram, LPStatus, new_highs, solve_lp

log = logging.getLogger("commitplan.solver")


@dataclass
class MasterModel:
    n: int  # purchase columns
    m: int  # capacity columns
    k: int  # cluster columns
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    rows: sp.csr_matrix  # static rows: capacity links and CVaR rows
    row_lo: np.ndarray
    row_hi: np.ndarray

    @property
    def width(self) -> int:
        return len(self.cost)

    def limit_rows(self, A: sp.csr_matrix) -> sp.csr_matrix:
        """Rows [A | 0] of limits over the purchase quantities."""
        return sp.hstack([sp.csr_matrix(A), sp.csr_matrix((A.shape[0], self.width - self.n))]).tocsr()

    def cut_rows(self, grads: sp.csr_matrix) -> sp.csr_matrix:
        """Rows [0 | −g_k | e_k | 0] of cuts with capacity gradients ``grads`` (K × m)."""
        K = grads.shape[0]
        tail = self.width - self.n - self.m - self.k
        return sp.hstack([sp.csr_matrix((K, self.n)), -grads, sp.identity(K, format="csr"), sp.csr_matrix((K, tail))]).tocsr()


def master_model(dec_cost: np.ndarray, upper: np.ndarray, steps: tuple[sp.csr_matrix, sp.csr_matrix], k: int,
                 risk_rows: tuple | None, cap_upper: np.ndarray | None = None) -> MasterModel:
    """``steps``: the capacity links as (P, D) with ``(I − P) C = D x`` (:meth:`CapacitySegments.steps`);
    ``risk_rows``: (cost, lo, A over [x | θ | risk terms], rhs) as rows ≥ rhs; ``cap_upper``: the
    most capacity each capacity column may hold."""
    P, D = steps
    n, m = len(dec_cost), D.shape[0]
    extra_c, extra_lo = (np.zeros(0), np.zeros(0)) if risk_rows is None else risk_rows[:2]
    e = len(extra_c)
    cost = np.r_[dec_cost, np.zeros(m), np.ones(k), extra_c]
    lo = np.r_[np.zeros(n), np.zeros(m), np.zeros(k), extra_lo]
    hi = np.full(len(cost), INF)
    hi[:n] = upper
    if cap_upper is not None:
        hi[n : n + m] = cap_upper
    blocks = [sp.hstack([-D, sp.identity(m, format="csr") - P, sp.csr_matrix((m, k + e))])]  # (I − P) C − D x = 0
    lows, highs = [np.zeros(m)], [np.zeros(m)]
    if risk_rows is not None and risk_rows[2].shape[0]:
        A = sp.csr_matrix(risk_rows[2])  # over [x | θ | extra]: insert the capacity block
        blocks.append(sp.hstack([A[:, :n], sp.csr_matrix((A.shape[0], m)), A[:, n:]]))
        lows.append(risk_rows[3])
        highs.append(np.full(A.shape[0], INF))
    rows = sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, len(cost)))
    return MasterModel(n, m, k, cost, lo, hi, rows, np.concatenate(lows), np.concatenate(highs))


def _finite(v: np.ndarray, inf: float) -> np.ndarray:
    return np.clip(v, -inf, inf)


KEEP_CUTS, PATIENCE = 300, 2
"""Once a master holds more than ``KEEP_CUTS`` cuts, cuts slack in ``PATIENCE`` solves in a row are
dropped. Each simplex iteration costs in proportion to the cut rows (a cut touches every pool of
its month): at 200 pools × 12 dates the masters held 1,500–4,500 cuts at 0.6–2 ms per iteration
with the earlier 2,000 and 10; with 300 and 2 the every-limit plan's master LP time fell from
~60 s to ~21 s while its iterations stayed level (patience 1 doubled them)."""


class HighsMaster:
    """Master LP kept alive in HiGHS so each solve warm-starts from the last basis.

    Rows after the static ones are cuts and limits, in the order they came; ``keys`` names each
    limit row (None for a cut), so that :meth:`set_limits` touches only the limits that changed."""

    def __init__(self, model: MasterModel):
        import highspy

        self.highspy = highspy
        self.model = model
        self.h = h = new_highs()
        h.setOptionValue("presolve", "off")  # presolve would discard the warm-start basis
        h.setOptionValue("solver", "simplex")
        inf = h.getInfinity()
        h.addVars(model.width, _finite(model.col_lo, inf), _finite(model.col_hi, inf))
        h.changeColsCost(model.width, np.arange(model.width, dtype=np.int32), model.cost)
        M = model.rows
        if M.shape[0]:
            h.addRows(M.shape[0], _finite(model.row_lo, inf), _finite(model.row_hi, inf), M.nnz,
                      M.indptr[:-1].astype(np.int32), M.indices.astype(np.int32), M.data)
        self.static = M.shape[0]
        self.rhs = np.zeros(0)  # per row after the static ones: its lower side
        self.idle = np.zeros(0, dtype=int)  # consecutive solves each cut has been slack
        self.keys: list = []  # per row after the static ones: the limit's key, None for a cut
        self.columns = np.zeros(0)  # every column's value in the last solve

    def _add(self, M: sp.csr_matrix, lo: np.ndarray, keys: list) -> None:
        M = M.tocsr()
        M.eliminate_zeros()
        K = M.shape[0]
        self.rhs = np.r_[self.rhs, lo]
        self.idle = np.r_[self.idle, np.zeros(K, dtype=int)]
        self.keys.extend(keys)
        inf = self.h.getInfinity()
        self.h.addRows(K, _finite(lo, inf), np.full(K, inf), M.nnz, M.indptr[:-1].astype(np.int32),
                       M.indices.astype(np.int32), M.data)

    def _delete(self, drop: np.ndarray) -> None:
        if not len(drop):
            return
        self.h.deleteRows(len(drop), (drop + self.static).astype(np.int32))
        mask = np.ones(len(self.rhs), dtype=bool)
        mask[drop] = False
        self.rhs, self.idle = self.rhs[mask], self.idle[mask]
        self.keys = [k for k, m in zip(self.keys, mask) if m]

    def add_cuts(self, rows: sp.csr_matrix, rhs: np.ndarray) -> None:
        self._add(self.model.cut_rows(rows), rhs, [None] * rows.shape[0])

    def set_limits(self, keys: list, A: sp.csr_matrix, lo: np.ndarray) -> None:
        """Hold exactly the limit rows ``A x ≥ lo`` named by ``keys``: rows already held stay."""
        wanted = set(keys)
        self._delete(np.array([i for i, k in enumerate(self.keys) if k is not None and k not in wanted], dtype=int))
        held = {k for k in self.keys if k is not None}
        new = [i for i, k in enumerate(keys) if k not in held]
        if new:
            self._add(self.model.limit_rows(sp.csr_matrix(A)[new]), np.asarray(lo, float)[new], [keys[i] for i in new])

    def set_columns(self, cost: np.ndarray, col_hi: np.ndarray) -> None:
        """New costs (a risk weight) and upper bounds (capacity caps) of the columns after x."""
        n, w = self.model.n, self.model.width
        idx = np.arange(n, w, dtype=np.int32)
        self.h.changeColsCost(w - n, idx, cost[n:])
        inf = self.h.getInfinity()
        self.h.changeColsBounds(w - n, idx, _finite(self.model.col_lo[n:], inf), _finite(col_hi[n:], inf))

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        """Minimize with the first ``len(lo)`` columns (x, then the capacities) in [lo, hi]."""
        n, k = self.model.n, len(lo)
        inf = self.h.getInfinity()
        self.h.changeColsBounds(k, np.arange(k, dtype=np.int32), lo, _finite(hi, inf))
        self._run()
        solution = self.h.getSolution()
        sol = np.asarray(solution.col_value)
        value = self.h.getInfo().objective_function_value
        self._forget_idle_cuts(np.asarray(solution.row_value)[self.static :])
        self.columns = sol
        return sol[:n], value

    def row_dual(self, i: int) -> float:
        """The multiplier of row ``i`` (static rows first) in the last solve."""
        return float(self.h.getSolution().row_dual[i])

    def set_static_lower(self, i: int, lo: float) -> None:
        """Move the lower side of static row ``i`` (a CVaR limit's aim)."""
        self.h.changeRowBounds(i, lo, self.h.getInfinity())

    def _run(self) -> None:
        """Solve from the last basis; when simplex stalls on it (status Unknown — seen at 200 pools ×
        180 days after cuts were dropped), solve again from scratch, then with presolve."""
        optimal = self.highspy.HighsModelStatus.kOptimal
        self.h.run()
        if self.h.getModelStatus() == optimal:
            return
        first = self.h.modelStatusToString(self.h.getModelStatus())
        log.info("master LP: %s from the warm start; solving again from scratch", first)
        self.h.clearSolver()  # forget the basis
        self.h.run()
        if self.h.getModelStatus() != optimal:
            self.h.clearSolver()
            self.h.setOptionValue("presolve", "on")
            try:
                self.h.run()
            finally:
                self.h.setOptionValue("presolve", "off")
        if self.h.getModelStatus() != optimal:
            raise RuntimeError(f"master LP: {first}, then {self.h.modelStatusToString(self.h.getModelStatus())} "
                               "solved from scratch")

    def _forget_idle_cuts(self, activity: np.ndarray) -> None:
        """Drop cuts slack for ``PATIENCE`` solves once the pool is large: any subset of valid cuts
        still gives a valid lower bound, and the master stays small enough to re-solve quickly."""
        slack = activity - self.rhs > 1e-9 * np.maximum(1.0, np.abs(self.rhs))
        is_cut = np.array([k is None for k in self.keys], dtype=bool)
        self.idle = np.where(slack & is_cut, self.idle + 1, 0)
        if int(is_cut.sum()) <= KEEP_CUTS:
            return
        self._delete(np.flatnonzero(self.idle >= PATIENCE))


class GenericMaster:
    """Master LP rebuilt and solved from scratch by any backend (OR-Tools, CBC)."""

    def __init__(self, model: MasterModel, backend: str):
        self.model, self.backend = model, backend
        self.cost, self.col_hi = model.cost.copy(), model.col_hi.copy()
        self.rows: list[sp.csr_matrix] = []
        self.lo: list[np.ndarray] = []
        self.limits = (sp.csr_matrix((0, model.width)), np.zeros(0))
        self.row_lo = model.row_lo.copy()
        self.columns = np.zeros(0)

    def add_cuts(self, rows: sp.csr_matrix, rhs: np.ndarray) -> None:
        self.rows.append(self.model.cut_rows(rows))
        self.lo.append(rhs)

    def set_limits(self, keys: list, A: sp.csr_matrix, lo: np.ndarray) -> None:
        self.limits = (self.model.limit_rows(sp.csr_matrix(A)), np.asarray(lo, float))

    def set_columns(self, cost: np.ndarray, col_hi: np.ndarray) -> None:
        n = self.model.n
        self.cost[n:], self.col_hi[n:] = cost[n:], col_hi[n:]

    def row_dual(self, i: int) -> None:
        """Not read from these backends: a CVaR limit's penalty then keeps its starting value."""
        return None

    def set_static_lower(self, i: int, lo: float) -> None:
        self.row_lo[i] = lo

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        mdl = self.model
        col_lo, col_hi = mdl.col_lo.copy(), self.col_hi.copy()
        col_lo[: len(lo)], col_hi[: len(lo)] = lo, hi
        extra = [self.limits[0]] + self.rows
        lp = LinearProgram(c=self.cost, A=sp.vstack([mdl.rows] + extra).tocsr(),
                           row_lo=np.concatenate([self.row_lo, self.limits[1]] + self.lo),
                           row_hi=np.concatenate([mdl.row_hi] + [np.full(M.shape[0], INF) for M in extra]),
                           col_lo=col_lo, col_hi=col_hi)
        res = solve_lp(lp, self.backend)
        if res.status is not LPStatus.OPTIMAL:
            raise RuntimeError(f"master LP ({self.backend}): {res.status.value}")
        self.columns = res.x
        return res.x[: mdl.n], res.objective
