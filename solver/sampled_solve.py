"""Solve a large problem on a sample of its hours, then hold its limits on all of them.

:mod:`solver.hour_sample` says why and how the hours are sampled. The utilization floors hold
exactly (they are measured and capped on every hour of their scenario); coverage and CVaR are
estimates on the sample. After
each solve the plan is measured on every hour: when the full measure misses a limit, the sample's
target moves inside by twice the miss (the sample's estimate and the full measure differ by about
the same amount near the plan; the rest leaves the rounding room) and the sample is solved again.
If that does not settle within ``rounds``, the problem is solved on all hours.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from models.errors import PlanningError
from solver.constrained import Problem, Rounds, Solution, _feasible, cvar_of, solve_problem
from solver.coverage import shared_bills
from solver.hour_sample import PER_BLOCK, HourSample, restrict, stratified, wants_sample
from solver.nonlinear_limits import Measures

log = logging.getLogger("commitplan.solver")

MARGIN = 1e-5  # a moved target aims this far inside the limit (coverage share; relative for CVaR)

ROUND_INSIDE = 2e-4
"""Coverage share the rounded plan keeps inside the band on the sample, where it can. The continuous
plan meets the band on all hours as on the sample, but whole units change which hours are covered:
at 200 pools × 20 scenarios the rounded plan on the coverage maximum of the sample was 8e-5 over
it on all hours, and moving the target cost a second solve and rounding (~7 s)."""

SAMPLE_GAP = 1e-3
"""Gap certified on a sample. The best plan found is usually much closer than the certificate: at
200 pools its upper bound is within 1e-4 of the 1e-5 plan after 6 s, while certifying 1e-3 takes
18 s, 3e-4 70 s and 1e-5 390 s. Billed on all hours, the sampled plan costs 0.006% (24 pools) and
0.007% (50 pools) more than the plan optimized on all hours to 1e-5 (benchmarks/sample_error.py)."""


def sample_for(problem: Problem, per_block: int | None) -> HourSample | None:
    """The hours to optimize on, or None to use all of them. ``per_block``: hours per scenario and
    month; None samples ``PER_BLOCK`` only when the problem is large, 0 never samples."""
    if per_block == 0 or problem.nominal.sampled or (per_block is None and not wants_sample(problem.nominal)):
        return None
    return stratified(problem.nominal, per_block or PER_BLOCK)


def floor_scenario(problem: Problem) -> tuple[int, ...]:
    """The scenario a utilization floor is stated in, if any (a sample for finding conflicts keeps it whole)."""
    t = problem.targets
    return (t.utilization_scenario,) if t.utilization_floor is not None else ()


def on_sample(problem: Problem, sample: HourSample) -> Problem:
    """``problem`` optimized on the sampled hours; its utilization floors are measured and capped on
    every hour of their scenario (8,760 of 19,704 rows at 200 pools × 20 scenarios when that scenario
    was kept in the sample whole, and each bill of the sample took that much longer)."""
    nominal = restrict(problem.nominal, sample)
    floor_hours = None
    if problem.targets.utilization_floor is not None:
        rows = np.flatnonzero(problem.nominal.hour_scenario == problem.targets.utilization_scenario)
        floor_hours = restrict(problem.nominal, HourSample(rows, np.ones(len(rows)), 0))
    objective = nominal
    if problem.objective is not problem.nominal:
        # the discounted instance on the nominal sample's own usage arrays, so that one bill of a plan
        # serves its present value and its limits (coverage.shared_bills: rounding bills each candidate)
        objective = replace(restrict(problem.objective, sample), usage=nominal.usage, existing_ri=nominal.existing_ri,
                            existing_sp=nominal.existing_sp, hour_time=nominal.hour_time)
    return replace(problem, objective=objective, nominal=nominal, caps=None, floor_hours=floor_hours, round_inside=ROUND_INSIDE)


def solve_sampled(problem: Problem, sample: HourSample, backend: str = "highs", gap: float = 1e-6, rounds: int = 3) -> Solution:
    """The plan optimized on ``sample`` that meets every limit measured on all of ``problem``'s hours."""
    small = on_sample(problem, sample)
    sample_gap = max(gap, SAMPLE_GAP)
    full = problem.measures()  # on all hours
    meets = _feasible(problem, full, problem.cvar_limit)
    state = Rounds()  # a moved target resumes the masters and rows of the solve before
    for k in range(rounds):
        try:
            sol = solve_problem(small, backend=backend, gap=sample_gap, state=state)
        except PlanningError:
            if k == 0:  # no plan on the sample: the caller finds out whether the limits conflict
                raise
            break  # a moved target went past what the sample can reach
        with shared_bills():  # the floors, coverage and CVaR on all hours from one bill
            met = meets(sol.x)
        if met:
            sol.notes.append(sample.describe(problem.nominal.hours))
            sol.optimized_hours = len(sample.rows)
            return sol
        moved = _moved_targets(problem, small, full, sol)
        if moved is None:
            break
        small = moved
    log.info("the plan optimized on a sample of hours missed a limit on all hours; solving on all hours")
    return solve_problem(problem, backend=backend, gap=gap)


def _moved_targets(problem: Problem, small: Problem, full: Measures | None, sol: Solution) -> Problem | None:
    """``small`` with each missed coverage or CVaR target moved inside by twice its miss on all hours."""
    q, t, s = sol.x, problem.targets, small.targets
    moved_t, limit = s, small.cvar_limit
    if full is not None and (t.coverage_min is not None or t.coverage_max is not None):
        c = full.coverage(q)
        if t.coverage_min is not None and c < t.coverage_min:
            moved_t = replace(moved_t, coverage_min=s.coverage_min + 2 * (t.coverage_min - c) + MARGIN)
        if t.coverage_max is not None and c > t.coverage_max:
            moved_t = replace(moved_t, coverage_max=s.coverage_max - 2 * (c - t.coverage_max) - MARGIN)
    if problem.cvar_limit is not None:
        v = cvar_of(problem, q)
        if v > problem.cvar_limit:
            limit = small.cvar_limit - 2 * (v - problem.cvar_limit) - MARGIN * problem.cvar_limit
    if moved_t == s and limit == small.cvar_limit:
        return None  # the miss is elsewhere (a floor): the sample cannot fix it
    log.debug("on all hours the plan missed a limit the sample met: coverage target %s → %s, CVaR limit %s → %s",
              (s.coverage_min, s.coverage_max), (moved_t.coverage_min, moved_t.coverage_max), small.cvar_limit, limit)
    return replace(small, targets=moved_t, cvar_limit=limit)
