"""A sellable start that meets every linear limit at once: a small MIP over the increments near x.

Rounding each quantity to its nearest sellable neighbour can break a limit that binds at the
continuous optimum, and when several bind together (an upfront budget, a share of 3-year terms and a
coverage minimum, say) no single rule — all down, all up, down where a limit's coefficient is
positive — meets them all. Here each bought quantity moves a few increments around its floor and
ceiling (an integer), subject to the linear limits, the linearized coverage band and the utilization floors' capacity
caps, at the least linearized cost. The exact checks then judge the result; a coverage minimum
missed because of the linearization is retried with the shortfall added as a margin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from solver.backends import new_highs

MIP_NODES = 1000
"""Branch-and-bound nodes the start's MIP may take before it answers with what it has (at 200 pools
x 12 dates the root answers; presolved, it took 306 nodes)."""


def floor_or_ceil(x: np.ndarray, inc: np.ndarray, cost: np.ndarray, A: sp.csr_matrix, b: np.ndarray,
                  reach: int = 2) -> np.ndarray | None:
    """Sellable q within ``reach`` increments of x's floor or ceiling (q_j = floor_j + z_j·inc_j,
    z_j integer in [−reach, 1 + reach], q ≥ 0), with A q ≤ b at the least cost·q; None when none does.
    Only quantities bought (x_j > 0) move: the others stay at zero."""
    import highspy

    down = np.maximum(np.floor(x / inc + 1e-9), 0.0) * inc
    up = np.ceil(x / inc - 1e-9) * inc
    free = np.flatnonzero(x > 0)
    if not len(free):
        return down if np.all(A @ down <= b + 1e-9 * np.maximum(1.0, np.abs(b))) else None
    rhs = b - A @ down
    M = (A[:, free] @ sp.diags(inc[free])).tocsr()
    h = new_highs()
    n = len(free)
    inf = h.getInfinity()
    low = np.maximum(-reach, -np.round(down[free] / inc[free]))
    high = np.where(up[free] > down[free], 1 + reach, reach)
    h.addVars(n, low, high)
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost[free] * inc[free])
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.full(n, highspy.HighsVarType.kInteger))
    h.addRows(M.shape[0], np.full(M.shape[0], -inf), rhs, M.nnz, M.indptr[:-1].astype(np.int32), M.indices.astype(np.int32), M.data)
    # a good start is enough: the rounding's exact search improves on it. The limits are counts,
    # not seconds, so that the plan does not depend on the machine's load; without presolve the
    # root finds a start (at 200 pools x 12 dates, presolve took 306 nodes and 4.6 s to find the
    # same start the root finds in 1.7 s without it)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("mip_max_nodes", MIP_NODES)
    h.setOptionValue("mip_rel_gap", 1e-2)
    h.run()
    if h.getInfo().primal_solution_status != 2:  # no feasible solution found
        return None
    z = np.round(np.asarray(h.getSolution().col_value))
    q = down.copy()
    q[free] += z * inc[free]
    return q


def repair(x: np.ndarray, inc: np.ndarray, cost: np.ndarray, rows: Callable[[np.ndarray], tuple[sp.csr_matrix, np.ndarray]],
           feasible: Callable[[np.ndarray], bool], shortfall: Callable[[np.ndarray], np.ndarray], tries: int = 8) -> np.ndarray | None:
    """A start near x meeting ``feasible``. ``rows(margins)`` gives the linear rows with each
    linearized limit (coverage minimum, CVaR limit) tightened by its margin; ``shortfall(q)`` how far
    q misses each of them, exactly measured. A miss is retried with twice it added to its margin;
    margins too tight for any start within reach are halved back towards the last that missed (the
    window between is narrow: at 200 pools, a CVaR limit missed by 391 $ at margin 0 held only with
    margins of about 450–550 $)."""
    margins = np.zeros(len(shortfall(x)))
    missed, infeasible = margins, None  # the largest margins known to miss, the least known to leave no start
    for _ in range(tries):
        A, b = rows(margins)
        q = floor_or_ceil(x, inc, cost, A, b)
        if q is None:
            if not margins.any():
                return None
            infeasible = margins
            margins = (missed + infeasible) / 2
            continue
        if feasible(q):
            return q
        short = shortfall(q)
        if np.all(short <= 0):
            return None  # something other than the linearized limits fails: no use raising the margins
        missed = margins
        margins = margins + np.where(short > 0, 2 * short + 1e-7 * np.maximum(1.0, np.abs(margins)), 0.0)
        if infeasible is not None:
            margins = np.minimum(margins, (missed + infeasible) / 2)
    return None
