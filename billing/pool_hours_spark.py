"""Pool-hours on Spark: the very SQL of ``billing.pool_hours`` for bills that outgrow one machine.

A big bill moves to a cluster as Parquet: ``export_charges_parquet`` copies the ledger's
``charges`` table out with DuckDB, keeping DECIMAL(38, 12) as Parquet decimals and timestamps as
naive (UTC) microseconds, so Spark reads exact decimals and adds the same numbers DuckDB adds.
``pool_hours_spark`` registers the charges (and, where the ledger schema defines it, the
``pool_rows`` view over them, from the ledger's own DDL) and the calendar of hours as temporary
views and runs ``POOL_HOURS_SQL`` unchanged; its frame equals the DuckDB one row for row, digit
for digit.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import uuid
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from billing import ledger_schema
from billing.formats.base import sql_literal
from billing.ledger import open_ledger
from billing.pool_hours import HOUR_RANGE_SQL, POOL_HOURS_SQL, calendar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

COLUMNS = ("pool", "hour", "quantity", "spread_quantity")
_QUANTITY = re.compile(r"hourly_quantity(_\d+)?$")
"""Columns the SQL sums (``hourly_quantity``, ``hourly_quantity_2`` …): as floats the sums would
depend on the order Spark adds them in; as decimals they are exact, as on DuckDB."""

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.spark.name = org.apache.spark
logger.spark.level = error
"""
"""Errors only, from the JVM's first line (setLogLevel comes after start-up's warnings); the
``org.apache.spark`` logger of its own also stops Spark announcing a shell's default log level."""

_lock = threading.Lock()
_session: SparkSession | None = None


def local_spark() -> SparkSession:
    """One local Spark session for this process (two cores, UTC, quiet), built on first use."""
    global _session
    with _lock:
        if _session is not None and _running(_session):
            return _session
        from pyspark.sql import SparkSession

        log_config = Path(tempfile.gettempdir()) / "commitplan-spark-log4j2.properties"
        if not log_config.exists() or log_config.read_text() != _LOG4J2:
            log_config.write_text(_LOG4J2)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no "hostname resolves to loopback" warning
        _session = (
            SparkSession.builder.master("local[2]")
            .appName("commitplan-pool-hours")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log_config.as_uri()}")
            .getOrCreate()
        )
        _session.sparkContext.setLogLevel("ERROR")
        return _session


def _running(session: SparkSession) -> bool:
    java_context = session.sparkContext._jsc  # None once the session is stopped from Python
    return java_context is not None and not java_context.sc().isStopped()


def export_charges_parquet(ledger_path: Path | str, out_dir: Path | str) -> Path:
    """Write the ledger's ``charges`` table to ``out_dir/charges.parquet``; returns that path.

    DuckDB keeps DECIMAL(38, 12) as a Parquet decimal (Spark reads DecimalType(38, 12)) and
    TIMESTAMP as microseconds not adjusted to UTC (Spark reads TIMESTAMP_NTZ): nothing is rounded
    and no time zone is applied on the way.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "charges.parquet"
    connection = open_ledger(ledger_path, read_only=True)
    try:
        connection.execute(f"COPY charges TO {sql_literal(str(target))} (FORMAT parquet)")
    finally:
        connection.close()
    return target


def pool_hours_spark(charges: DataFrame | Path | str, spark: SparkSession | None = None) -> pd.DataFrame:
    """Pool-hours of a charges table on Spark, sorted by pool and hour.

    ``charges`` is a Spark DataFrame with the ledger's columns, or the path of a Parquet export of
    the ledger (``export_charges_parquet``; a file or a directory of files). Quantities come back
    as ``decimal.Decimal`` (exact); hours as naive UTC ``datetime64[us]``.
    """
    if isinstance(charges, (str, Path)):
        spark = spark or local_spark()
        charges = spark.read.parquet(str(charges))
    else:
        spark = spark or charges.sparkSession
    _check_decimals(charges)
    if spark.conf.get("spark.sql.session.timeZone") != "UTC":
        raise ValueError("pool_hours_spark needs spark.sql.session.timeZone=UTC (ledger timestamps are naive UTC)")

    import pyarrow as pa
    from pyspark.sql.types import StructField, StructType, TimestampType

    suffix = uuid.uuid4().hex
    charges_view, rows_view = f"pool_hours_charges_{suffix}", f"pool_hours_rows_{suffix}"
    hours_view = f"pool_hours_calendar_{suffix}"
    views = [charges_view]
    charges.createOrReplaceTempView(charges_view)
    try:
        # the ledger's own view: one row per charge and pool it uses
        spark.sql(_pool_rows_sql().format(charges=charges_view)).createOrReplaceTempView(rows_view)
        views.append(rows_view)
        source = rows_view
        span = spark.sql(HOUR_RANGE_SQL.format(charges=source)).toArrow()
        first, end = (_naive_utc(span.column(name)[0].as_py()) for name in ("first_hour", "end_hour"))
        hours = calendar(first, end)["hour"]
        table = pa.table({"hour": pa.array(hours.dt.tz_localize("UTC"), type=pa.timestamp("us", tz="UTC"))})
        schema = StructType([StructField("hour", TimestampType(), nullable=False)])
        spark.createDataFrame(table, schema=schema).createOrReplaceTempView(hours_view)
        views.append(hours_view)
        sql = POOL_HOURS_SQL.format(charges=source, hours=hours_view) + " ORDER BY pool, hour"
        frame = spark.sql(sql).toArrow().to_pandas()
    finally:
        for view in reversed(views):
            spark.catalog.dropTempView(view)
    return _normalized(frame)


def _pool_rows_sql() -> str:
    """The ledger's ``pool_rows`` view as a SELECT over ``{charges}`` (a charge may use two pools:
    a GCP machine type's cores and RAM); Spark runs the view's own SQL, so it is written once."""
    return ledger_schema.POOL_ROWS_SQL


def _naive_utc(value):
    """A Spark timestamp as a naive UTC datetime: TIMESTAMP (LTZ) comes out of Arrow zoned, NTZ naive."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _check_decimals(charges: DataFrame) -> None:
    from pyspark.sql.types import DecimalType

    types = {field.name: field.dataType for field in charges.schema.fields}
    for column in dict.fromkeys(["hourly_quantity", *(name for name in types if _QUANTITY.match(name))]):
        if not isinstance(types.get(column), DecimalType):
            raise TypeError(
                f"charges.{column} is {types.get(column)}, not a decimal: float sums are not exact "
                "(export the ledger with export_charges_parquet, which keeps DECIMAL(38, 12))"
            )


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """Spark's frame in fixed dtypes: str pools, naive UTC datetime64[us] hours, Decimal quantities."""
    out = pd.DataFrame({
        "pool": frame["pool"].astype("str"),
        "hour": _naive_utc_hours(frame["hour"]),
        "quantity": pd.Series([_decimal(v) for v in frame["quantity"]], dtype=object),
        "spread_quantity": pd.Series([_decimal(v) for v in frame["spread_quantity"]], dtype=object),
    })
    return out.reset_index(drop=True)[list(COLUMNS)]


def _naive_utc_hours(hours: pd.Series) -> pd.Series:
    hours = pd.to_datetime(hours)
    if hours.dt.tz is not None:
        hours = hours.dt.tz_convert("UTC").dt.tz_localize(None)
    return hours.astype("datetime64[us]")


def _decimal(value) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"Spark returned {type(value).__name__} for a pool quantity, not Decimal")
    return value
