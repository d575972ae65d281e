"""Exact hourly coverage by the billing rules, with its marginal costs.

:func:`evaluate` runs the compiled kernel (:mod:`solver.kernels`); :func:`evaluate_numpy` is the
same computation vectorized over hours in NumPy, kept as the readable reference the kernel is
tested against.

Given the quantity of every decision, each hour is billed as DESIGN.md §5 says: reservations
first, then savings-plan layers in order, each filling its pools by descending savings
percentage until its commitment for the hour is used up; the rest is on demand.

When the greedy fill is also the cheapest allocation (see :mod:`solver.consistency`), the hour's
on-demand cost is the value of a small LP, and the duals computed here — ``pi`` (marginal cost of
one more unit of a pool's usage above its reservations) and ``lam`` (marginal saving of one more
$/h of a savings plan) — are subgradients: the cuts of the decomposition are built from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.instance import Instance


@dataclass
class Coverage:
    residual: np.ndarray  # (H, P) units paid on demand
    ri_cap: np.ndarray  # (H, P) reserved units active
    sp_cap: np.ndarray  # (H, S) $/h of savings-plan commitment active per layer
    sp_used: np.ndarray  # (H, S) $ of commitment consumed per layer
    on_demand_hourly: np.ndarray  # (H,) $ paid on demand per hour
    pi: np.ndarray | None = None  # (H, P)
    lam: np.ndarray | None = None  # (H, S)
    e: np.ndarray | None = None  # (H, P) cost of one more unit of a pool's usage above reservations
    sp_need: np.ndarray | None = None  # (H, S) $ of eligible usage reaching each layer

    @property
    def on_demand_paid(self) -> float:
        return float(self.on_demand_hourly.sum())


def capacities(inst: Instance, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reserved units (H × P) and savings-plan $/h (H × S) active each hour: existing plus bought.

    Capacity changes only where a decision starts or ends, so it is summed once per stretch between
    those times (difference arrays over a dozen stretches on a ladder, not over every hour of the
    horizon) and then laid on every row by its stretch."""
    x = np.asarray(x, dtype=float)
    T = inst.horizon
    bought = x > 0
    bounds = np.unique(np.r_[0, inst.dec_start[bought], inst.dec_end[bought], T].clip(0, T))
    time = inst.hour_time if inst.hour_time is not None else np.arange(inst.hours)
    stretch = np.searchsorted(bounds, time, side="right") - 1
    out = []
    for kind, existing in ((0, inst.existing_ri), (1, inst.existing_sp)):
        sel = np.flatnonzero((inst.dec_kind == kind) & bought)
        if not len(sel):
            out.append(existing.copy())
            continue
        delta = np.zeros((len(bounds), existing.shape[1]))
        np.add.at(delta, (np.searchsorted(bounds, inst.dec_start[sel]), inst.dec_target[sel]), x[sel])
        np.add.at(delta, (np.searchsorted(bounds, inst.dec_end[sel]), inst.dec_target[sel]), -x[sel])
        by_stretch = np.cumsum(delta, axis=0)
        out.append(existing + by_stretch[stretch])
    return out[0], out[1]


_SHARED: ContextVar[list | None] = ContextVar("commitplan_shared_bill", default=None)
SHARED_SLOTS = 2


@contextmanager
def shared_bills() -> Iterator[None]:
    """Inside the block, a plan billed again on an instance that differs only in hour weights and
    decision costs reuses the last kernel run. Rounding asks each candidate's present value (the
    objective), its nominal coverage and floors (the limits) and its CVaR: three bills of ~0.5 s
    each on all 175,200 scenario-hours at 200 pools, from one kernel run."""
    outer = _SHARED.get()
    token = _SHARED.set(outer if outer is not None else [])  # nested blocks share the outer slots
    try:
        yield
    finally:
        _SHARED.reset(token)


def _same_bill(inst: Instance, x: np.ndarray) -> tuple:
    """What a bill depends on besides weights and costs: the arrays themselves (held, so that their
    identity cannot be reused) and the quantities."""
    return (inst.u, inst.existing_ri, inst.existing_sp, inst.hour_time, inst.dec_kind, inst.dec_target, inst.dec_start,
            inst.dec_end, inst.layers, x.tobytes())


def _same_instance(a: tuple, b: tuple) -> bool:
    return all(p is q for p, q in zip(a[:-1], b[:-1]))


def _matches(a: tuple | None, b: tuple) -> bool:
    return a is not None and _same_instance(a, b) and a[-1] == b[-1]


def evaluate(inst: Instance, x: np.ndarray, duals: bool = True) -> Coverage:
    """Bill every hour for purchase quantities ``x`` (compiled kernel)."""
    from solver.kernels import bill_hours

    x = np.asarray(x, dtype=float)
    slot = _SHARED.get()
    key = _same_bill(inst, x) if slot is not None else None
    hit = next((kept for kept in slot if _matches(kept[0], key) and (kept[1][2] or not duals)), None) if slot is not None else None
    if hit is not None:
        (ri_cap, sp_cap), raw, _ = hit[1]
    else:
        ri_cap, sp_cap = capacities(inst, x)
        ptr, pools, rates = inst.layer_arrays()
        raw = bill_hours(inst.u, ri_cap, sp_cap, inst.on_demand, ptr, pools, rates, duals)
        if slot is not None:  # the last bill of each of SHARED_SLOTS instances (a sample and its floor's hours)
            slot[:] = [kept for kept in slot if not _same_instance(kept[0], key)][-(SHARED_SLOTS - 1):]
            slot.append((key, ((ri_cap, sp_cap), raw, duals)))
    residual, sp_used, od_hourly, e, pi, lam, sp_need = raw
    w = inst.hour_weight
    cov = Coverage(residual, ri_cap, sp_cap, sp_used, od_hourly if w is None else od_hourly * w, sp_need=sp_need)
    if duals and w is not None and slot is None:  # the kernel's own arrays: weigh them in place (hours × pools each)
        e *= w[:, None]
        pi *= w[:, None]
        lam *= w[:, None]
    elif duals and w is not None:  # kept in the shared slot for other weights: copies
        e, pi, lam = e * w[:, None], pi * w[:, None], lam * w[:, None]
    if duals:
        cov.e, cov.pi, cov.lam = e, pi, lam
    return cov


