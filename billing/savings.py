"""What commitments really saved, read from the ledger the FOCUS way (DESIGN.md §7).

Definitions (the same SQL serves every grouping: month, commitment, day):

- *consumption*: Usage rows except a commitment's ``Unused`` rows (idle capacity is not usage).
- *on-demand equivalent* (ODE) = Σ ListCost of consumption: what the usage would have cost at
  list prices; covered usage's ListCost is its on-demand equivalent. Purchase rows, Unused rows,
  taxes, credits and adjustments never enter it. When some consumption row has no ListCost (the
  spec's usage scenarios, some exports), ODE and everything derived from it are None and
  ``usage_rows_without_list_cost`` says how many rows lack it.
- *effective cost* = Σ EffectiveCost of Usage rows (Used, Unused, Standard …) plus of commitment
  Purchase rows (0 in FOCUS, where fees are amortized into usage; counted in case a provider
  does not amortize). Taxes, credits, adjustments and other purchases (subscriptions) are
  ``other_cost``: outside savings, so that effective + other = Σ EffectiveCost.
- *savings* = ODE − effective cost; *ESR* = savings / ODE (≤ 1 when costs are ≥ 0, negative when
  commitments cost more than they save).
- *covered*: consumption with a commitment id whose status is ``Used`` (no status: PricingCategory
  Committed / Commitment-Based). *eligible*: consumption priced Standard or Committed (FOCUS 1.0:
  On-Demand, Commitment-Based) — spot and other pricing no commitment covers; with
  ``eligible="pools"`` also only rows a pool rule recognizes (compute a commitment can cover) or
  covered. *coverage* = ListCost(covered) / ListCost(eligible).
- *commitment cost* = EffectiveCost of Used + Unused rows (+ commitment purchases' EffectiveCost);
  *unused commitment cost* = EffectiveCost of Unused rows.
- *utilization*: per commitment, FOCUS's Σ CommitmentDiscountQuantity(Used) / Σ (Used + Unused)
  (in its own unit); across commitments, whose units differ, weighted by amortized cost:
  EffectiveCost(Used) / EffectiveCost(Used + Unused). Both equal the simulator's.
- per commitment, *savings* = ListCost of the usage it covered − its amortized cost (EffectiveCost
  of its Used and Unused rows); summed over commitments, plus ListCost − EffectiveCost of uncovered
  usage (negotiated or spot discounts), they make the month's savings.
Months are calendar months (UTC) of ChargePeriodStart, per provider and billing currency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from billing.ledger import open_ledger

USAGE = "charge_category = 'Usage'"
IDLE = f"({USAGE} AND commitment_discount_status = 'Unused')"
CONSUMED = f"({USAGE} AND commitment_discount_status IS DISTINCT FROM 'Unused')"
COVERED = (f"({CONSUMED} AND commitment_discount_id IS NOT NULL AND (commitment_discount_status = 'Used' OR "
           "(commitment_discount_status IS NULL AND pricing_category IN ('Committed', 'Commitment-Based'))))")
PRICED = "pricing_category IN ('Standard', 'Committed', 'On-Demand', 'Commitment-Based')"
COUNTED = f"({USAGE} OR (charge_category = 'Purchase' AND commitment_discount_id IS NOT NULL))"
ELIGIBLE = {"pricing": f"({CONSUMED} AND {PRICED})",
            "pools": f"({CONSUMED} AND {PRICED} AND (pool IS NOT NULL OR {COVERED}))"}
COMMITTED = f"({COVERED} OR {IDLE} OR (charge_category = 'Purchase' AND commitment_discount_id IS NOT NULL))"

MEASURES = {
    "ode": f"sum(list_cost) FILTER (WHERE {CONSUMED})",
    "missing_list": f"count(*) FILTER (WHERE {CONSUMED} AND list_cost IS NULL)",
    "effective": f"sum(effective_cost) FILTER (WHERE {COUNTED})",
    "covered_ode": f"sum(list_cost) FILTER (WHERE {COVERED})",
    "eligible_ode": "sum(list_cost) FILTER (WHERE {eligible})",
    "used_cost": f"sum(effective_cost) FILTER (WHERE {COVERED})",
    "unused_cost": f"sum(effective_cost) FILTER (WHERE {IDLE})",
    "commitment_cost": f"sum(effective_cost) FILTER (WHERE {COMMITTED} AND commitment_discount_id IS NOT NULL)",
    "on_demand_cost": f"sum(effective_cost) FILTER (WHERE {CONSUMED} AND NOT {COVERED})",
    "other_cost": f"sum(effective_cost) FILTER (WHERE NOT {COUNTED})",
    "billed": "sum(billed_cost)",
    "purchase_billed": "sum(billed_cost) FILTER (WHERE charge_category = 'Purchase')",
    "used_q": f"sum(commitment_discount_quantity) FILTER (WHERE {COVERED})",
    "unused_q": f"sum(commitment_discount_quantity) FILTER (WHERE {IDLE})",
    "missing_q": f"count(*) FILTER (WHERE ({COVERED} OR {IDLE}) AND commitment_discount_quantity IS NULL)",
}
ZERO = Decimal(0)


def aggregate(connection: duckdb.DuckDBPyConnection, keys: dict[str, str], where: str = "true",
              params: list | None = None, eligible: str = "pricing") -> list[dict[str, Any]]:
    """One dict per group: the key columns and every measure (money as Decimal, 0 when empty)."""
    if eligible not in ELIGIBLE:
        raise ValueError(f"eligible must be one of {sorted(ELIGIBLE)}, got {eligible!r}")
    select = [f"{sql} AS {name}" for name, sql in keys.items()]
    select += [f"{sql.format(eligible=ELIGIBLE[eligible])} AS {name}" for name, sql in MEASURES.items()]
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))} ORDER BY ALL" if keys else ""
    cursor = connection.execute(f"SELECT {', '.join(select)} FROM charges WHERE {where}{group}", params or [])
    names = [d[0] for d in cursor.description]
    return [{n: (ZERO if v is None and n in MEASURES else v) for n, v in zip(names, row)} for row in cursor.fetchall()]


def _ratio(a: Decimal | None, b: Decimal | None) -> float | None:
    return float(a / b) if a is not None and b else None


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


@dataclass
class Figures:
    on_demand_equivalent: Decimal | None
    effective_cost: Decimal
    savings: Decimal | None
    effective_savings_rate: float | None
    covered_on_demand_equivalent: Decimal | None
    coverage: float | None
    commitment_cost: Decimal
    unused_commitment_cost: Decimal
    utilization: float | None
    on_demand_cost: Decimal
    other_cost: Decimal
    billed_cost: Decimal
    usage_rows_without_list_cost: int

    @classmethod
    def of(cls, m: dict[str, Any], **keys: Any) -> Any:
        """Figures of one aggregate row (``keys`` fill a subclass's own fields)."""
        known = m["missing_list"] == 0
        ode = m["ode"] if known else None
        savings = ode - m["effective"] if ode is not None else None
        committed = m["used_cost"] + m["unused_cost"]
        return cls(
            on_demand_equivalent=ode, effective_cost=m["effective"], savings=savings,
            effective_savings_rate=_ratio(savings, ode),
            covered_on_demand_equivalent=m["covered_ode"] if known else None,
            coverage=_ratio(m["covered_ode"], m["eligible_ode"]) if known else None,
            commitment_cost=m["commitment_cost"], unused_commitment_cost=m["unused_cost"],
            utilization=_ratio(m["used_cost"], committed), on_demand_cost=m["on_demand_cost"],
            other_cost=m["other_cost"], billed_cost=m["billed"], usage_rows_without_list_cost=m["missing_list"],
            **keys,
        )

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass
class MonthSavings(Figures):
    month: str
    provider: str | None
    billing_currency: str | None


MONTH = "strftime(date_trunc('month', charge_period_start), '%Y-%m')"


def monthly_savings(ledger: Path | str, eligible: str = "pricing") -> list[MonthSavings]:
    """Per calendar month, provider and billing currency: ODE, effective cost, savings, ESR, …"""
    connection = open_ledger(ledger, read_only=True)
    try:
        rows = aggregate(connection, {"month": MONTH, "provider": "provider", "currency": "billing_currency"},
                         eligible=eligible)
    finally:
        connection.close()
    return [MonthSavings.of(r, month=r["month"], provider=r["provider"], billing_currency=r["currency"]) for r in rows]


@dataclass
class CommitmentFigures:
    """One commitment over a span: what it covered, cost, saved and left idle."""

    covered_on_demand_equivalent: Decimal | None
    amortized_cost: Decimal
    savings: Decimal | None
    """ListCost of the usage it covered − EffectiveCost of its Used and Unused rows (and purchases)."""
    savings_rate: float | None
    unused_cost: Decimal
    used_quantity: Decimal | None
    unused_quantity: Decimal | None
    utilization: float | None
    """FOCUS: Used / (Used + Unused) of CommitmentDiscountQuantity; by EffectiveCost where the bill has
    no quantity."""
    purchase_billed_cost: Decimal

    @classmethod
    def of(cls, m: dict[str, Any], **keys: Any) -> Any:
        covered = m["covered_ode"] if m["missing_list"] == 0 else None
        savings = covered - m["commitment_cost"] if covered is not None else None
        has_q = m["missing_q"] == 0 and (m["used_q"] or m["unused_q"])
        utilization = (_ratio(m["used_q"], m["used_q"] + m["unused_q"]) if has_q
                       else _ratio(m["used_cost"], m["used_cost"] + m["unused_cost"]))
        return cls(covered_on_demand_equivalent=covered, amortized_cost=m["commitment_cost"], savings=savings,
                   savings_rate=_ratio(savings, covered), unused_cost=m["unused_cost"],
                   used_quantity=m["used_q"] if has_q else None, unused_quantity=m["unused_q"] if has_q else None,
                   utilization=utilization, purchase_billed_cost=m["purchase_billed"], **keys)

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


@dataclass
class CommitmentMonth(CommitmentFigures):
    month: str


@dataclass
class CommitmentSavings(CommitmentFigures):
    id: str
    name: str | None
    type: str | None
    unit: str | None
    provider: str | None
    billing_currency: str | None
    pools: tuple[str, ...]
    first_hour: datetime | None
    last_hour: datetime | None
    months: list[CommitmentMonth] = field(default_factory=list)


COMMITMENT_KEYS = {
    "id": "commitment_discount_id", "name": "any_value(commitment_discount_name)",
    "type": "any_value(commitment_discount_type)", "unit": "any_value(commitment_discount_unit)",
    "provider": "any_value(provider)", "currency": "any_value(billing_currency)",
    "pools": f"string_agg(DISTINCT concat_ws(' ', pool, pool_2), ' ') FILTER (WHERE {COVERED} AND pool IS NOT NULL)",
    "first_hour": f"min(charge_period_start) FILTER (WHERE {USAGE})",
    "last_hour": f"max(charge_period_end) FILTER (WHERE {USAGE})",
}


def commitment_rows(connection: duckdb.DuckDBPyConnection, where: str = "true",
                    params: list | None = None) -> list[CommitmentSavings]:
    """Every commitment in the rows ``where`` selects, with its months."""
    scope = f"commitment_discount_id IS NOT NULL AND ({where})"
    # aggregate() groups by its keys: the any_value/min columns are aggregates, so group by the id alone
    totals = aggregate(connection, {"id": "commitment_discount_id"}, scope, params)
    extra = {r[0]: r for r in connection.execute(
        f"SELECT {', '.join(COMMITMENT_KEYS.values())} FROM charges WHERE {scope} GROUP BY 1", params or []
    ).fetchall()}
    months: dict[str, list[CommitmentMonth]] = {}
    for r in aggregate(connection, {"id": "commitment_discount_id", "month": MONTH}, scope, params):
        months.setdefault(r["id"], []).append(CommitmentMonth.of(r, month=r["month"]))
    out = []
    for r in totals:
        _, name, kind, unit, provider, currency, pools, first, last = extra[r["id"]]
        out.append(CommitmentSavings.of(
            r, id=r["id"], name=name, type=kind, unit=unit, provider=provider, billing_currency=currency,
            pools=tuple(sorted(set(pools.split()))) if pools else (), first_hour=first, last_hour=last,
            months=months.get(r["id"], []),
        ))
    return out


def commitment_savings(ledger: Path | str) -> list[CommitmentSavings]:
    """Per commitment (CommitmentDiscountId): covered ODE, amortized cost, savings, utilization, by month."""
    connection = open_ledger(ledger, read_only=True)
    try:
        return commitment_rows(connection)
    finally:
        connection.close()
