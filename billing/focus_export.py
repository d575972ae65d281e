"""The ledger out as FOCUS 1.2 (CSV or Parquet), for tools that read FOCUS.

Only the columns we fill are written: a ledger column with a FOCUS name goes out when it holds a
value somewhere (mandatory nullable columns such as ChargeClass always), and — where FOCUS 1.2
forbids nulls — when it holds one everywhere (otherwise it is left out and listed in
``ExportResult.left_out``, rather than written half empty).
Timestamps are ISO 8601 UTC (``2025-01-01T00:00:00Z``), money keeps every digit loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from billing.formats.base import sql_literal
from billing.ledger import open_ledger
from billing.ledger_schema import CHARGE_COLUMNS

NOT_NULL = {
    "BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName", "ServiceSubcategory",
}
"""FOCUS 1.2 columns that allow no nulls (../shared/data/focus-spec/derived/focus_v1.2_columns.tsv)."""

ALWAYS = {"ChargeClass", "ChargeDescription", "PricingQuantity", "PricingUnit", "BillingAccountName"}
"""Mandatory FOCUS columns that allow nulls: written even when the ledger has no value in them."""

FALLBACK = {"ContractedCost": "coalesce(contracted_cost, list_cost)"}
"""Where a source gives no contracted price, its list price is the contracted one (no negotiated
discount is known), so a not-null mandatory column stays whole."""


@dataclass
class ExportResult:
    rows: int
    columns: list[str]
    left_out: dict[str, str] = field(default_factory=dict)
    """FOCUS column → why it was not written."""


def export_focus(ledger: Path | str, out: Path | str, file_format: str = "csv") -> ExportResult:
    if file_format not in ("csv", "parquet"):
        raise ValueError("file_format must be csv or parquet")
    connection = open_ledger(ledger, read_only=True)
    try:
        candidates = [c for c in CHARGE_COLUMNS if c.focus]
        counts = connection.execute(
            "SELECT count(*), " + ", ".join(f"count({FALLBACK.get(c.focus, c.name)})" for c in candidates)
            + " FROM charges"
        ).fetchall()[0]
        rows, filled = counts[0], dict(zip((c.focus for c in candidates), counts[1:]))
        chosen, left_out = [], {}
        for c in candidates:
            if filled[c.focus] == 0 and c.focus not in ALWAYS:
                left_out[c.focus] = "no value in the ledger"
            elif c.focus in NOT_NULL and filled[c.focus] < rows:
                left_out[c.focus] = f"FOCUS allows no nulls; {rows - filled[c.focus]:,} of {rows:,} rows have none"
            else:
                chosen.append(c)
        select = ", ".join(_out(c) for c in chosen)
        target = sql_literal(str(out))
        options = "FORMAT csv, HEADER true" if file_format == "csv" else "FORMAT parquet"
        connection.execute(
            f"COPY (SELECT {select} FROM charges ORDER BY ingest_id, source_row) TO {target} ({options})"
        )
    finally:
        connection.close()
    return ExportResult(rows, [c.focus for c in chosen], left_out)


def _out(column) -> str:
    if column.focus in FALLBACK:
        return f"{FALLBACK[column.focus]} AS {column.focus}"
    if column.sql_type == "TIMESTAMP":
        return f"strftime({column.name}, '%Y-%m-%dT%H:%M:%SZ') AS {column.focus}"
    return f"{column.name} AS {column.focus}"
