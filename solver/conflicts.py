"""When a policy's limits cannot all hold, find the smallest set that conflicts and say it in words.

Buying nothing meets every limit on purchases (budgets, shares, caps, floors), so a conflict
always involves a coverage minimum, a CVaR limit, or a coverage maximum below what the existing
commitments already cover. Feasibility of a set of limits is decided by:

- coverage min: the most coverage reachable under the other limits (a solve that minimizes the
  uncovered share, commitment prices set to zero) must reach it;
- coverage max: the existing commitments alone (buying nothing) must not exceed it;
- CVaR limit: the full solve (which raises the CVaR weight until the limit holds) must succeed.

A deletion filter then drops each limit whose removal leaves the rest still in conflict; what
remains is irreducible: removing any one of its limits makes the others feasible.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models import Commitment, PriceBook
from models.policy import Policy
from models.errors import PlanningError
from solver.constrained import Infeasible, Problem, Solution, least_cvar, least_cvar_reason, solve_problem, solve_rows
from solver.risk import RiskSpec
from solver.hour_sample import restrict, stratified
from solver.instance import Instance
from solver.nonlinear_limits import Measures
from solver.policy_limits import problem_for
from solver.sampled_solve import floor_scenario, sample_for, solve_sampled

# policy keys that are limits, in the order they are described
LIMIT_KEYS = (
    "coverage_min", "coverage_max", "cvar_limit", "utilization_floor", "upfront_budget", "max_three_year_share",
    "max_monthly_purchase", "max_monthly_expiry", "allowed_kinds", "allowed_terms", "allowed_payments",
)
_UNSET = {key: Policy.model_fields[key].default for key in LIMIT_KEYS}


def describe(policy: Policy, key: str) -> str:
    v = getattr(policy, key)
    return {
        "coverage_min": lambda: f"coverage of at least {v:.1%}",
        "coverage_max": lambda: f"coverage of at most {v:.1%}",
        "cvar_limit": lambda: f"CVaR{policy.alpha:.0%} of cost at most {v:,.2f} $",
        "utilization_floor": lambda: f"utilization of every new commitment of at least {v:.1%} in the "
                                     f"{policy.utilization_scenario} scenario",
        "upfront_budget": lambda: f"an upfront budget of {v:,.2f} $",
        "max_three_year_share": lambda: f"at most {v:.0%} of new commitment in 3-year terms",
        "max_monthly_purchase": lambda: f"at most {v:g} $/h of new commitment bought in any one month",
        "max_monthly_expiry": lambda: f"at most {v:g} $/h of commitment expiring in any one month",
        "allowed_kinds": lambda: "only " + " and ".join(k.value.replace("_", " ") + "s" for k in v) + " allowed",
        "allowed_terms": lambda: "only terms of " + ", ".join(str(t) for t in v) + " months allowed",
        "allowed_payments": lambda: "only " + ", ".join(p.value.replace("_", " ") for p in v) + " payments allowed",
    }[key]()


def _only(policy: Policy, keys: set[str]) -> Policy:
    """``policy`` with every limit outside ``keys`` lifted (other settings kept)."""
    return policy.model_copy(update={k: _UNSET[k] for k in LIMIT_KEYS if k not in keys})


class _Oracle:
    def __init__(self, inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy, backend: str):
        self.inst, self.prices, self.existing, self.policy, self.backend = inst, prices, existing, policy, backend
        self.reach: dict[frozenset, float] = {}
        self.reasons: dict[frozenset, str] = {}  # why the CVaR limit failed, per set of limits

    def _problem(self, keys: set[str]):
        return problem_for(replace(self.inst, notes=[]), self.prices, self.existing, _only(self.policy, keys))[0]

    def most_coverage(self, keys: set[str]) -> float:
        """The most coverage a plan can reach under the limits in ``keys`` (coverage min ignored)."""
        key = frozenset(keys - {"coverage_min", "cvar_limit"})
        if key not in self.reach:
            p = self._problem(set(key))
            m = Measures(p.nominal, p.weights)
            weight = (p.weights * m.scale)[p.nominal.hour_scenario] * p.nominal.row_count
            phase1 = replace(p.nominal, hour_weight=weight, dec_cost=np.zeros(p.nominal.n_decisions), existing_cost=0.0,
                             notes=[], _flat=None)
            try:  # the continuous optimum bounds what any sellable plan reaches
                res, _ = solve_rows(replace(p, objective=phase1, risk=None, cvar_limit=None), None, self.backend, 1e-5, None)
                self.reach[key] = m.coverage(res.x)
            except Infeasible:
                self.reach[key] = -np.inf
        return self.reach[key]

    def feasible(self, keys: set[str]) -> bool:
        p = self.policy
        if {"coverage_min", "coverage_max"} <= keys and p.coverage_min > p.coverage_max:
            return False
        if "coverage_max" in keys:
            prob = self._problem(keys)
            if Measures(prob.nominal, prob.weights).coverage(np.zeros(prob.nominal.n_decisions)) > p.coverage_max + 1e-9:
                return False
        if "coverage_min" in keys and self.most_coverage(keys) < p.coverage_min - 1e-6:
            return False
        if "cvar_limit" in keys:
            problem = self._problem(keys)
            try:
                least = least_cvar(problem, self.backend)
            except Infeasible:  # the other limits already conflict
                return False
            if least > p.cvar_limit:
                self.reasons[frozenset(keys)] = least_cvar_reason(problem, least)
                return False
        return True


def smallest_conflict(inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy,
                      backend: str = "highs") -> tuple[list[str], _Oracle]:
    """An irreducible set of the policy's limit keys that cannot all hold (deletion filter)."""
    oracle = _Oracle(inst, prices, existing, policy, backend)
    keys = [k for k in LIMIT_KEYS if getattr(policy, k) != _UNSET[k]]
    if oracle.feasible(set(keys)):
        return [], oracle
    kept = list(keys)
    for k in keys:
        trial = [x for x in kept if x != k]
        if not oracle.feasible(set(trial)):
            kept = trial
    return kept, oracle


