"""The ledger's charge rows (one per charge, in FOCUS terms, whatever export it came from) and tables.

Money and quantities are DECIMAL(38, 12): sums are exact, so a loaded file ties to its source
to the cent (and to the last digit the source gives). Timestamps are naive UTC.

``pool``/``hourly_quantity`` come from the provider rules of ``billing.pool_rules`` (DESIGN.md §5)
in each file's mapping, so that turning rows into pool-hours is one engine-neutral aggregation
(``billing.pool_hours``, over the view ``pool_rows``: one row per charge and pool) that DuckDB
and Spark both run. The rows are a view over the stored source files (``billing.ledger``).
"""

from __future__ import annotations

from dataclasses import dataclass

DECIMAL = "DECIMAL(38, 12)"


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    focus: str | None
    """The FOCUS 1.2 column this one is, if any (used by the FOCUS export)."""


def _text(name: str, focus: str | None) -> Column:
    return Column(name, "VARCHAR", focus)


def _money(name: str, focus: str) -> Column:
    return Column(name, DECIMAL, focus)


def _time(name: str, focus: str | None) -> Column:
    return Column(name, "TIMESTAMP", focus)


CHARGE_COLUMNS: tuple[Column, ...] = (
    _text("provider", "ProviderName"),
    _text("publisher_name", "PublisherName"),
    _text("invoice_issuer_name", "InvoiceIssuerName"),
    _text("billing_account_id", "BillingAccountId"),
    _text("billing_account_name", "BillingAccountName"),
    _text("sub_account_id", "SubAccountId"),
    _text("sub_account_name", "SubAccountName"),
    _text("billing_currency", "BillingCurrency"),
    _time("billing_period_start", "BillingPeriodStart"),
    _time("billing_period_end", "BillingPeriodEnd"),
    _time("charge_period_start", "ChargePeriodStart"),
    _time("charge_period_end", "ChargePeriodEnd"),
    _text("charge_category", "ChargeCategory"),
    _text("charge_class", "ChargeClass"),
    _text("charge_frequency", "ChargeFrequency"),
    _text("charge_description", "ChargeDescription"),
    _text("pricing_category", "PricingCategory"),
    _text("service_name", "ServiceName"),
    _text("service_category", "ServiceCategory"),
    _text("region_id", "RegionId"),
    _text("resource_id", "ResourceId"),
    _text("resource_type", "ResourceType"),
    _text("sku_id", "SkuId"),
    _text("sku_price_id", "SkuPriceId"),
    Column("consumed_quantity", DECIMAL, "ConsumedQuantity"),
    _text("consumed_unit", "ConsumedUnit"),
    Column("pricing_quantity", DECIMAL, "PricingQuantity"),
    _text("pricing_unit", "PricingUnit"),
    _money("list_unit_price", "ListUnitPrice"),
    _money("billed_cost", "BilledCost"),
    _money("effective_cost", "EffectiveCost"),
    _money("list_cost", "ListCost"),
    _money("contracted_cost", "ContractedCost"),
    _text("commitment_discount_id", "CommitmentDiscountId"),
    _text("commitment_discount_name", "CommitmentDiscountName"),
    _text("commitment_discount_type", "CommitmentDiscountType"),
    _text("commitment_discount_category", "CommitmentDiscountCategory"),
    _text("commitment_discount_status", "CommitmentDiscountStatus"),
    Column("commitment_discount_quantity", DECIMAL, "CommitmentDiscountQuantity"),
    _text("commitment_discount_unit", "CommitmentDiscountUnit"),
    _time("commitment_start", None),
    _time("commitment_end", None),
    _text("instance_type", None),
    _text("operating_system", None),
    _text("tags", "Tags"),
)
"""The charge columns every format maps to (NULL where a format has no such figure)."""

MONEY = ("billed_cost", "effective_cost", "list_cost")
"""The three sums an ingest reconciles against its source."""

DERIVED_COLUMNS: tuple[Column, ...] = (
    Column("period_hours", "INTEGER", None),
    _text("granularity", None),
    _text("pool", None),
    Column("hourly_quantity", DECIMAL, None),
    _text("pool_2", None),
    Column("hourly_quantity_2", DECIMAL, None),
)
"""Filled at ingest: hours the charge spans, hour/day/other, and its pool and per-hour usage (a
second pool where one charge uses two: a GCP machine type's cores and its RAM)."""

LINEAGE_COLUMNS: tuple[Column, ...] = (
    Column("ingest_id", "INTEGER", None),
    Column("source_row", "BIGINT", None),
)

ALL_COLUMNS = LINEAGE_COLUMNS + CHARGE_COLUMNS + DERIVED_COLUMNS

POOL_ROWS_SQL = """
SELECT ingest_id, source_row, pool, hourly_quantity, charge_period_start, charge_period_end, period_hours
FROM {charges} WHERE pool IS NOT NULL
UNION ALL
SELECT ingest_id, source_row, pool_2 AS pool, hourly_quantity_2 AS hourly_quantity, charge_period_start,
       charge_period_end, period_hours
FROM {charges} WHERE pool_2 IS NOT NULL
"""
"""One row per charge and pool it uses: what pool-hours aggregate (Spark runs it on its copy too)."""

DDL = (
    "CREATE SEQUENCE IF NOT EXISTS ingest_ids START 1",
    """CREATE TABLE IF NOT EXISTS ingests (
        ingest_id INTEGER PRIMARY KEY,
        file VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL UNIQUE,
        format VARCHAR NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        stored_file VARCHAR,
        mapping_sql VARCHAR
    )""",
    "CREATE TABLE IF NOT EXISTS charge_rows (" + ", ".join(f"{c.name} {c.sql_type}" for c in ALL_COLUMNS) + ")",
    """CREATE TABLE IF NOT EXISTS rejected_rows (
        ingest_id INTEGER, source_row BIGINT, column_name VARCHAR, value VARCHAR, reason VARCHAR,
        billed_cost DECIMAL(38, 12), effective_cost DECIMAL(38, 12), list_cost DECIMAL(38, 12)
    )""",
    """CREATE TABLE IF NOT EXISTS ingest_spans (
        ingest_id INTEGER, provider VARCHAR, billing_account_id VARCHAR, billing_period_start TIMESTAMP,
        charge_category VARCHAR, first_hour TIMESTAMP, last_hour TIMESTAMP, rows BIGINT,
        billed_cost DECIMAL(38, 12), effective_cost DECIMAL(38, 12), list_cost DECIMAL(38, 12)
    )""",
    """CREATE TABLE IF NOT EXISTS pool_hour_totals (
        ingest_id INTEGER, pool VARCHAR, hour TIMESTAMP,
        quantity DECIMAL(38, 12), spread_quantity DECIMAL(38, 12)
    )""",
)
"""``ingests``: one row per loaded file; a large one with its stored copy and the SQL mapping it to
charge rows (``billing.ledger`` makes those views), a small one's rows mapped into ``charge_rows``. ``ingest_spans``: per file, provider,
billing account, period and charge category, the rows, charge-period span and sums (overlap checks
and reports read them, not the rows). ``pool_hour_totals``: each file's pool-hours, aggregated once
at load by ``billing.pool_hours.POOL_HOURS_SQL``."""
