"""A simulated bill written out as FOCUS 1.2 rows: the bridge that lets the savings figures read
from a ledger be checked against the bill simulator (``solver.simulator``) to the cent.

The simulator reports totals per commitment, not who covered what in which hour, so the hourly
allocation is recomputed here from the billing rules of DESIGN.md §5, written out a second time
(reservations per pool pro rata to quantity; savings-plan groups narrowest first, pairs by
discount; the rest on demand). ``simulate_bill`` is still run on the same input and returned, so a
test that compares the ledger with it checks this allocation as well as the savings SQL.

Rows, as the FOCUS spec's commitment examples write them (amounts in the billing currency):

- on demand, per pool-hour: Usage / Standard, ListCost = EffectiveCost = BilledCost = units × rate;
- covered, per commitment, pool and hour: Usage / Committed / ``Used``, BilledCost 0, ListCost =
  units × on-demand rate (the on-demand equivalent), EffectiveCost = amortized cost of the part
  of the commitment used (a reservation: units × (rate + upfront / term hours); a savings plan:
  the $ of commitment consumed), CommitmentDiscountQuantity = normalized units or $ consumed;
- idle, per commitment and hour: Usage / Committed / ``Unused``, BilledCost 0, EffectiveCost =
  the idle part's amortized cost, ListCost = the idle capacity at on-demand rates (a reservation,
  as the spec's zero-utilization example) or the idle $ (a savings plan);
- fees: Purchase / Recurring per active hour (the hourly fee) and Purchase / One-Time at the start
  of the term when it has an upfront payment and starts inside the window; EffectiveCost 0.

Pools ``aws:ec2:{region}:{family}:linux`` are written as ``{family}.large`` instance hours (4
normalized units each) so that ingest maps the rows back to the same pool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from models import (
    Bill,
    Commitment,
    Offering,
    OfferingKind,
    PriceBook,
    Purchase,
    UsageMatrix,
)
from solver.simulator import simulate_bill

IDLE_EPSILON = 1e-12
"""Idle capacity below this (float noise of used = capacity) gets no Unused row."""


@dataclass
class FocusBill:
    path: Path
    bill: Bill
    commitment_ids: list[str]
    """CommitmentDiscountId of each of ``bill.commitments``, in the same order."""
    rows: int


@dataclass
class _Held:
    id: str
    offering: Offering
    quantity: float
    start: datetime
    end: datetime
    active: np.ndarray
    covered: dict[str, np.ndarray] = field(default_factory=dict)  # pool -> units covered per hour

    @property
    def hourly(self) -> np.ndarray:
        return self.quantity * self.active

    @property
    def unit_value(self) -> float:
        return self.offering.hourly_cost_per_unit()

    def used(self, pool: str, units: np.ndarray) -> np.ndarray:
        """Commitment consumed by ``units`` of ``pool``: units (reservation) or $ (savings plan)."""
        return units if self.offering.kind is OfferingKind.RESERVATION else units * self.offering.rates[pool]


def bill_to_focus(usage: UsageMatrix, prices: PriceBook, existing: list[Commitment], purchases: list[Purchase],
                  out: Path | str, provider: str = "AWS", currency: str = "USD") -> FocusBill:
    """Write the bill of ``usage`` under ``existing`` + ``purchases`` as a FOCUS 1.2 CSV at ``out``."""
    bill = simulate_bill(usage, prices, existing, purchases)
    held = _held(usage, prices, existing, purchases)
    demand = {p: np.asarray(usage.values[:, i], dtype=float).copy() for i, p in enumerate(usage.pools)}
    for h in held:
        for pool in h.offering.rates:
            demand.setdefault(pool, np.zeros(usage.hours))
    residual = {p: d.copy() for p, d in demand.items()}
    _reservations(residual, [h for h in held if h.offering.kind is OfferingKind.RESERVATION])
    _savings_plans(residual, prices, [h for h in held if h.offering.kind is OfferingKind.SAVINGS_PLAN])
    writer = _Rows(usage, provider, currency)
    for pool, left in residual.items():
        writer.usage(pool, left, prices.on_demand[pool])
    for h in held:
        writer.commitment(h, prices)
    frame = writer.frame()
    path = Path(out)
    frame.to_csv(path, index=False, float_format="%.12f", lineterminator="\n")
    return FocusBill(path, bill, [h.id for h in held], len(frame))


def _active(usage: UsageMatrix, start: datetime, end: datetime) -> np.ndarray:
    def first_hour(moment: datetime) -> int:
        return min(max(math.ceil((moment - usage.start).total_seconds() / 3600.0), 0), usage.hours)

    mask = np.zeros(usage.hours, dtype=bool)
    mask[first_hour(start):first_hour(end)] = True
    return mask


def _held(usage: UsageMatrix, prices: PriceBook, existing: list[Commitment], purchases: list[Purchase]) -> list[_Held]:
    """Existing commitments then purchases of quantity > 0: the simulator's order."""
    spans = [(c.offering, c.quantity, c.start, c.end) for c in existing]
    spans += [(p.offering, p.quantity, p.start, p.start + timedelta(hours=prices.offerings[p.offering].term_hours))
              for p in purchases if p.quantity > 0]
    return [_Held(f"cd-{k + 1:03d}-{o}", prices.offerings[o], q, s, e, _active(usage, s, e))
            for k, (o, q, s, e) in enumerate(spans)]