def explain_conflict(inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy,
                     backend: str = "highs", found: tuple[list[str], _Oracle] | None = None, why: str = "") -> str:
    """The smallest conflict in words (``found``: the result of :func:`smallest_conflict`, if known;
    ``why``: the solver's own reason, said when no limits conflict)."""
    keys, oracle = found or smallest_conflict(inst, prices, existing, policy, backend)
    if not keys:
        return ("the limits can hold together, but the solver did not reach a plan that meets them all"
                + (f" ({why})" if why else "") + "; loosen one a little")
    words = [describe(policy, k) for k in keys]
    text = ("these limits cannot all hold together: " + "; ".join(words) if len(words) > 1
            else f"this limit cannot hold: {words[0]}")
    if "coverage_min" in keys:
        reach = oracle.most_coverage(set(keys))
        others = [describe(policy, k) for k in keys if k != "coverage_min"]
        within = " with " + " and ".join(others) if others else ""
        # with a floor the savings plans' caps are a fixed point (solver.nonlinear_limits.FloorCaps):
        # the coverage reached is the most the optimizer found, not a bound
        who = "the optimizer reached" if "utilization_floor" in keys else "any plan reaches"
        text += f" (the most coverage {who}{within} is {max(reach, 0.0):.1%})"
    elif "cvar_limit" in keys and frozenset(keys) in oracle.reasons:
        text += f" ({oracle.reasons[frozenset(keys)]})"
    elif keys == ["coverage_max"]:
        prob = oracle._problem({"coverage_max"})
        now = Measures(prob.nominal, prob.weights).coverage(np.zeros(prob.nominal.n_decisions))
        text += f" (the existing commitments alone already cover {now:.1%})"
    return text + ". Loosen or remove one of them."


def solve_under_policy(inst: Instance, prices: PriceBook, existing: list[Commitment], policy: Policy | None,
                       risk: RiskSpec | None = None, backend: str = "highs", gap: float = 1e-6,
                       sample_per_month: int | None = None) -> tuple[Problem, Solution, list[str]]:
    """Solve ``inst`` under every limit of ``policy``; when they cannot all hold, the PlanningError
    names the smallest conflicting set. Returns the problem, its solution and the policy's notes.

    A problem may be optimized on a sample of ``sample_per_month`` hours per scenario and month
    (:mod:`solver.sampled_solve`; None: the default size when the problem is large, 0: never); the
    limits are still held on all hours, and a conflict is then found on the sample."""
    base = replace(inst, notes=list(inst.notes))  # the policy drops decisions in place; the explanation needs them all
    problem, notes = problem_for(inst, prices, existing, policy, risk)
    sample = sample_for(problem, sample_per_month)
    if sample is not None:
        try:
            return problem, solve_sampled(problem, sample, backend=backend, gap=gap), notes
        except PlanningError:
            if policy is None:
                raise
            # limits that conflict on the sample are reported from it (quickly); when none do, the
            # sample only failed to reach a plan, and all hours decide
            # with the floor's scenario whole, so that the floors are exact on the smaller instance too
            small = restrict(base, stratified(base, sample.per_block, floor_scenario(problem)))
            found = smallest_conflict(small, prices, existing, policy, backend)
            if found[0]:
                why = explain_conflict(small, prices, existing, policy, backend, found)
                raise PlanningError(f"{why} (measured on the sample of {len(sample.rows):,} scenario-hours the plan "
                                    "is optimized on)") from None
    try:
        return problem, solve_problem(problem, backend=backend, gap=gap), notes
    except PlanningError as e:
        if policy is None:
            raise
        raise PlanningError(explain_conflict(base, prices, existing, policy, backend, why=str(e))) from None
