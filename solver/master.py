"""The decomposition's master LP: columns [x | C | θ | risk terms].

``x`` are the purchase quantities, ``C = link @ x`` the capacity of each pool and savings-plan
layer per time segment (:mod:`solver.segments`), ``θ_k`` the modelled on-demand cost of cluster k
of hours. Cuts ``θ_k ≥ G_k(Ĉ) + g_k·(C − Ĉ)`` touch only the capacities of their cluster's
segment; linear limits (budgets, term shares, coverage tangents) and the CVaR rows act on x.
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
    rows: sp.csr_matrix  # static rows: capacity links, CVaR rows, limits
    row_lo: np.ndarray
    row_hi: np.ndarray

    @property
    def width(self) -> int:
        return len(self.cost)

    def cut_rows(self, grads: sp.csr_matrix) -> sp.csr_matrix:
        """Rows [0 | −g_k | e_k | 0] of cuts with capacity gradients ``grads`` (K × m)."""
        K = grads.shape[0]
        tail = self.width - self.n - self.m - self.k
        return sp.hstack([sp.csr_matrix((K, self.n)), -grads, sp.identity(K, format="csr"), sp.csr_matrix((K, tail))]).tocsr()


def master_model(dec_cost: np.ndarray, upper: np.ndarray, link: sp.csr_matrix, k: int,
                 risk_rows: tuple | None, limit_rows: tuple | None, cap_upper: np.ndarray | None = None) -> MasterModel:
    """``risk_rows``: (cost, lo, A over [x | θ | risk terms], rhs); ``limit_rows``: (A over x, rhs),
    both as rows ≥ rhs; ``cap_upper``: the most capacity each capacity column may hold."""
    n, m = len(dec_cost), link.shape[0]
    extra_c, extra_lo = (np.zeros(0), np.zeros(0)) if risk_rows is None else risk_rows[:2]
    e = len(extra_c)
    cost = np.r_[dec_cost, np.zeros(m), np.ones(k), extra_c]
    lo = np.r_[np.zeros(n), np.zeros(m), np.zeros(k), extra_lo]
    hi = np.full(len(cost), INF)
    hi[:n] = upper
    if cap_upper is not None:
        hi[n : n + m] = cap_upper
    blocks = [sp.hstack([-link, sp.identity(m, format="csr"), sp.csr_matrix((m, k + e))])]  # C − link·x = 0
    lows, highs = [np.zeros(m)], [np.zeros(m)]
    if risk_rows is not None and risk_rows[2].shape[0]:
        A = sp.csr_matrix(risk_rows[2])  # over [x | θ | extra]: insert the capacity block
        blocks.append(sp.hstack([A[:, :n], sp.csr_matrix((A.shape[0], m)), A[:, n:]]))
        lows.append(risk_rows[3])
        highs.append(np.full(A.shape[0], INF))
    if limit_rows is not None and limit_rows[0].shape[0]:
        A = sp.csr_matrix(limit_rows[0])
        blocks.append(sp.hstack([A, sp.csr_matrix((A.shape[0], m + k + e))]))
        lows.append(limit_rows[1])
        highs.append(np.full(A.shape[0], INF))
    rows = sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, len(cost)))
    return MasterModel(n, m, k, cost, lo, hi, rows, np.concatenate(lows), np.concatenate(highs))


def _finite(v: np.ndarray, inf: float) -> np.ndarray:
    return np.clip(v, -inf, inf)


class HighsMaster:
    """Master LP kept alive in HiGHS so each solve warm-starts from the last basis."""

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
        self.rhs = np.zeros(0)
        self.idle = np.zeros(0, dtype=int)  # consecutive solves each cut has been slack
        self.keep = max(2000, 12 * model.k)

    def add_cuts(self, rows: sp.csr_matrix, rhs: np.ndarray) -> None:
        K = rows.shape[0]
        self.rhs = np.r_[self.rhs, rhs]
        self.idle = np.r_[self.idle, np.zeros(K, dtype=int)]
        M = self.model.cut_rows(rows)
        M.eliminate_zeros()
        inf = self.h.getInfinity()
        self.h.addRows(K, rhs, np.full(K, inf), M.nnz, M.indptr[:-1].astype(np.int32), M.indices.astype(np.int32), M.data)

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        n = self.model.n
        self.h.changeColsBounds(n, np.arange(n, dtype=np.int32), lo, hi)
        self._run()
        solution = self.h.getSolution()
        sol = np.asarray(solution.col_value)
        value = self.h.getInfo().objective_function_value
        self._forget_idle_cuts(np.asarray(solution.row_value)[self.static :])
        return sol[:n], value

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

    def _forget_idle_cuts(self, activity: np.ndarray, patience: int = 10) -> None:
        """Drop cuts slack for ``patience`` solves once the pool is large: any subset of valid cuts
        still gives a valid lower bound, and the master stays small enough to re-solve quickly."""
        slack = activity - self.rhs > 1e-9 * np.maximum(1.0, np.abs(self.rhs))
        self.idle = np.where(slack, self.idle + 1, 0)
        if len(self.rhs) <= self.keep:
            return
        drop = np.flatnonzero(self.idle >= patience)
        if len(drop):
            self.h.deleteRows(len(drop), (drop + self.static).astype(np.int32))
            mask = np.ones(len(self.rhs), dtype=bool)
            mask[drop] = False
            self.rhs, self.idle = self.rhs[mask], self.idle[mask]


class GenericMaster:
    """Master LP rebuilt and solved from scratch by any backend (OR-Tools, CBC)."""

    def __init__(self, model: MasterModel, backend: str):
        self.model, self.backend = model, backend
        self.rows: list[sp.csr_matrix] = [model.rows]
        self.lo: list[np.ndarray] = [model.row_lo]
        self.hi: list[np.ndarray] = [model.row_hi]

    def add_cuts(self, rows: sp.csr_matrix, rhs: np.ndarray) -> None:
        self.rows.append(self.model.cut_rows(rows))
        self.lo.append(rhs)
        self.hi.append(np.full(len(rhs), INF))

    def solve(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
        mdl = self.model
        col_lo, col_hi = mdl.col_lo.copy(), mdl.col_hi.copy()
        col_lo[: mdl.n], col_hi[: mdl.n] = lo, hi
        lp = LinearProgram(c=mdl.cost, A=sp.vstack(self.rows).tocsr(), row_lo=np.concatenate(self.lo),
                           row_hi=np.concatenate(self.hi), col_lo=col_lo, col_hi=col_hi)
        res = solve_lp(lp, self.backend)
        if res.status is not LPStatus.OPTIMAL:
            raise RuntimeError(f"master LP ({self.backend}): {res.status.value}")
        return res.x[: mdl.n], res.objective
