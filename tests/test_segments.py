"""Capacity per time segment (the master's view of purchases) and utilization floors as caps."""

from __future__ import annotations

import numpy as np
import pytest

from solver.coverage import capacities, evaluate
from solver.nonlinear_limits import FloorCaps, _fill_level
from solver.segments import CapacitySegments
from solver.stochastic import build_scenario_instance
from tests.factories import scaled_scenarios


def _laddered(seed: int):
    rng, scenarios, prices = scaled_scenarios(seed, 3, 4, 240, 0.5, 1.4)
    inst = build_scenario_instance(scenarios, [0.2, 0.5, 0.3], prices, prune_dominated=False, purchase_hours=(0, 50, 130))
    return rng, inst


@pytest.mark.parametrize("seed,bought", [(0, 1.0), (1, 1.0), (2, 1.0), (3, 0.3), (4, 0.1)])
def test_segment_capacities_equal_the_hourly_capacities(seed, bought):
    """``bought``: share of decisions with a quantity (the hourly capacities are summed per stretch
    between the starts and ends of the decisions bought, the segments over every decision)."""
    rng, inst = _laddered(seed)
    seg = CapacitySegments.of(inst)
    x = rng.uniform(0, 1, inst.n_decisions) * inst.dec_upper * (rng.uniform(size=inst.n_decisions) < bought)
    ri_cap, sp_cap = capacities(inst, x)
    C = seg.link @ x
    for c in range(seg.m):
        hours = seg.hour_segment == seg.col_segment[c]
        hourly = ri_cap[hours, seg.col_target[c]] - inst.existing_ri[hours, seg.col_target[c]] if seg.col_kind[c] == 0 \
            else sp_cap[hours, seg.col_target[c]] - inst.existing_sp[hours, seg.col_target[c]]
        np.testing.assert_allclose(hourly, C[c], atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_month_to_month_steps_hold_the_same_capacities_as_the_links(seed):
    """The master links capacities by steps, (I − P) C = D x, where each purchase appears only in
    the months it starts and ends: the capacities C = link x satisfy them, and they determine C."""
    rng, inst = _laddered(seed)
    seg = CapacitySegments.of(inst)
    P, D = seg.steps()
    x = rng.uniform(0, 1, inst.n_decisions) * inst.dec_upper
    C = seg.link @ x
    I_P = np.eye(seg.m) - P.toarray()
    np.testing.assert_allclose(I_P @ C, D @ x, atol=1e-9)
    np.testing.assert_allclose(np.linalg.solve(I_P, D @ x), C, atol=1e-9)
    assert D.nnz < seg.link.nnz  # the point of the steps: fewer nonzeros than the links


def test_a_master_kept_across_changed_limits_and_caps_reaches_a_new_masters_optimum():
    """Rounds of a constrained solve re-use one master (its cuts and basis) while its limit rows
    and capacity caps change; each round's optimum must be that of a master built afresh."""
    from solver.decomposition import LinearLimit, WarmStart, solve_decomposition

    rng, inst = _laddered(5)
    seg = CapacitySegments.of(inst)
    free = solve_decomposition(inst, gap=1e-8)
    upfront = rng.uniform(0.5, 1.5, inst.n_decisions) * inst.dec_window_cost
    warm = WarmStart()
    steps = [
        ([LinearLimit("budget", upfront, 0.6 * float(upfront @ free.x))], None),
        ([LinearLimit("budget", upfront, 0.4 * float(upfront @ free.x)),
          LinearLimit("ri", (inst.dec_kind == 0).astype(float), 0.7 * float(free.x[inst.dec_kind == 0].sum()))], None),
        ([LinearLimit("ri", (inst.dec_kind == 0).astype(float), 0.7 * float(free.x[inst.dec_kind == 0].sum()))],
         0.8 * (seg.link @ free.x) + 1e-6),
    ]
    for limits, caps in steps:
        cap = (lambda s, c=caps: c) if caps is not None else None
        kept = solve_decomposition(inst, gap=1e-8, limits=limits, warm=warm, capacity_caps=cap)
        fresh = solve_decomposition(inst, gap=1e-8, limits=limits, capacity_caps=cap)
        assert kept.status == fresh.status == "optimal"
        assert kept.upper == pytest.approx(fresh.upper, rel=1e-7)
        assert all(lim.holds(kept.x) for lim in limits)
        if caps is not None:
            assert np.all(seg.link @ kept.x <= caps + 1e-9)
    assert warm.masters is not None


@pytest.mark.parametrize("seed", range(3))
def test_cut_gradients_match_finite_differences_of_each_cluster(seed):
    rng, inst = _laddered(seed)
    seg = CapacitySegments.of(inst)
    labels, cluster_segment, _ = seg.clusters(inst, 2, by_scenario=True)
    import scipy.sparse as sp
    K = len(cluster_segment)
    M = sp.csr_matrix((np.ones(inst.hours), (labels, np.arange(inst.hours))), shape=(K, inst.hours))
    x = rng.uniform(0.2, 0.8, inst.n_decisions) * inst.dec_upper
    cov = evaluate(inst, x)
    grads = seg.gradients(cov, M, cluster_segment).toarray()
    h = 1e-6
    for j in rng.choice(inst.n_decisions, 6, replace=False):
        step = np.zeros(inst.n_decisions)
        step[j] = h
        fd = (M @ evaluate(inst, x + step, duals=False).on_demand_hourly - M @ cov.on_demand_hourly) / h
        # a subgradient: the one-sided difference can only be above it (convexity) — and equals it off kinks
        assert np.all(fd >= grads @ (seg.link @ step) / h - 1e-6)
        np.testing.assert_allclose(fd, grads @ (seg.link @ step) / h, atol=1e-3 * max(1.0, np.abs(fd).max()))


def test_fill_level_is_the_largest_capacity_meeting_the_floor():
    rng = np.random.default_rng(4)
    u = rng.gamma(2.0, 3.0, (300, 5))
    u[:, 4] = 0.0  # a pool with no usage gets no capacity
    existing = np.zeros_like(u)
    existing[:, 1] = 2.0
    level = _fill_level(u, existing, 0.8, np.ones(len(u)))

    def fill(c):
        cap = existing + c
        return np.where(cap > 0, np.minimum(1.0, np.divide(u, cap, out=np.ones_like(u), where=cap > 0)), 1.0).mean(axis=0)

    assert level[4] == pytest.approx(0.0, abs=1e-6)
    assert np.all(fill(level) >= 0.8 - 1e-9)
    assert np.all(fill(level + 1e-4)[:4] < 0.8)


def test_fill_level_counts_a_sampled_row_for_the_hours_it_stands_for():
    rng = np.random.default_rng(5)
    u = rng.gamma(2.0, 3.0, (200, 3))
    existing = np.zeros_like(u)
    hours = rng.integers(1, 5, len(u)).astype(float)
    repeated = np.repeat(np.arange(len(u)), hours.astype(int))
    weighted = _fill_level(u, existing, 0.85, hours)
    np.testing.assert_allclose(weighted, _fill_level(u[repeated], existing[repeated], 0.85, np.ones(len(repeated))), rtol=1e-9)
    assert not np.allclose(weighted, _fill_level(u, existing, 0.85, np.ones(len(u))), rtol=1e-6)


def test_floor_caps_hold_reservations_to_the_floor_in_every_segment():
    rng, inst = _laddered(1)
    caps = FloorCaps(inst, 0.9, scenario=0)
    seg = CapacitySegments.of(inst)
    cap = caps(seg)
    ri = np.flatnonzero((seg.col_kind == 0) & np.isfinite(cap))
    assert len(ri)
    for c in ri:
        hours = (inst.hour_scenario == 0) & (seg.hour_segment == seg.col_segment[c])
        p = seg.col_target[c]
        load, total = inst.u[hours, p], inst.existing_ri[hours, p] + cap[c]
        fill = np.where(total > 0, np.minimum(1.0, load / np.where(total > 0, total, 1.0)), 1.0).mean()  # by hand, not pro_rata_fill
        assert fill >= 0.9 - 1e-9