def _reservations(residual: dict[str, np.ndarray], held: list[_Held]) -> None:
    by_pool: dict[str, list[_Held]] = {}
    for h in held:
        by_pool.setdefault(h.offering.pool, []).append(h)
    for pool, group in by_pool.items():
        capacity = sum(h.hourly for h in group)
        covered = np.minimum(residual[pool], capacity)
        for h in group:
            h.covered[pool] = np.divide(covered * h.hourly, capacity, out=np.zeros_like(covered), where=capacity > 0)
        residual[pool] = residual[pool] - covered


def _savings_plans(residual: dict[str, np.ndarray], prices: PriceBook, held: list[_Held]) -> None:
    by_offering: dict[str, list[_Held]] = {}
    for h in held:
        by_offering.setdefault(h.offering.id, []).append(h)
    groups: dict[tuple[str, ...], list[Offering]] = {}
    for group in by_offering.values():
        groups.setdefault(tuple(sorted(group[0].offering.rates)), []).append(group[0].offering)
    for pools in sorted(groups, key=lambda g: (len(g), g)):
        remaining = {o.id: sum(h.hourly for h in by_offering[o.id]) for o in groups[pools]}
        total = {o_id: r.copy() for o_id, r in remaining.items()}

        def discount(pair: tuple[Offering, str]) -> tuple:
            o, p = pair
            od = prices.on_demand[p]
            return (-(1.0 - o.rates[p] / od) if od > 0 else math.inf, o.rates[p], o.id, p)

        for o, pool in sorted(((o, p) for o in groups[pools] for p in o.rates), key=discount):
            units = np.maximum(0.0, np.minimum(residual[pool], remaining[o.id] / o.rates[pool]))
            residual[pool] = residual[pool] - units
            remaining[o.id] = remaining[o.id] - units * o.rates[pool]
            for h in by_offering[o.id]:  # split among the offering's commitments pro rata to size
                share = np.divide(h.hourly, total[o.id], out=np.zeros_like(units), where=total[o.id] > 0)
                h.covered[pool] = h.covered.get(pool, 0.0) + units * share


