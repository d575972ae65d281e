"""Purchases as the hourly bill sees them: capacity per time segment.

A decision adds its quantity to one pool's reserved units (or one savings-plan layer's $/h) over
hours [start, end). Split the horizon at every start and end: inside a segment the set of active
decisions is fixed, so an hour's bill depends on the purchases only through the capacity each
pool and layer has in the hour's segment. Cuts written over these capacities hold one nonzero
per pool and layer of their segment instead of one per decision — a 12-date ladder with six
offerings per pool has ~70 decisions per pool — which is what keeps the master LP small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from solver.coverage import Coverage
from solver.instance import Instance


@dataclass
class CapacitySegments:
    bounds: np.ndarray  # segment g holds the times [bounds[g], bounds[g + 1])
    hour_segment: np.ndarray  # (H,) segment of each (stacked) hour
    col_segment: np.ndarray  # (m,) segment of each capacity column
    col_kind: np.ndarray  # (m,) 0 = reserved units of a pool, 1 = $/h of a savings-plan layer
    col_target: np.ndarray  # (m,) pool or layer index
    link: sp.csr_matrix  # (m, n): capacities = link @ x

    @classmethod
    def of(cls, inst: Instance) -> "CapacitySegments":
        bounds, cols, link = _columns(inst)
        return cls(bounds, hour_segments(inst, bounds), cols[:, 0], cols[:, 1], cols[:, 2], link)

    def steps(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """The links as month-to-month steps: ``C_c − C_prev(c) = D_c · x``, where prev(c) is the same
        pool or layer in the segment before (no term when it has no column there) and D_c holds +1
        for the decisions that start at c's segment and −1 for those that ended before it.
        Returns (P, D) with rows ``(I − P) C = D x``: the same capacities as ``C = link x``, but each
        decision sits in the rows where it starts and ends instead of in every month of its life,
        which keeps the master's basis sparse (a 12-date ladder: ~6× fewer nonzeros)."""
        m = self.m
        index = {(g, k, t): c for c, (g, k, t) in enumerate(zip(self.col_segment, self.col_kind, self.col_target))}
        prev = np.array([index.get((g - 1, k, t), -1) for g, k, t in zip(self.col_segment, self.col_kind, self.col_target)], dtype=int)
        has = np.flatnonzero(prev >= 0)
        P = sp.csr_matrix((np.ones(len(has)), (has, prev[has])), shape=(m, m))
        D = (self.link - P @ self.link).tocsr()
        D.eliminate_zeros()
        return P, D

    @property
    def m(self) -> int:
        return len(self.col_segment)

    @property
    def count(self) -> int:
        return max(len(self.bounds) - 1, 1)

    def gradients(self, cov: Coverage, clusters: sp.csr_matrix, cluster_segment: np.ndarray) -> sp.csr_matrix:
        """(K, m): derivative of each cluster's on-demand cost with respect to each capacity column.

        A cluster's hours lie in one segment, so only that segment's columns are nonzero: one more
        unit of a pool's reservation saves the pool's ``pi`` in each of those hours, one more $/h
        of a layer its ``lam``."""
        sums = (clusters @ cov.pi, clusters @ cov.lam)
        rows, cols, vals = [], [], []
        for g in np.unique(cluster_segment):
            ks = np.flatnonzero(cluster_segment == g)
            cs = np.flatnonzero(self.col_segment == g)
            for kind in (0, 1):
                c = cs[self.col_kind[cs] == kind]
                if len(c):
                    block = -sums[kind][np.ix_(ks, self.col_target[c])]
                    rows.append(np.repeat(ks, len(c)))
                    cols.append(np.tile(c, len(ks)))
                    vals.append(block.ravel())
        if not rows:
            return sp.csr_matrix((clusters.shape[0], self.m))
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(clusters.shape[0], self.m))

    def clusters(self, inst: Instance, per_segment: int, by_scenario: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cluster label per hour: quantile bins of on-demand-equivalent load inside each segment
        (and each scenario when ``by_scenario``, so that a cluster's cost belongs to one scenario).
        Returns (labels, segment of each cluster, scenario of each cluster or −1)."""
        load = inst.u @ inst.on_demand
        scenario = inst.hour_scenario if by_scenario else np.zeros(inst.hours, dtype=int)
        group = scenario * self.count + self.hour_segment
        order = np.lexsort((np.arange(inst.hours), load, group))
        g_sorted = group[order]
        starts = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
        sizes = np.diff(np.r_[starts, len(order)])
        size_of = np.repeat(sizes, sizes)
        rank = np.arange(len(order)) - np.repeat(starts, sizes)
        bins = np.minimum(per_segment, size_of)
        local = np.empty(inst.hours, dtype=int)
        local[order] = (rank * bins) // size_of
        key = group * per_segment + local
        uniq, labels = np.unique(key, return_inverse=True)
        seg = (uniq // per_segment) % self.count
        scen = uniq // per_segment // self.count if by_scenario else np.full(len(uniq), -1)
        return labels.ravel(), seg, scen


def hour_segments(inst: Instance, bounds: np.ndarray) -> np.ndarray:
    """The time segment (between ``bounds``) of each of ``inst``'s rows, sampled or not."""
    time = inst.hour_time if inst.hour_time is not None else np.arange(inst.hours)
    return np.searchsorted(bounds, time, side="right") - 1


_KEPT: list[tuple[tuple, tuple]] = []  # the last few instances' capacity columns, by their decision arrays


def _columns(inst: Instance) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Segment bounds, capacity columns (segment, kind, target) and the link matrix of ``inst``'s
    decisions. The instances of one plan (the sample, the floor's hours, the discounted objective, all
    hours) share their decision arrays, and at 200 pools × 12 dates each build took ~0.3 s."""
    arrays = (inst.dec_start, inst.dec_end, inst.dec_kind, inst.dec_target)
    for held, out in _KEPT:
        if held[-1] == inst.horizon and all(a is b for a, b in zip(held, arrays)):
            return out
    T = inst.horizon
    bounds = np.unique(np.r_[0, inst.dec_start, inst.dec_end, T].clip(0, T)).astype(int)
    # decision j is active in segments [first, last): bounds[first] = start, bounds[last] = end
    first = np.searchsorted(bounds, inst.dec_start)
    last = np.searchsorted(bounds, inst.dec_end)
    counts = last - first
    dec = np.repeat(np.arange(inst.n_decisions), counts)
    seg = np.repeat(first, counts) + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    keys = np.stack([seg, inst.dec_kind[dec], inst.dec_target[dec]], axis=1)
    cols, col_of = np.unique(keys, axis=0, return_inverse=True) if len(keys) else (np.zeros((0, 3), int), np.zeros(0, int))
    link = sp.csr_matrix((np.ones(len(dec)), (col_of.ravel(), dec)), shape=(len(cols), inst.n_decisions))
    out = (bounds, cols, link)
    _KEPT[:] = _KEPT[-3:] + [(arrays + (inst.horizon,), out)]
    return out