def evaluate_numpy(inst: Instance, x: np.ndarray, duals: bool = True) -> Coverage:
    """The same billing, vectorized over hours in NumPy: the readable reference for the kernel."""
    u = inst.u
    ri_cap, sp_cap = capacities(inst, np.asarray(x, dtype=float))
    residual = np.maximum(u - ri_cap, 0.0)
    H = u.shape[0]
    sp_used = np.zeros((H, len(inst.layers)))
    sp_need = np.zeros((H, len(inst.layers)))
    left_over: list[np.ndarray] = []  # per layer: (H, |E|) residual remains after it
    for s, layer in enumerate(inst.layers):
        E, a = layer.pools, layer.rates
        need_units = residual[:, E]
        need = need_units * a
        before = np.cumsum(need, axis=1) - need
        spend = np.clip(sp_cap[:, s : s + 1] - before, 0.0, need)
        full = spend >= need
        after = np.where(full, 0.0, need_units - spend / a)
        residual[:, E] = after
        sp_used[:, s] = spend.sum(axis=1)
        sp_need[:, s] = need.sum(axis=1)
        if duals:
            left_over.append(after > 1e-9 * np.maximum(need_units, 1.0))
    on_demand_hourly = residual @ inst.on_demand
    cov = Coverage(residual, ri_cap, sp_cap, sp_used, on_demand_hourly, sp_need=sp_need)
    if duals:
        cov.e, cov.lam = _marginal_costs(inst, left_over, u.shape)
        cov.pi = np.where(u > ri_cap, cov.e, 0.0)
    return cov


def _marginal_costs(inst: Instance, left_over: list[np.ndarray], shape: tuple[int, int]):
    """Backward pass over layers: e = cost of one more unit entering a layer; lam = layer duals."""
    H = shape[0]
    e = np.broadcast_to(inst.on_demand, shape).copy()
    lam = np.zeros((H, len(inst.layers)))
    for s in range(len(inst.layers) - 1, -1, -1):
        layer = inst.layers[s]
        E, a = layer.pools, layer.rates
        ratio = np.where(left_over[s], e[:, E] / a, 0.0)
        lam[:, s] = ratio.max(axis=1) if ratio.shape[1] else 0.0
        e[:, E] = np.minimum(e[:, E], lam[:, s : s + 1] * a)
    return e, lam


def total_cost(inst: Instance, x: np.ndarray, cov: Coverage | None = None) -> float:
    cov = cov if cov is not None else evaluate(inst, x, duals=False)
    return inst.existing_cost + float(inst.dec_window_cost @ x) + cov.on_demand_paid


def cluster_gradients(inst: Instance, cov: Coverage, clusters: sp.csr_matrix) -> np.ndarray:
    """(K, n): derivative of each cluster of hours' on-demand cost with respect to each decision.

    ``clusters`` is the K × H 0/1 matrix of hour membership; summing by sparse product avoids
    materializing an hours × decisions array. Decisions active over part of the horizon use the
    sums over the hours from each start (or end) time on: one product per distinct time, not per
    decision (laddered plans have thousands of decisions but a dozen dates).
    """
    ri = inst.dec_kind == 0
    full = inst.spans_horizon()
    grads = np.empty((clusters.shape[0], inst.n_decisions))
    whole_pi, whole_lam = clusters @ cov.pi, clusters @ cov.lam
    grads[:, ri] = -whole_pi[:, inst.dec_target[ri]]
    grads[:, ~ri] = -whole_lam[:, inst.dec_target[~ri]]
    part = np.flatnonzero(~full)
    if not len(part):
        return grads
    time = inst.hour_time if inst.hour_time is not None else np.arange(inst.hours)
    # split the horizon at every start and end time; sum each cluster's duals per segment in one
    # sparse product, then the sums from each time on are suffix sums over segments
    cuts = np.unique(np.r_[0, inst.dec_start[part], inst.dec_end[part], inst.horizon].clip(0, inst.horizon))
    nseg = len(cuts)  # segment i holds times in [cuts[i], cuts[i+1]); the last one is empty
    seg = np.searchsorted(cuts, time, side="right") - 1
    coo = clusters.tocoo()
    K = clusters.shape[0]
    by_seg = sp.csr_matrix((coo.data, (coo.row * nseg + seg[coo.col], coo.col)), shape=(K * nseg, clusters.shape[1]))
    tails = {}
    for which, duals in ((0, cov.pi), (1, cov.lam)):
        sums = (by_seg @ duals).reshape(K, nseg, -1)
        suffix = np.cumsum(sums[:, ::-1], axis=1)[:, ::-1]  # [:, i] = sums over times ≥ cuts[i]
        for i, tau in enumerate(cuts):
            tails.setdefault(tau, [None, None])[which] = suffix[:, i]
    spans = np.stack([inst.dec_start[part], inst.dec_end[part], ri[part]], axis=1)
    for a, b, is_ri in np.unique(spans, axis=0):
        js = part[(spans == (a, b, is_ri)).all(axis=1)]
        which = 0 if is_ri else 1
        grads[:, js] = -(tails[a][which][:, inst.dec_target[js]] - tails[b][which][:, inst.dec_target[js]])
    return grads
