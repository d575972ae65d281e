"""One interface over the LP solvers: HiGHS (highspy), OR-Tools (GLOP) and PuLP+CBC.

A problem is given in matrix form: minimize ``c·x`` subject to ``row_lo ≤ A x ≤ row_hi`` and
``col_lo ≤ x ≤ col_hi``. Backends read values in bulk, check the status before reading,
and map native statuses onto :class:`LPStatus`.
"""

from __future__ import annotations

import contextlib
import os
import sys

from dataclasses import dataclass
from enum import Enum

import numpy as np
import scipy.sparse as sp

INF = float("inf")
BACKENDS = ("highs", "ortools", "cbc")


class LPStatus(str, Enum):
    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"


@dataclass
class LinearProgram:
    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    offset: float = 0.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape


@dataclass
class LPResult:
    status: LPStatus
    objective: float
    x: np.ndarray


class SolverError(RuntimeError):
    pass


def solve_lp(lp: LinearProgram, backend: str = "highs", method: str = "choose") -> LPResult:
    """Solve ``lp``; ``method`` picks HiGHS's algorithm (choose, simplex, ipm) and is ignored elsewhere."""
    if backend == "highs":
        return _solve_highs(lp, method)
    if backend == "ortools":
        return _solve_ortools(lp)
    if backend == "cbc":
        return _solve_cbc(lp)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def _finite(a: np.ndarray, big: float) -> np.ndarray:
    return np.clip(np.nan_to_num(a, posinf=big, neginf=-big), -big, big)


def new_highs(threads: int | None = None):
    """A silent HiGHS instance (its copyright banner would otherwise land on our stdout)."""
    import highspy

    with _quiet_stdout():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    if threads:
        h.setOptionValue("threads", threads)
    return h


@contextlib.contextmanager
def _quiet_stdout():
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _solve_highs(lp: LinearProgram, method: str = "choose") -> LPResult:
    import highspy

    h = new_highs()
    h.setOptionValue("solver", method)
    inf = h.getInfinity()
    A = lp.A.tocsc()
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = A.shape[1], A.shape[0]
    model.col_cost_ = lp.c.astype(float)
    model.col_lower_ = _finite(lp.col_lo, inf)
    model.col_upper_ = _finite(lp.col_hi, inf)
    model.row_lower_ = _finite(lp.row_lo, inf)
    model.row_upper_ = _finite(lp.row_hi, inf)
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = A.indptr
    model.a_matrix_.index_ = A.indices
    model.a_matrix_.value_ = A.data
    model.offset_ = lp.offset
    h.passModel(model)
    h.run()
    status = h.getModelStatus()
    mapped = {
        highspy.HighsModelStatus.kOptimal: LPStatus.OPTIMAL,
        highspy.HighsModelStatus.kInfeasible: LPStatus.INFEASIBLE,
        highspy.HighsModelStatus.kUnbounded: LPStatus.UNBOUNDED,
        highspy.HighsModelStatus.kUnboundedOrInfeasible: LPStatus.INFEASIBLE,
    }.get(status, LPStatus.ERROR)
    if mapped is not LPStatus.OPTIMAL:
        return LPResult(mapped, float("nan"), np.full(A.shape[1], np.nan))
    sol = h.getSolution()
    return LPResult(mapped, h.getInfo().objective_function_value, np.asarray(sol.col_value))


def _solve_ortools(lp: LinearProgram) -> LPResult:
    from ortools.linear_solver.python import model_builder as mb

    model = mb.Model()
    model.helper.fill_model_from_sparse_data(
        np.asarray(lp.col_lo, float),
        np.asarray(lp.col_hi, float),
        np.asarray(lp.c, float),
        np.asarray(lp.row_lo, float),
        np.asarray(lp.row_hi, float),
        sp.csr_matrix(lp.A, dtype=float),
    )
    solver = mb.Solver("glop")
    status = solver.solve(model)
    mapped = {
        mb.SolveStatus.OPTIMAL: LPStatus.OPTIMAL,
        mb.SolveStatus.INFEASIBLE: LPStatus.INFEASIBLE,
        mb.SolveStatus.UNBOUNDED: LPStatus.UNBOUNDED,
    }.get(status, LPStatus.ERROR)
    if mapped is not LPStatus.OPTIMAL:
        return LPResult(mapped, float("nan"), np.full(lp.A.shape[1], np.nan))
    x = np.array([solver.value(model.var_from_index(i)) for i in range(lp.A.shape[1])])
    return LPResult(mapped, float(solver.objective_value) + lp.offset, x)


def _solve_cbc(lp: LinearProgram) -> LPResult:
    import pulp

    n = lp.A.shape[1]
    prob = pulp.LpProblem("commitplan", pulp.LpMinimize)
    big = 1e30
    xs = [
        pulp.LpVariable(
            f"x{i}",
            lowBound=None if lp.col_lo[i] <= -big else float(lp.col_lo[i]),
            upBound=None if lp.col_hi[i] >= big else float(lp.col_hi[i]),
        )
        for i in range(n)
    ]
    prob += pulp.lpSum(float(lp.c[i]) * xs[i] for i in np.flatnonzero(lp.c)) + lp.offset
    A = lp.A.tocsr()
    for r in range(A.shape[0]):
        lo, hi = A.indptr[r], A.indptr[r + 1]
        expr = pulp.lpSum(float(v) * xs[j] for j, v in zip(A.indices[lo:hi], A.data[lo:hi]))
        rlo, rhi = lp.row_lo[r], lp.row_hi[r]
        if rlo == rhi:
            prob += expr == float(rlo)
        else:
            if rlo > -big:
                prob += expr >= float(rlo)
            if rhi < big:
                prob += expr <= float(rhi)
    prob.solve(pulp.PULP_CBC_CMD(msg=False))
    mapped = {1: LPStatus.OPTIMAL, -1: LPStatus.INFEASIBLE, -2: LPStatus.UNBOUNDED}.get(prob.status, LPStatus.ERROR)
    if mapped is not LPStatus.OPTIMAL:
        return LPResult(mapped, float("nan"), np.full(n, np.nan))
    x = np.array([v.value() or 0.0 for v in xs])
    return LPResult(mapped, float(pulp.value(prob.objective)), x)
