"""The ledger as the planner's input: the canonical usage CSV and what it leaves out.

Writes ``timestamp,pool,quantity`` (DESIGN.md §4) from the pool-hours aggregation, and reports
per pool how much came from multi-hour rows spread evenly over their hours (daily exports), and
per provider and service the usage no commitment can cover, so nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

from billing.ledger import open_ledger
from billing.pool_hours import pool_hours_duckdb


@dataclass(frozen=True)
class PoolSummary:
    pool: str
    hours: int
    quantity: Decimal
    spread_share: float
    """Share of the pool's quantity spread from daily (or longer) rows: its hourly shape is assumed."""


@dataclass(frozen=True)
class Uncovered:
    provider: str
    service: str
    rows: int
    effective_cost: Decimal


@dataclass(frozen=True)
class PoolsReport:
    pools: list[PoolSummary]
    uncovered: list[Uncovered]
    first_hour: str | None
    last_hour: str | None


def usage_frame(pool_hours: pd.DataFrame) -> pd.DataFrame:
    """Pool-hours in the canonical usage CSV's columns and spelling."""
    return pd.DataFrame({
        "timestamp": pd.to_datetime(pool_hours["hour"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pool": pool_hours["pool"],
        "quantity": [format(Decimal(q).normalize(), "f") for q in pool_hours["quantity"]],
    })


def export_pools(ledger: Path | str, out: Path | str) -> PoolsReport:
    pool_hours = pool_hours_duckdb(ledger)
    usage_frame(pool_hours).to_csv(out, index=False)
    pools = []
    for pool, group in pool_hours.groupby("pool", sort=True):
        total = sum((Decimal(q) for q in group["quantity"]), Decimal(0))
        spread = sum((Decimal(q) for q in group["spread_quantity"]), Decimal(0))
        pools.append(PoolSummary(pool, len(group), total, float(spread / total) if total else 0.0))
    connection = open_ledger(ledger, read_only=True)
    try:
        rows = connection.execute(
            "SELECT coalesce(provider, '(no provider)'), coalesce(service_name, '(no service)'), count(*), "
            "coalesce(sum(effective_cost), 0) FROM charges "
            "WHERE pool IS NULL AND charge_category = 'Usage' GROUP BY ALL ORDER BY 4 DESC, 1, 2"
        ).fetchall()
    finally:
        connection.close()
    hours = pool_hours["hour"]
    return PoolsReport(
        pools=pools,
        uncovered=[Uncovered(*r) for r in rows],
        first_hour=str(hours.min()) if len(hours) else None,
        last_hour=str(hours.max()) if len(hours) else None,
    )