class _Rows:
    """Column-wise accumulation of FOCUS rows (one numpy block per pool or commitment)."""

    def __init__(self, usage: UsageMatrix, provider: str, currency: str) -> None:
        hours = pd.date_range(usage.start, periods=usage.hours + 1, freq="h")
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        self.start, self.end = hours[:-1].strftime(fmt).to_numpy(), hours[1:].strftime(fmt).to_numpy()
        month = hours[:-1].tz_convert("UTC").tz_localize(None).to_period("M")
        self.period_start = month.to_timestamp().strftime(fmt).to_numpy()
        self.period_end = (month + 1).to_timestamp().strftime(fmt).to_numpy()
        self.window_start, self.window_end = usage.start, usage.end
        self.constant = {"ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
                         "BillingAccountId": "000000000001", "BillingAccountName": "simulated",
                         "BillingCurrency": currency, "ServiceName": "Amazon Elastic Compute Cloud",
                         "ServiceCategory": "Compute"}
        self.blocks: list[pd.DataFrame] = []

    def _add(self, mask: np.ndarray, **columns) -> None:
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return
        data = {"BillingPeriodStart": self.period_start[idx], "BillingPeriodEnd": self.period_end[idx],
                "ChargePeriodStart": self.start[idx], "ChargePeriodEnd": self.end[idx]}
        for name, value in columns.items():
            data[name] = value[idx] if isinstance(value, np.ndarray) else value
        self.blocks.append(pd.DataFrame(data))

    @staticmethod
    def _resource(pool: str) -> dict[str, str | None]:
        parts = pool.split(":")
        if len(parts) == 5 and parts[0] == "aws" and parts[1] == "ec2":
            return {"RegionId": parts[2], "x_InstanceType": f"{parts[3]}.large", "x_OperatingSystem": parts[4]}
        return {"RegionId": None, "x_InstanceType": None, "x_OperatingSystem": None}

    def usage(self, pool: str, units: np.ndarray, rate: float) -> None:
        cost = units * rate
        self._add(units > 0, ChargeCategory="Usage", ChargeFrequency="Usage-Based", PricingCategory="Standard",
                  ChargeDescription=f"on demand {pool}", ResourceId=pool, ConsumedQuantity=units / 4,
                  ConsumedUnit="Hours", PricingQuantity=units, PricingUnit="Normalized Hours",
                  ListUnitPrice=rate, ListCost=cost, ContractedCost=cost, EffectiveCost=cost, BilledCost=cost,
                  **self._resource(pool))

    def commitment(self, h: _Held, prices: PriceBook) -> None:
        o = h.offering
        reservation = o.kind is OfferingKind.RESERVATION
        ids = {"CommitmentDiscountId": h.id, "CommitmentDiscountName": o.id,
               "CommitmentDiscountType": "Reserved Instance" if reservation else "Savings Plan",
               "CommitmentDiscountCategory": "Usage" if reservation else "Spend",
               "CommitmentDiscountUnit": "Normalized Hour" if reservation else "USD"}
        used = np.zeros(len(h.active))
        for pool, units in h.covered.items():
            amount = h.used(pool, units)
            used = used + amount
            od = prices.on_demand[pool]
            self._add(units > 0, ChargeCategory="Usage", ChargeFrequency="Usage-Based", PricingCategory="Committed",
                      ChargeDescription=f"{o.id} covering {pool}", ResourceId=pool, ConsumedQuantity=units / 4,
                      ConsumedUnit="Hours", PricingQuantity=units, PricingUnit="Normalized Hours", ListUnitPrice=od,
                      ListCost=units * od, ContractedCost=units * od, EffectiveCost=amount * h.unit_value,
                      BilledCost=0.0, CommitmentDiscountStatus="Used", CommitmentDiscountQuantity=amount,
                      **ids, **self._resource(pool))
        idle = h.hourly - used
        idle_list = idle * prices.on_demand[o.pool] if reservation else idle
        self._add(h.active & (idle > IDLE_EPSILON), ChargeCategory="Usage", ChargeFrequency="Usage-Based",
                  PricingCategory="Committed", ChargeDescription=f"{o.id} unused", ResourceId=h.id,
                  ListCost=idle_list, ContractedCost=idle_list, EffectiveCost=idle * h.unit_value, BilledCost=0.0,
                  CommitmentDiscountStatus="Unused", CommitmentDiscountQuantity=idle, **ids)
        upfront = h.quantity * o.upfront
        recurring = h.quantity * (o.rates[o.pool] if reservation else 1.0 - o.upfront / o.term_hours)
        fee = np.full(len(h.active), recurring)
        self._add(h.active & (recurring > 0), ChargeCategory="Purchase", ChargeFrequency="Recurring",
                  PricingCategory="Standard", ChargeDescription=f"{o.id} hourly fee", ResourceId=h.id,
                  ListCost=fee, ContractedCost=fee, EffectiveCost=0.0, BilledCost=fee,
                  CommitmentDiscountQuantity=h.quantity, **ids)
        if upfront > 0 and self.window_start <= h.start < self.window_end:
            at = np.zeros(len(h.active), dtype=bool)
            at[int((h.start - self.window_start).total_seconds() // 3600)] = True
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            self._add(at, ChargeCategory="Purchase", ChargeFrequency="One-Time", PricingCategory="Standard",
                      ChargeDescription=f"{o.id} upfront", ResourceId=h.id, ListCost=upfront, ContractedCost=upfront,
                      EffectiveCost=0.0, BilledCost=upfront, CommitmentDiscountQuantity=h.quantity * o.term_hours,
                      **ids)
            self.blocks[-1]["ChargePeriodStart"] = h.start.strftime(fmt)
            self.blocks[-1]["ChargePeriodEnd"] = h.end.strftime(fmt)

    def frame(self) -> pd.DataFrame:
        frame = pd.concat(self.blocks, ignore_index=True) if self.blocks else pd.DataFrame()
        for name, value in self.constant.items():
            frame[name] = value
        return frame
