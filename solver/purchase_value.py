"""Break-even utilization and marginal value of every decision, from the duals of the hourly billing.

Marginal value: the cost of a plan ``x`` is ``existing + dec_window_cost · x + on-demand(x)``; the
duals of the hourly billing LP give ``∂ on-demand / ∂x`` (:func:`solver.coverage.cluster_gradients`
with one cluster holding every hour), so ``marginal_value = −(dec_window_cost + ∂ on-demand / ∂x)``:
the $ one more unit (reservation) or one more $/h (savings plan) saves in the window. The kernel's
duals are the derivative in the direction of buying more (at an hour where usage equals the
reservations exactly, one more unit helps nothing), so this is the right derivative: exact for
any step up to the next kink of the piecewise-linear bill.

Break-even utilization: the share of its capacity a purchase must be used to cost exactly what the
usage it covers would cost on demand.
- reservation: amortized $ per unit-hour ÷ the pool's on-demand rate;
- savings plan: the $ of commitment its layer spends ÷ the on-demand value of the usage that spend
  covers, over the decision's active hours in the plan ``x`` (the covered-usage-weighted ratio of
  SP rate to on-demand rate of the pools it actually covers). Used a share ``b`` of its hours'
  commitment, it saves exactly ``spend / b − cost``. When the layer covers nothing in the plan,
  the ratio of its most discounted eligible pool (the pool its first dollar would cover).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from solver.coverage import Coverage, capacities, cluster_gradients, evaluate
from solver.instance import Instance


def marginal_values(inst: Instance, x: np.ndarray, cov: Coverage | None = None) -> np.ndarray:
    """(n,) $ saved in the window per unit of each decision bought beyond ``x`` (−∂cost/∂x_j)."""
    x = np.asarray(x, dtype=float)
    if cov is None or cov.pi is None:
        cov = evaluate(inst, x, duals=True)
    every_hour = sp.csr_matrix(np.ones((1, inst.hours)))
    on_demand_gradient = cluster_gradients(inst, cov, every_hour)[0]
    return -(inst.dec_window_cost + on_demand_gradient)


def layer_cover(inst: Instance, x: np.ndarray, layers: set[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per savings-plan layer in ``layers`` that holds commitment in ``x``: the $ of commitment it
    spends and the on-demand value of the usage that spend covers, hour by hour ((H,) each).

    The greedy applies layers in order and a layer never changes what earlier ones cover, so the
    units layer ``s`` covers are the residual with layers ``< s`` active minus the residual with
    layers ``≤ s`` active, both billed by the same kernel as the plan.
    """
    from solver.kernels import bill_hours

    ri_cap, sp_cap = capacities(inst, np.asarray(x, dtype=float))
    ptr, pools, rates = inst.layer_arrays()
    held = [s for s in sorted(layers) if (sp_cap[:, s] > 0).any()]

    def residual_with_layers_below(k: int) -> np.ndarray:
        cap = sp_cap.copy()
        cap[:, k:] = 0.0
        return bill_hours(inst.u, ri_cap, cap, inst.on_demand, ptr, pools, rates, False)[0]

    out = {}
    cache: dict[int, np.ndarray] = {}
    for s in held:
        before = cache.pop(s, None)
        if before is None:
            before = residual_with_layers_below(s)
        after = residual_with_layers_below(s + 1)
        cache[s + 1] = after
        E = inst.layers[s].pools
        # (before − after)[:, E] @ rates as products with rates spread over every pool: no copy of the
        # hours × pools block (at 175,200 hours × 200 pools the copies took 5 s)
        rate, value = np.zeros(inst.n_pools), np.zeros(inst.n_pools)
        rate[E], value[E] = inst.layers[s].rates, inst.on_demand[E]
        out[s] = (before @ rate - after @ rate, before @ value - after @ value)
    return out


def break_even_utilizations(inst: Instance, x: np.ndarray) -> np.ndarray:
    """(n,) break-even utilization of each decision (definitions in the module docstring)."""
    x = np.asarray(x, dtype=float)
    out = np.empty(inst.n_decisions)
    ri = inst.dec_kind == 0
    out[ri] = inst.dec_unit_cost[ri] / inst.on_demand[inst.dec_target[ri]]
    sps = np.flatnonzero(~ri)
    covered = layer_cover(inst, x, {int(inst.dec_target[j]) for j in sps})
    weight = inst.hour_weight if inst.hour_weight is not None else np.ones(inst.hours)
    for j in sps:
        s = int(inst.dec_target[j])
        layer = inst.layers[s]
        spend, value = (0.0, 0.0)
        if s in covered:
            rows = inst.span(inst.dec_start[j], inst.dec_end[j])
            spend, value = float(weight[rows] @ covered[s][0][rows]), float(weight[rows] @ covered[s][1][rows])
        out[j] = spend / value if value > 0 else float(np.min(layer.rates / inst.on_demand[layer.pools]))
    return out


def purchase_values(inst: Instance, x: np.ndarray, cov: Coverage | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(break-even utilization, marginal value per unit) of every decision for plan ``x``."""
    return break_even_utilizations(inst, x), marginal_values(inst, x, cov)
