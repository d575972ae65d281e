"""Solve under every limit of a policy: linear limits and the CVaR limit in the master (the CVaR
limit as a Rockafellar–Uryasev row over the cuts' scenario costs, :func:`solve_decomposition`),
utilization floors as capacity caps, the coverage band by rows re-drawn between solves.

The CVaR limit was first met by bisection on a risk weight β (min E[cost] s.t. CVaR ≤ L is
min E[cost] + β·CVaR for the right β): seven more solves, 164.5 s at 200 pools where the row
takes one. The row's multiplier is that β, and the plan reports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from models.errors import PlanningError
from solver.coverage import cluster_gradients, evaluate, shared_bills
from solver.decomposition import DecompositionResult, LinearLimit, WarmStart, solve_decomposition
from solver.risk import RiskSpec, cvar, risk_objective, scenario_costs
from solver.instance import Instance
from solver.nonlinear_limits import LimitTargets, Measures, coverage_max_row, coverage_min_row, FloorCaps, frozen, scale_to_coverage
from solver.purchase_value import marginal_values
from solver.repair import repair
from solver.rounding import round_quantities
from solver.segments import CapacitySegments

log = logging.getLogger("commitplan.solver")

COVERAGE_MARGIN = 1e-5  # min-coverage rows aim this far inside, so the continuous plan meets the limit exactly


@dataclass
class Problem:
    """What to minimize (``objective``: nominal or discounted) and what must hold (measured on
    ``nominal``, the same decisions undiscounted)."""

    objective: Instance
    nominal: Instance
    limits: list[LinearLimit] = field(default_factory=list)
    targets: LimitTargets = LimitTargets()
    risk: RiskSpec | None = None
    cvar_limit: float | None = None
    alpha: float = 0.95
    caps: FloorCaps | None = field(default=None, repr=False)  # utilization floors; their savings-plan
    # caps are a fixed point that every solve of the problem (each risk weight) carries on from
    floor_hours: Instance | None = field(default=None, repr=False)  # every hour of the floor's scenario,
    # when ``nominal`` is a sample of hours (solver.sampled_solve): floors are measured and capped there
    round_inside: float = 0.0  # coverage share the rounded plan keeps inside the band, when it can
    # (a sample's coverage of rounded plans differs from all hours' by ~1e-4: solver.sampled_solve)

    def floor_caps(self) -> FloorCaps | None:
        t = self.targets
        if t.utilization_floor is not None and self.caps is None:
            hours = self.nominal if self.floor_hours is None else self.floor_hours
            self.caps = FloorCaps(hours, t.utilization_floor, t.utilization_scenario)
        return self.caps

    def measures(self) -> Measures | None:
        """Coverage and floors of plans (None when no such limit is set)."""
        return Measures(self.nominal, self.weights, self.floor_hours) if self.targets.any else None

    @property
    def weights(self) -> np.ndarray:
        return self.nominal.scenario_weights


@dataclass
class Solution:
    x: np.ndarray  # sellable quantities
    continuous: np.ndarray
    result: DecompositionResult
    objective: float  # of x (E[cost] + β·CVaR on the objective instance)
    risk: RiskSpec | None
    rounds: int
    notes: list[str] = field(default_factory=list)
    optimized_hours: int | None = None  # scenario-hours the optimizer saw, when a sample (solver.sampled_solve)


ROUND_GAP = 1e-2
"""Gap of the rounds that re-draw rows and caps: only the last round's plan is kept, so the earlier
ones need only to be near it (at 200 pools a 1e-2 gap is certified in a quarter of the time of 1e-3)."""


@dataclass
class Rounds:
    """What the rounds of :func:`solve_rows` carry from one to the next, kept for a later solve of the
    same problem with a target moved (the CVaR limit aimed inside for rounding, :func:`solve_problem`;
    a sample's targets, :mod:`solver.sampled_solve`), which then starts where they ended."""

    warm: WarmStart = field(default_factory=WarmStart)  # the masters: the objective is the same, only the rows change
    outer: list[LinearLimit] = field(default_factory=list)  # tangents of coverage ≥ min: valid for every plan
    inner: list[LinearLimit] = field(default_factory=list)  # the coverage maximum's row at the last plan
    # the CVaR limit joins the master once a plan misses it: its rows need the hours clustered by
    # scenario, a master about five times wider (at 200 pools × 20 scenarios, rounds took twice as long)
    hold: bool = False
    done: int = 0  # rounds solved
    upper: float | None = None  # the last round's objective
    x: np.ndarray | None = None  # the last round's plan: a resumed solve starts from it


def solve_rows(problem: Problem, risk: RiskSpec | None, backend: str, gap: float, x0, max_rounds: int = 25,
               state: Rounds | None = None):
    """Continuous solve with the nonlinear limits' rows re-drawn until the plan meets them: rounds
    at ``ROUND_GAP`` until the rows and caps stop changing, then rounds at ``gap`` (at once when
    ``state`` holds an earlier solve's rounds)."""
    t = problem.targets
    floors = replace(t, coverage_min=None, coverage_max=None)
    measures = problem.measures()
    final_gap = gap
    state = state or Rounds()
    if not state.done and (measures is not None or problem.cvar_limit is not None):
        gap = max(gap, ROUND_GAP)
    warm, outer = state.warm, state.outer
    x0 = state.x if x0 is None else x0
    res, best = None, None
    caps = problem.floor_caps()
    held_risk = RiskSpec(alpha=problem.alpha, weight=risk.weight if risk is not None else 0.0)
    backed_off = False
    for rounds in range(1, max_rounds + 1):
        try:
            res = solve_decomposition(problem.objective, backend=backend, gap=gap, risk=held_risk if state.hold else risk,
                                      limits=problem.limits + outer + state.inner, x0=x0, warm=warm, capacity_caps=caps,
                                      cvar_limit=problem.cvar_limit if state.hold else None)
        except RuntimeError as e:  # the master LP is infeasible
            # savings-plan caps drawn at a plan: retry once with the loosest; a second time the
            # redraws would only cycle (seen at 200 pools), so the rows and floors conflict
            if caps is not None and not caps.frozen and np.any(caps.point) and not backed_off:
                log.debug("round %d: no plan within the caps drawn at the last plan; back to the loosest caps", rounds)
                caps.loosest()
                backed_off = True
                continue
            raise Infeasible(str(e)) from None
        x = state.x = res.x
        state.done += 1
        missed_cvar = not state.hold and problem.cvar_limit is not None and cvar_of(problem, x) > problem.cvar_limit
        state.hold = state.hold or missed_cvar
        if measures is None:
            if not missed_cvar:
                if gap <= final_gap:
                    return res, rounds
                gap = final_gap
            x0 = x
            continue
        if log.isEnabledFor(logging.DEBUG):
            log.debug("round %d: cost %.2f, coverage %.4f, floors %s, $/h reservations %.2f savings plans %.2f", rounds,
                      res.upper, measures.coverage(x), "met" if measures.meets(x, floors, tol=1e-6) else "missed",
                      float(x[problem.nominal.dec_kind == 0] @ problem.nominal.dec_unit_cost[problem.nominal.dec_kind == 0]),
                      float(x[problem.nominal.dec_kind == 1].sum()))
        if measures.meets(x, t, tol=1e-6) and not missed_cvar and (best is None or res.upper < best[0].upper):
            best = (res, rounds)
        changed = False
        if t.coverage_min is not None and measures.coverage(x) < t.coverage_min:
            outer.append(coverage_min_row(measures, x, t.coverage_min + COVERAGE_MARGIN))
            changed = True
        if caps is not None and not caps.frozen and not measures.meets(x, floors, tol=1e-6) and not np.allclose(caps.point, x):
            caps.redraw(x)  # the savings plans' load moved with the plan: re-draw their caps there
            changed = True
        if t.coverage_max is not None:
            point = scale_to_coverage(measures, x, t.coverage_max)
            prev = state.upper
            if not np.allclose(point, x) or prev is None or abs(prev - res.upper) > gap * abs(res.upper):
                state.inner = [coverage_max_row(measures, point, t.coverage_max)]
                changed = changed or not np.allclose(point, x) or prev is None
            state.upper = res.upper
        if not changed:
            if gap <= final_gap and not missed_cvar:
                return res, rounds
            # the rows and caps have settled: solve them to the gap asked for (with the CVaR limit
            # now held, if that was all that changed: a round at ROUND_GAP first would repeat its work)
            gap = final_gap
        x0 = x
    if best is None:
        raise Infeasible("the coverage band and utilization floors were not met after "
                          f"{max_rounds} rounds of re-drawn limits")
    return best


class Infeasible(Exception):
    pass


def _feasible(problem: Problem, measures: Measures | None, cvar_limit: float | None):
    def check(q: np.ndarray) -> bool:
        if not all(lim.holds(q) for lim in problem.limits):
            return False
        if measures is not None and not measures.meets(q, problem.targets, tol=1e-9):
            return False
        return cvar_limit is None or cvar_of(problem, q) <= cvar_limit * (1 + 1e-9)
    return check


def cvar_of(problem: Problem, x: np.ndarray, alpha: float | None = None) -> float:
    """CVaR of the cost the objective counts: as billed, or its present value with a cost of capital
    (the risk weight and the CVaR limit then both speak of present values, as the plan reports)."""
    inst = problem.objective
    return cvar(scenario_costs(inst, x, evaluate(inst, x, duals=False)), problem.weights, problem.alpha if alpha is None else alpha)


ROUNDING_RETRIES = 3
"""Continuous re-solves with the CVaR limit aimed further inside when no sellable plan near the
continuous one meets it (whole reservation units move CVaR by more than a plan on the limit leaves)."""


def solve_problem(problem: Problem, backend: str = "highs", gap: float = 1e-6, state: Rounds | None = None) -> Solution:
    """The plan of least objective that meets every limit; raises PlanningError (with the reason)
    when the limits cannot all hold. :mod:`solver.conflicts` turns that into the smallest set.
    ``state``: the rounds of an earlier solve of the same problem with moved targets, to resume."""
    notes: list[str] = []
    risk = problem.risk
    measures = problem.measures()
    state, aimed, x0, first = state or Rounds(), problem, None, None
    tried = problem.cvar_limit  # the last aim a continuous plan met
    least_miss = np.inf  # the least CVaR miss of the sellable starts tried
    for _ in range(1 + ROUNDING_RETRIES):
        try:
            res, rounds = solve_rows(aimed, risk, backend, gap, x0, state=state)
        except Infeasible as e:
            if first is None:
                raise PlanningError(f"the limits cannot all hold ({e})") from None
            # aimed past the least CVaR any plan reaches: halfway back
            aimed = replace(problem, cvar_limit=(aimed.cvar_limit + tried) / 2)
            continue
        first, tried = first or res, aimed.cvar_limit
        misses: list[float] = []  # how far the repair's starts miss the CVaR limit
        q, objective, inside = np.inf, np.inf, problem.targets.inside(problem.round_inside)
        if inside != problem.targets:  # a band to keep inside of
            q, objective = _rounded(replace(problem, targets=inside), measures, res.x, misses)
        if not np.isfinite(objective):
            misses.clear()  # the CVaR misses that count are those of the rounding asked for
            q, objective = _rounded(problem, measures, res.x, misses)
        if np.isfinite(objective):
            if aimed is not problem:
                notes.append(f"the continuous plan was held {problem.cvar_limit - aimed.cvar_limit:,.2f} $ inside the CVaR limit, "
                             "so that whole reservation units meet it")
            if res.cvar_price is not None and res.cvar_price > 1e-9:
                notes.append(f"the CVaR limit binds: each $ it is loosened lowers the objective by about {res.cvar_price:.4g} $ "
                             "(its multiplier; the same plan minimizes the objective plus that weight times CVaR)")
            # the lower bound of the problem as asked (an aimed limit's bound may exceed its optimum)
            return Solution(q, res.x, replace(res, lower=first.lower), objective, risk, rounds, notes)
        miss = misses[0] if misses else 0.0  # the start at margin 0: what rounding costs in CVaR
        if problem.cvar_limit is None or miss <= 0:
            break
        least_miss = min(least_miss, *(m for m in misses if m > 0))
        log.debug("no sellable plan near the continuous one meets the CVaR limit (the repair's first start misses it "
                  "by %.2f $); aiming the continuous plan inside by twice that", miss)
        aimed = replace(problem, cvar_limit=aimed.cvar_limit - 2 * miss)
        x0 = res.x
    cvar_note = (f": the sellable plans tried near it exceed the CVaR limit by {least_miss:,.2f} $ or more, "
                 "whole reservation units moving CVaR further than the continuous plan leaves" if np.isfinite(least_miss) else "")
    raise PlanningError(f"no sellable quantities near the continuous plan meet every limit{cvar_note}")


def _rounded(problem: Problem, measures: Measures | None, x: np.ndarray, misses: list[float]) -> tuple[np.ndarray, float]:
    """Sellable quantities near x meeting ``problem``'s limits, and their objective (inf: none found)."""
    risk, feasible = problem.risk, _feasible(problem, measures, problem.cvar_limit)
    with shared_bills():  # each candidate's objective, limits and CVaR from one bill
        return round_quantities(problem.objective, x, objective=lambda y: risk_objective(problem.objective, y, risk=risk),
                                feasible=feasible, limits=[lim.coefficients for lim in problem.limits],
                                repair=lambda z: _repair(problem, measures, feasible, z, misses))


def _repair(problem: Problem, measures: Measures | None, feasible, x: np.ndarray, misses: list[float]) -> np.ndarray | None:
    """A start near x meeting the linear limits, the floor caps, and the coverage band and CVaR
    limit linearized at x (:mod:`solver.repair`); each start's CVaR miss is appended to ``misses``."""
    inst, t = problem.nominal, problem.targets
    blocks = [sp.csr_matrix(np.array([lim.coefficients for lim in problem.limits]))] if problem.limits else []
    bounds = [np.array([lim.bound for lim in problem.limits])] if problem.limits else []
    caps = problem.floor_caps()
    if caps is not None:
        segments = CapacitySegments.of(inst)
        cap = caps(segments)
        finite = np.flatnonzero(np.isfinite(cap))
        blocks.append(segments.link[finite])
        bounds.append(cap[finite])
    c, g = measures.coverage_gradient(x) if measures is not None and (t.coverage_min or t.coverage_max) else (0.0, None)
    risk_row = _cvar_tangent(problem, x) if problem.cvar_limit is not None else None

    def rows(margins: np.ndarray):
        A, b = list(blocks), list(bounds)
        if g is not None and t.coverage_min is not None:
            A.append(sp.csr_matrix(-g[None, :]))
            b.append(np.array([c - g @ x - t.coverage_min - margins[0]]))
        if g is not None and t.coverage_max is not None:
            A.append(sp.csr_matrix(g[None, :]))
            b.append(np.array([t.coverage_max - c + g @ x]))
        if risk_row is not None:  # CVaR(x) + h·(q − x) ≤ limit
            value, h = risk_row
            A.append(sp.csr_matrix(h[None, :]))
            b.append(np.array([problem.cvar_limit - margins[1] - value + h @ x]))
        if not A:
            return sp.csr_matrix((0, inst.n_decisions)), np.zeros(0)
        return sp.vstack(A).tocsr(), np.concatenate(b)

    def shortfall(q: np.ndarray) -> np.ndarray:
        short_cov = 0.0 if t.coverage_min is None or measures is None else t.coverage_min - measures.coverage(q)
        short_cvar = 0.0 if problem.cvar_limit is None else cvar_of(problem, q) - problem.cvar_limit
        if q is not x:  # (repair sizes its margins on x itself, which is not a start)
            misses.append(short_cvar)
        return np.array([short_cov, short_cvar])

    cost = -marginal_values(problem.objective, x)
    return repair(np.asarray(x, float), inst.dec_increment, cost, rows, feasible, shortfall)


def _cvar_tangent(problem: Problem, x: np.ndarray) -> tuple[float, np.ndarray]:
    """CVaR of x and a subgradient: the tail scenarios' cost gradients, weighted by their share of
    the worst 1 − α of probability."""
    inst, w = problem.objective, problem.weights
    cov = evaluate(inst, x, duals=True)
    costs = scenario_costs(inst, x, cov)
    scen = sp.csr_matrix((np.ones(inst.hours), (inst.hour_scenario, np.arange(inst.hours))), shape=(len(w), inst.hours))
    od_grad = cluster_gradients(inst, cov, scen)  # of each scenario's probability-weighted on-demand $
    tail = 1.0 - problem.alpha
    share = np.zeros(len(w))
    left = tail
    for s in np.argsort(-costs, kind="stable"):
        share[s] = min(w[s], left)
        left -= share[s]
        if left <= 0:
            break
    lam = share / tail
    grads = inst.dec_window_cost[None, :] + od_grad / np.where(w > 0, w, 1.0)[:, None]
    return cvar(costs, w, problem.alpha), lam @ grads


def least_cvar_reason(problem: Problem, least: float) -> str:
    """Why a CVaR limit fails. Without utilization floors the problem is convex and the least CVaR
    is certain; with them the savings plans' caps are a fixed point, so it is the least found."""
    if problem.targets.utilization_floor is None:
        return f"the least CVaR any plan reaches is {least:,.2f} $"
    return f"the least CVaR the optimizer reached with the utilization floor is {least:,.2f} $"


def least_cvar(problem: Problem, backend: str = "highs", gap: float = 1e-5) -> float:
    """The CVaR of the plan that (nearly) minimizes CVaR under the other limits (β = 1,000).

    With a utilization floor, the savings plans' caps are first drawn at the risk-neutral plan and
    frozen, so that the search faces one convex set."""
    problem = replace(problem, cvar_limit=None)
    caps = problem.floor_caps()
    x0, neutral = None, np.inf
    if caps is not None:
        res0, _ = solve_rows(problem, problem.risk, backend, gap, None)
        x0, neutral = res0.x, cvar_of(problem, res0.x)
    with frozen(caps):
        res, _ = solve_rows(problem, RiskSpec(alpha=problem.alpha, weight=1000.0), backend, gap, x0)
    return min(cvar_of(problem, res.x), neutral)
