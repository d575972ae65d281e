"""Risk in the decomposition: CVaR of cost over the scenarios (Rockafellar–Uryasev), as an objective
term weighted by risk aversion or as a limit.

CVaR_α is min over η of η + E[(cost − η)^+] / (1 − α). In the master LP that is a column η, one
column z_s ≥ 0 per scenario and rows z_s ≥ cost_s − η, where cost_s is the scenario's fixed and
commitment cost plus its clusters' modelled on-demand cost (:func:`risk_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solver.backends import INF
from solver.coverage import evaluate, total_cost
from solver.instance import Instance


@dataclass(frozen=True)
class RiskSpec:
    """Objective E[cost] + weight · CVaR_alpha[cost] over the scenarios (Rockafellar–Uryasev).

    ``alpha`` is the confidence level (0.95: the mean of the worst 5% of outcomes), not a quantile
    of savings; ``weight`` ≥ 0 is the risk aversion (0: the risk-neutral plan).
    """

    alpha: float = 0.95
    weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha is the CVaR confidence level in [0, 1), got {self.alpha}")
        if self.weight < 0:
            raise ValueError(f"the risk weight must be ≥ 0, got {self.weight}")


def cvar(costs: np.ndarray, probabilities: np.ndarray, alpha: float) -> float:
    """CVaR_alpha of a discrete cost distribution: min over η of η + E[(cost − η)^+] / (1 − alpha)."""
    costs = np.asarray(costs, float)
    return float(min(eta + probabilities @ np.maximum(costs - eta, 0.0) / (1 - alpha) for eta in costs))


def risk_objective(inst: Instance, x: np.ndarray, cov=None, risk: RiskSpec | None = None) -> float:
    """E[cost] + weight · CVaR_alpha[cost] of x (just E[cost] without risk)."""
    cov = cov if cov is not None else evaluate(inst, x, duals=False)
    return objective_and_tail(inst, x, cov, risk if risk is not None and risk.weight > 0 else None)[0]


def objective_and_tail(inst: Instance, x: np.ndarray, cov, risk: RiskSpec | None) -> tuple[float, float | None]:
    """(E[cost] + weight · CVaR_alpha[cost], CVaR_alpha[cost]) of x billed as ``cov``; (E[cost], None)
    without a risk spec."""
    expected = total_cost(inst, x, cov)
    if risk is None:
        return expected, None
    tail = cvar(scenario_costs(inst, x, cov), inst.scenario_weights, risk.alpha)
    return expected + risk.weight * tail, tail


def scenario_costs(inst: Instance, x: np.ndarray, cov) -> np.ndarray:
    """Total cost of x in each scenario (the on-demand part un-weighted)."""
    w = inst.scenario_weights
    od = np.bincount(inst.hour_scenario, weights=cov.on_demand_hourly, minlength=len(w))
    return inst.existing_cost + float(inst.dec_window_cost @ x) + np.divide(od, w, out=np.zeros_like(od), where=w > 0)


def risk_rows(inst: Instance, cluster_scenario: np.ndarray, risk: RiskSpec, cvar_limit: float | None = None):
    """Columns η (free) and z_s ≥ 0 and rows z_s + η − c·x − Σ_{k∈s} θ_k / w_s ≥ fixed (one per
    scenario), over [x | θ | η | z]. With a CVaR limit L, also a column v ≥ 0 (the violation) and
    the row η + Σ_s w_s z_s / (1 − α) − v ≤ L: the trust-region master prices v (an exact penalty),
    the bounding master holds it at 0."""
    w = inst.scenario_weights
    S, n, k = len(w), inst.n_decisions, len(cluster_scenario)
    limited = cvar_limit is not None
    cost = np.r_[risk.weight, risk.weight * w / (1 - risk.alpha), np.zeros(int(limited))]
    lo = np.r_[-INF, np.zeros(S + int(limited))]
    A = np.zeros((S + int(limited), n + k + 1 + S + int(limited)))
    A[:S, :n] = -inst.dec_window_cost
    scen = cluster_scenario
    inv_w = np.divide(1.0, w, out=np.zeros_like(w), where=w > 0)
    A[scen, n + np.arange(k)] = -inv_w[scen]
    A[:S, n + k] = 1.0
    A[np.arange(S), n + k + 1 + np.arange(S)] = 1.0
    rhs = np.full(S, inst.existing_cost)
    if limited:  # −η − Σ w_s z_s / (1 − α) + v ≥ −L
        A[S, n + k] = -1.0
        A[S, n + k + 1 : n + k + 1 + S] = -w / (1 - risk.alpha)
        A[S, -1] = 1.0
        rhs = np.r_[rhs, -cvar_limit]
    return cost, lo, A, rhs


SHIFT_EMPTY = 2.0
"""Until a plan that meets a CVaR limit is found, the master's aim moves inside by this many times its
last under-estimate of CVaR, to find one sooner (at 200 pools the round with the limit took 19
iterations with 1 or 2, 22 with 5)."""
CVAR_MARGIN = 1e-5
"""A CVaR limit's master row aims this share of the limit inside it: the plans the master proposes
approach its row from above (the cuts under-estimate each scenario's cost), so the last ones meet
the limit itself. It costs the limit's multiplier times 1e-5 of the limit (at 200 pools, ~0.03 $)."""
