"""The rounding repair's MIP finds the cheapest sellable point near x meeting every linear row (brute force)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from solver.repair import floor_or_ceil


@pytest.mark.parametrize("seed", range(8))
def test_floor_or_ceil_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 4
    inc = rng.choice([0.25, 1.0, 0.001], n)
    x = rng.uniform(0.5, 4.0, n)
    x[rng.integers(n)] = 0.0  # not bought: stays at zero
    A = rng.normal(size=(3, n))
    b = A @ x + rng.uniform(0.0, 0.05, 3)  # x itself meets every row, with little slack
    cost = rng.normal(size=n)
    q = floor_or_ceil(x, inc, cost, sp.csr_matrix(A), b, reach=2)
    down = np.floor(x / inc + 1e-9) * inc
    choices = []
    for z in itertools.product(*[range(-2, 4) if x[j] > 0 else [0] for j in range(n)]):
        cand = down + np.array(z) * inc
        if np.all(cand >= 0) and np.all((np.array(z) <= 2) | (np.ceil(x / inc - 1e-9) * inc > down)) and np.all(A @ cand <= b + 1e-9):
            choices.append((float(cost @ cand), cand))
    if not choices:
        assert q is None
        return
    best = min(c for c, _ in choices)
    assert q is not None
    assert np.all(A @ q <= b + 1e-7)
    assert float(cost @ q) == pytest.approx(best, abs=1e-6 + 1e-4 * abs(best))
    assert np.all(q[x == 0] == 0)
