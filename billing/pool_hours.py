"""Ledger rows → pool-hours: the one aggregation both engines run (DuckDB here, Spark at scale).

It reads ``pool_rows`` (one row per charge and pool the charge uses: the ledger's view). DuckDB
runs it on each file as it is loaded and keeps the result (``pool_hour_totals``), Spark on a
ledger's rows at once.

The SQL is plain enough for DuckDB and Spark SQL alike: no interval arithmetic, no engine
functions beyond ``date_trunc`` and ``sum``. Rows spanning several hours (daily Azure rows, say)
are spread evenly over their hours through a calendar table ``hours(hour)`` that the caller
registers; ``hourly_quantity`` was divided at ingest, in DECIMAL, so both engines add the very
same numbers and agree exactly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from billing.ledger import open_ledger

POOL_HOURS_SQL = """
SELECT pool, hour, SUM(quantity) AS quantity, SUM(spread) AS spread_quantity
FROM (
    SELECT pool, date_trunc('hour', charge_period_start) AS hour,
           hourly_quantity AS quantity, CAST(0 AS DECIMAL(38, 12)) AS spread
    FROM {charges}
    WHERE pool IS NOT NULL AND period_hours = 1
    UNION ALL
    SELECT c.pool, h.hour, c.hourly_quantity AS quantity, c.hourly_quantity AS spread
    FROM {charges} c
    JOIN {hours} h ON h.hour >= date_trunc('hour', c.charge_period_start) AND h.hour < c.charge_period_end
    WHERE c.pool IS NOT NULL AND c.period_hours > 1
) spread_rows
GROUP BY pool, hour
"""
"""Columns: pool, hour (UTC hour start), quantity, and the part of it spread from multi-hour rows."""

HOUR_RANGE_SQL = """
SELECT MIN(date_trunc('hour', charge_period_start)) AS first_hour, MAX(charge_period_end) AS end_hour
FROM {charges} WHERE pool IS NOT NULL AND period_hours > 1
"""


def calendar(first_hour, end_hour) -> pd.DataFrame:
    """Every hour start in [first_hour, end_hour): the table the spreading join walks."""
    if first_hour is None or end_hour is None:
        return pd.DataFrame({"hour": pd.Series([], dtype="datetime64[us]")})
    hours = pd.date_range(pd.Timestamp(first_hour).floor("h"), pd.Timestamp(end_hour), freq="h", inclusive="left")
    return pd.DataFrame({"hour": hours.astype("datetime64[us]")})


TOTALS_SQL = """
SELECT pool, hour, SUM(quantity) AS quantity, SUM(spread_quantity) AS spread_quantity
FROM pool_hour_totals GROUP BY pool, hour ORDER BY pool, hour
"""
"""The ledger's pool-hours: each file's, aggregated by ``POOL_HOURS_SQL`` when it was loaded, added up."""


def pool_hours_duckdb(ledger: Path | str) -> pd.DataFrame:
    """Pool-hours of a ledger on DuckDB, sorted by pool and hour; quantities as exact Decimals."""
    connection = open_ledger(ledger, read_only=True, views=False)
    try:
        return connection.sql(TOTALS_SQL).to_arrow_table().to_pandas()  # quantities stay Decimal
    finally:
        connection.close()
