"""Arrays the optimizer works on, built once from usage, price book and existing commitments.

Decisions are (offering, purchase hour) pairs: buying at the window start, on monthly ladder dates,
or renewing an existing commitment when it expires are all just decisions.
Coverage order (DESIGN.md §5): reservations, then savings-plan *groups* (offerings with the same
eligible pools) from narrowest to broadest; within a group offerings apply cheapest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from models import Commitment, OfferingKind, PriceBook, UsageMatrix


@dataclass(frozen=True)
class SavingsPlanLayer:
    """One savings-plan offering as the coverage greedy sees it."""

    offering: str
    pools: np.ndarray  # pool indices in fill order (highest savings % first, ties lowest rate)
    rates: np.ndarray  # SP rate per unit-hour for those pools, same order
    group: int


@dataclass
class Instance:
    usage: UsageMatrix
    on_demand: np.ndarray  # (P,) $/unit-hour
    layers: list[SavingsPlanLayer]  # in application order
    existing_ri: np.ndarray  # (H, P) reserved units active from existing commitments
    existing_sp: np.ndarray  # (H, S) $/h of savings-plan commitment active, per layer
    existing_cost: float  # amortized cost of existing commitments inside the window
    # decisions
    dec_offering: list[str]
    dec_kind: np.ndarray  # 0 = reservation, 1 = savings plan
    dec_target: np.ndarray  # pool index (reservation) or layer index (savings plan)
    dec_start: np.ndarray  # first active hour (inclusive)
    dec_end: np.ndarray  # last active hour (exclusive), clipped to the window
    dec_unit_cost: np.ndarray  # amortized $ per unit (or per $/h) per active hour
    dec_increment: np.ndarray
    dec_upper: np.ndarray  # quantity beyond which buying more can only add cost
    notes: list[str] = field(default_factory=list)
    # Scenarios stacked along the hour axis (None: one scenario, hour t is time t, weight 1)
    hour_time: np.ndarray | None = None  # time offset in the horizon of each stacked hour
    hour_weight: np.ndarray | None = None  # probability of the scenario each stacked hour belongs to
    # (times the discount factor of the hour when costs are present values)
    dec_cost: np.ndarray | None = None  # cost in the window per unit of each decision, when not pro rata (NPV)
    # A sample of the stacked hours (:mod:`solver.hour_sample`); None: every hour of every scenario, in blocks
    hour_count: np.ndarray | None = None  # hours of the horizon each row stands for (hour_weight includes it)
    row_scenario: np.ndarray | None = None  # scenario of each row
    probabilities: np.ndarray | None = None  # probability of each scenario
    horizon_hours: int | None = None
    _flat: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def hours(self) -> int:
        """Rows of the usage matrix (all scenarios' hours when they are stacked)."""
        return self.usage.hours

    @property
    def horizon(self) -> int:
        """Hours of the planning horizon (of one scenario)."""
        if self.horizon_hours is not None:
            return self.horizon_hours
        return self.hours if self.hour_time is None else int(self.hour_time.max()) + 1

    @property
    def hour_scenario(self) -> np.ndarray:
        """Scenario index of each row (unless sampled, scenarios are stacked in blocks of ``horizon`` hours)."""
        if self.row_scenario is not None:
            return self.row_scenario
        return np.arange(self.hours) // max(self.horizon, 1)

    @property
    def scenario_weights(self) -> np.ndarray:
        if self.probabilities is not None:
            return self.probabilities
        if self.hour_weight is None:
            return np.ones(1)
        return self.hour_weight[:: max(self.horizon, 1)]

    @property
    def row_count(self) -> np.ndarray:
        """Hours of the horizon each row stands for: 1 each unless the rows are a sample."""
        return np.ones(self.hours) if self.hour_count is None else self.hour_count

    @property
    def sampled(self) -> bool:
        return self.hour_count is not None

    def span(self, a: int, b: int) -> slice | np.ndarray:
        """Rows of the usage matrix whose time lies in [a, b)."""
        if self.hour_time is None:
            return slice(int(a), int(b))
        return (self.hour_time >= a) & (self.hour_time < b)

    def spans_horizon(self) -> np.ndarray:
        """Mask of decisions active over the whole horizon."""
        return (self.dec_start == 0) & (self.dec_end == self.horizon)

    @property
    def n_pools(self) -> int:
        return len(self.usage.pools)

    @property
    def n_decisions(self) -> int:
        return len(self.dec_offering)

    @property
    def dec_window_cost(self) -> np.ndarray:
        """Cost in the window of one unit of each decision (pro rata to its active hours, or its
        present value when the instance is discounted)."""
        if self.dec_cost is not None:
            return self.dec_cost
        return self.dec_unit_cost * (self.dec_end - self.dec_start)

    @property
    def u(self) -> np.ndarray:
        return self.usage.values

    def layer_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Layers flattened for the compiled kernel: offsets, pool indices, rates (fill order)."""
        if self._flat is None:
            ptr = np.zeros(len(self.layers) + 1, dtype=np.int64)
            ptr[1:] = np.cumsum([len(layer.pools) for layer in self.layers])
            pools = np.concatenate([layer.pools for layer in self.layers]).astype(np.int64) if self.layers else np.zeros(0, np.int64)
            rates = np.concatenate([layer.rates for layer in self.layers]).astype(float) if self.layers else np.zeros(0)
            self._flat = (ptr, pools, rates)
        return self._flat


def _fill_order(pool_ids: list[int], rates: np.ndarray, on_demand: np.ndarray) -> np.ndarray:
    savings = 1.0 - rates / on_demand[pool_ids]
    # lexsort: last key is primary -> savings desc, then lower rate, then pool index
    order = np.lexsort((np.asarray(pool_ids), rates, -savings))
    return order


def build_layers(prices: PriceBook, pools: tuple[str, ...], on_demand: np.ndarray) -> list[SavingsPlanLayer]:
    index = {p: i for i, p in enumerate(pools)}
    plans = [o for o in prices.savings_plans() if any(p in index for p in o.rates)]
    groups: dict[tuple[str, ...], list] = {}
    for o in plans:
        groups.setdefault(tuple(sorted(o.rates)), []).append(o)
    ordered = sorted(groups, key=lambda key: (len(key), key))
    layers = []
    for g, key in enumerate(ordered):
        members = []
        for o in groups[key]:
            ids = [index[p] for p in key if p in index]
            rates = np.array([o.rates[pools[i]] for i in ids])
            order = _fill_order(ids, rates, on_demand)
            ratio = float(np.mean(rates / on_demand[ids]))
            members.append((ratio, o.id, np.asarray(ids)[order], rates[order]))
        for _, oid, ids, rates in sorted(members, key=lambda m: (m[0], m[1])):
            layers.append(SavingsPlanLayer(oid, ids, rates, g))
    return layers


def _active_span(start_hour: int, end_hour: int, hours: int) -> tuple[int, int]:
    return max(0, min(hours, start_hour)), max(0, min(hours, end_hour))


def commitment_span(usage: UsageMatrix, commitment: Commitment) -> tuple[int, int]:
    """Hours [a, b) of the window in which an existing commitment is active."""
    end = usage.hour_index(commitment.end - timedelta(microseconds=1)) + 1
    return _active_span(usage.hour_index(commitment.start), end, usage.hours)


def decision_upper_bounds(inst: Instance) -> np.ndarray:
    """Quantity beyond which buying more can only add cost: a reservation's pool at its peak, a
    savings plan's whole eligible usage at the busiest hour."""
    u = inst.u
    if not inst.hours:
        return np.zeros(inst.n_decisions)
    peak_pool = u.max(axis=0)
    rates = np.zeros((u.shape[1], len(inst.layers)))
    for s, layer in enumerate(inst.layers):
        rates[layer.pools, s] = layer.rates
    peak_layer = (u @ rates).max(axis=0) if inst.layers else np.zeros(0)
    kind, target = np.asarray(inst.dec_kind), np.asarray(inst.dec_target)
    out = np.zeros(inst.n_decisions)
    out[kind == 0] = peak_pool[target[kind == 0]]
    out[kind == 1] = peak_layer[target[kind == 1]]
    return out


def build_instance(
    usage: UsageMatrix,
    prices: PriceBook,
    existing: list[Commitment] | None = None,
    purchase_hours: tuple[int, ...] = (0,),
    prune_dominated: bool = True,
    renewals: tuple[tuple[str, int], ...] = (),
) -> Instance:
    """Arrays for buying any offering at each of ``purchase_hours`` (plus each ``(offering, hour)``
    of ``renewals``: the option to renew an existing commitment when it expires)."""
    pools = usage.pools
    missing = [p for p in pools if p not in prices.on_demand]
    if missing:
        raise ValueError(f"pools without an on-demand price: {missing}")
    H, P = usage.values.shape
    index = {p: i for i, p in enumerate(pools)}
    on_demand = np.array([prices.on_demand[p] for p in pools], dtype=float)
    layers = build_layers(prices, pools, on_demand)
    layer_index = {layer.offering: s for s, layer in enumerate(layers)}

    existing_ri = np.zeros((H, P))
    existing_sp = np.zeros((H, len(layers)))
    existing_cost = 0.0
    for c in existing or []:
        o = prices.offerings[c.offering]
        a, b = commitment_span(usage, c)
        if b <= a:
            continue
        existing_cost += c.quantity * o.hourly_cost_per_unit() * (b - a)
        if o.kind is OfferingKind.RESERVATION:
            if o.pool in index:
                existing_ri[a:b, index[o.pool]] += c.quantity
        elif o.id in layer_index:
            existing_sp[a:b, layer_index[o.id]] += c.quantity

    decisions = []
    dates = {o: sorted(set(purchase_hours)) for o in prices.offerings}
    for oid, h0 in renewals:
        if oid in dates and h0 not in dates[oid]:
            dates[oid] = sorted(dates[oid] + [h0])
    for o in sorted(prices.offerings.values(), key=lambda o: o.id):
        for h0 in dates[o.id]:
            a, b = _active_span(h0, h0 + o.term_hours, H)
            if b <= a:
                continue
            if o.kind is OfferingKind.RESERVATION:
                if o.pool not in index:
                    continue
                decisions.append((o.id, 0, index[o.pool], a, b, o.hourly_cost_per_unit(), o.increment))
            else:
                if o.id not in layer_index:
                    continue
                decisions.append((o.id, 1, layer_index[o.id], a, b, 1.0, o.increment))
    inst = Instance(
        usage=usage,
        on_demand=on_demand,
        layers=layers,
        existing_ri=existing_ri,
        existing_sp=existing_sp,
        existing_cost=existing_cost,
        dec_offering=[d[0] for d in decisions],
        dec_kind=np.array([d[1] for d in decisions], dtype=int),
        dec_target=np.array([d[2] for d in decisions], dtype=int),
        dec_start=np.array([d[3] for d in decisions], dtype=int),
        dec_end=np.array([d[4] for d in decisions], dtype=int),
        dec_unit_cost=np.array([d[5] for d in decisions], dtype=float),
        dec_increment=np.array([d[6] for d in decisions], dtype=float),
        dec_upper=np.zeros(len(decisions)),
    )
    inst.dec_upper = decision_upper_bounds(inst)
    return prune(inst) if prune_dominated else inst


def dominated_decisions(inst: Instance) -> np.ndarray:
    """Mask of decisions another decision beats on every hour at no more cost.

    Two reservations on one pool active over the same hours: the one with the higher amortized
    rate is never needed. Two savings plans of one group over the same hours: the one whose rate
    is at least the other's on every pool is never needed. Ties keep the first by offering id.
    """
    out = np.zeros(inst.n_decisions, dtype=bool)
    groups: dict[tuple, list[int]] = {}
    for j in range(inst.n_decisions):
        kind, target = int(inst.dec_kind[j]), int(inst.dec_target[j])
        key = (kind, target if kind == 0 else inst.layers[target].group, int(inst.dec_start[j]), int(inst.dec_end[j]))
        groups.setdefault(key, []).append(j)
    for (kind, *_), members in groups.items():
        if len(members) < 2:
            continue
        if kind == 0:
            best = min(members, key=lambda j: (inst.dec_unit_cost[j], j))
            out[[j for j in members if j != best]] = True
            continue
        rates = {j: dict(zip(inst.layers[inst.dec_target[j]].pools.tolist(), inst.layers[inst.dec_target[j]].rates.tolist()))
                 for j in members}
        for i in members:
            for j in members:
                if i == j or out[j]:
                    continue
                no_worse = all(rates[j][p] <= r for p, r in rates[i].items())
                strictly = any(rates[j][p] < r for p, r in rates[i].items())
                if no_worse and (strictly or j < i):
                    out[i] = True
                    break
    return out


def prune(inst: Instance) -> Instance:
    return select(inst, ~dominated_decisions(inst), "offerings never pay off against a cheaper one over the same hours and were left out")


def select(inst: Instance, keep: np.ndarray, why: str) -> Instance:
    """Keep only the decisions in ``keep`` (in place), noting how many were left out and why."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return inst
    idx = np.flatnonzero(keep)
    inst.notes.append(f"{int((~keep).sum())} {why}")
    inst.dec_offering = [inst.dec_offering[i] for i in idx]
    for name in ("dec_kind", "dec_target", "dec_start", "dec_end", "dec_unit_cost", "dec_increment", "dec_upper", "dec_cost"):
        if getattr(inst, name) is not None:
            setattr(inst, name, getattr(inst, name)[idx])
    return inst
