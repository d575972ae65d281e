"""Optimize on a stratified sample of the scenario-hours; bill, check and report on all of them.

A 12-month horizon of 20 scenarios stacks 175,200 hours; at 200 pools every evaluation of the
objective bills 35 M pool-hours, and a plan under every limit takes hundreds of them. Inside one
scenario and one time segment (between purchase dates and expirations) every hour faces the same
capacities, so the segment's cost is a sum over exchangeable hours: a sample stratified by load
estimates it without bias (sample average approximation). Each block (scenario × segment) is
sorted by on-demand-equivalent load and cut into ``per_block`` strata of equal size; one hour is
drawn from each stratum (seeded) and stands for the stratum's hours.

Utilization floors are measured on every hour of their scenario, beside the sample
(:func:`solver.sampled_solve.on_sample`), so they hold exactly; coverage and CVaR are estimates on
the sample, so :mod:`solver.sampled_solve` measures them on all hours after the solve and, where
the sample missed a limit, tightens its target by the miss and solves again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models import UsageMatrix
from solver.instance import Instance
from solver.segments import CapacitySegments

SAMPLE_FROM_CELLS = 2_000_000
"""Scenario-hours × pools from which a plan is optimized on a sample: below it the full solve
takes seconds, above it the billing passes dominate (benchmarks/ladder.py)."""

PER_BLOCK = 32
"""Hours drawn per scenario and month. Billed on all hours, the plan optimized on the sample costs
0.022% (24 pools) and 0.008% (50 pools) more than the plan optimized on all hours to 1e-5 (48 hours:
0.006% and 0.007%; 24 and 96 hours: 0.003–0.010%): within a fifth of the 1e-3 gap certified on the
sample, with each bill a third cheaper than at 48 (benchmarks/sample_error_results.md)."""


@dataclass(frozen=True)
class HourSample:
    rows: np.ndarray  # rows of the full instance, in order
    count: np.ndarray  # hours of the horizon each stands for
    per_block: int

    def describe(self, total: int) -> str:
        return (f"optimized on a stratified sample of {len(self.rows):,} of {total:,} scenario-hours ({self.per_block} "
                "per scenario and month, by load; utilization floors on every hour of their scenario); the bound and gap are the "
                "sample's, every figure is billed on all hours")


def wants_sample(inst: Instance) -> bool:
    return inst.hours * inst.n_pools >= SAMPLE_FROM_CELLS


def stratified(inst: Instance, per_block: int = PER_BLOCK, whole: tuple[int, ...] = (), seed: int = 0) -> HourSample:
    """``per_block`` hours per scenario and time segment, one from each load stratum; the scenarios
    in ``whole`` keep every hour."""
    segments = CapacitySegments.of(inst)
    scenario = inst.hour_scenario
    block = scenario * segments.count + segments.hour_segment
    load = inst.u @ inst.on_demand
    order = np.lexsort((np.arange(inst.hours), load, block))  # by block, then load
    starts = np.r_[0, np.flatnonzero(np.diff(block[order])) + 1, inst.hours]
    rng = np.random.default_rng(seed)
    rows, counts = [], []
    for a, b in zip(starts[:-1], starts[1:]):
        members = order[a:b]
        n = b - a
        if n <= per_block or scenario[members[0]] in whole:
            rows.append(members)
            counts.append(np.ones(n))
            continue
        edges = (np.arange(per_block + 1) * n) // per_block
        sizes = np.diff(edges)
        rows.append(members[edges[:-1] + rng.integers(0, sizes)])
        counts.append(sizes.astype(float))
    rows_, counts_ = np.concatenate(rows), np.concatenate(counts)
    keep = np.argsort(rows_, kind="stable")
    return HourSample(rows_[keep], counts_[keep], per_block)


def restrict(inst: Instance, sample: HourSample) -> Instance:
    """The instance on the sampled rows, each weighted by the hours it stands for."""
    r = sample.rows
    time = inst.hour_time if inst.hour_time is not None else np.arange(inst.hours)
    weight = inst.hour_weight if inst.hour_weight is not None else np.ones(inst.hours)
    return replace(
        inst, usage=UsageMatrix(inst.usage.start, inst.usage.pools, inst.u[r]),
        existing_ri=inst.existing_ri[r], existing_sp=inst.existing_sp[r],
        hour_time=time[r], hour_weight=weight[r] * sample.count, hour_count=inst.row_count[r] * sample.count,
        row_scenario=inst.hour_scenario[r], probabilities=inst.scenario_weights.copy(), horizon_hours=inst.horizon,
        notes=list(inst.notes), _flat=None,
    )
