"""The compiled billing kernel agrees with the NumPy reference path, and the polish levels are newsvendor levels."""

from __future__ import annotations

import numpy as np
import pytest

from solver.coverage import evaluate, evaluate_numpy
from solver.instance import build_instance
from solver.newsvendor import NewsvendorLevels
from tests.factories import random_prices, random_usage
from tests.test_solver_exactness import existing_for


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    usage = random_usage(rng, 7, 150)
    prices = random_prices(rng, usage.pools)
    inst = build_instance(usage, prices, existing_for(usage, prices))
    x = rng.uniform(0, 1, inst.n_decisions) * inst.dec_upper * rng.choice([0, 1], inst.n_decisions)
    fast, ref = evaluate(inst, x), evaluate_numpy(inst, x)
    for name in ("residual", "sp_used", "on_demand_hourly", "e", "pi", "lam", "sp_need"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("prune", [True, False])
def test_newsvendor_levels_match_a_direct_computation(prune: bool):
    """Pruned: one reservation per pool; unpruned (as on a ladder): several per pool share one walk."""
    rng = np.random.default_rng(5)
    usage = random_usage(rng, 6, 120)
    inst = build_instance(usage, random_prices(rng, usage.pools), prune_dominated=prune)
    e = rng.uniform(0, 0.5, usage.values.shape)
    nv = NewsvendorLevels(inst)
    assert prune or len(nv.decisions) > len(set(nv.pools.tolist()))
    levels = nv.levels(e)
    for j, p, c, level in zip(nv.decisions, nv.pools, nv.cost, levels):
        u = inst.u[:, p]
        candidates = np.unique(np.r_[0.0, u])
        costs = [c * R + float(e[:, p] @ np.maximum(u - R, 0)) for R in candidates]
        assert c * level + float(e[:, p] @ np.maximum(u - level, 0)) == pytest.approx(min(costs), rel=1e-12, abs=1e-12)
