"""DuckDB and Spark (PySpark, local mode) give identical pool-hours from one SQL on the same ledger:
real exports (the FOCUS sample, Azure EA daily rows, a GCP export) and a generated FOCUS bill with
hourly, daily, multi-day and partial-hour EC2 rows and GCP machine types (two pools per charge
where the ledger keeps them). Quantities must agree to the last digit."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from billing.ingest import ingest
from billing.ledger import open_ledger
from billing.ledger_schema import ALL_COLUMNS, DECIMAL
from billing.pool_hours import pool_hours_duckdb
from billing.pool_hours_spark import (
    COLUMNS,
    export_charges_parquet,
    local_spark,
    pool_hours_spark,
)

pytestmark = [
    # PySpark 4 warns on every py4j conversion under pandas 3; this module hands it no pandas frames
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    # one JVM for the module under `pytest -n 2 --dist loadgroup` (plain `--dist load` may start two)
    pytest.mark.xdist_group("spark"),
]

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.exists():  # a clean clone sits beside shared/ too; CI runs from /tmp clones
    DATA = Path("/work/shared/data")
FOCUS_SAMPLE = DATA / "focus-sample-data" / "FOCUS-1.0" / "focus_sample.csv"
AZURE_ASSETS = DATA / "microsoft-finops-toolkit" / "src" / "powershell" / "Tests" / "assets"
AZURE_AMORTIZED = AZURE_ASSETS / "EA_AmortizedCost_Small.csv"
AZURE_ACTUAL = AZURE_ASSETS / "EA_ActualCost_Small.csv"
GCP_SAMPLE = Path(__file__).parent / "data" / "gcp" / "billing_export_sample.csv"

LEDGERS = {
    # three providers in one ledger; the actual-cost view repeats the amortized one's charges
    # (same account and period), so it gets a ledger of its own
    "focus+azure-amortized+gcp": [FOCUS_SAMPLE, AZURE_AMORTIZED, GCP_SAMPLE],
    "azure-actual": [AZURE_ACTUAL],
}


@pytest.fixture(scope="module")
def spark():
    session = local_spark()
    yield session
    session.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spark_parity")


def assert_identical(ledger: Path, on_spark: pd.DataFrame) -> None:
    on_duckdb = pool_hours_duckdb(ledger)
    assert len(on_spark) > 0 and list(on_spark.columns) == list(COLUMNS)
    pd.testing.assert_frame_equal(on_spark, on_duckdb, check_exact=True)
    for column in ("quantity", "spread_quantity"):
        assert all(isinstance(q, Decimal) for q in on_spark[column]), column
        # the same digits and scale, not merely equal numbers
        assert [str(q) for q in on_spark[column]] == [str(q) for q in on_duckdb[column]], column


def spark_frame(spark, ledger: Path, out: Path) -> pd.DataFrame:
    return pool_hours_spark(export_charges_parquet(ledger, out), spark=spark)


def charges_summary(ledger: Path) -> dict[str, int]:
    connection = open_ledger(ledger, read_only=True)
    try:
        rows = connection.execute(
            "SELECT split_part(pool, ':', 1), period_hours > 1, count(*) FROM charges "
            "WHERE pool IS NOT NULL GROUP BY ALL"
        ).fetchall()
    finally:
        connection.close()
    return {f"{provider}:{'spread' if spread else 'hourly'}": n for provider, spread, n in rows}


def second_pools(ledger: Path) -> int | None:
    """Charges with a second pool, or None where the ledger has no such column."""
    connection = open_ledger(ledger, read_only=True)
    try:
        columns = {row[0] for row in connection.execute("DESCRIBE charges").fetchall()}
        if "pool_2" not in columns:
            return None
        return connection.execute("SELECT count(*) FROM charges WHERE pool_2 IS NOT NULL").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize("name", list(LEDGERS))
def test_real_exports_identical(spark, work, name):
    files = LEDGERS[name]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        pytest.skip(f"shared data not present: {missing}")
    ledger = work / f"{name}.duckdb"
    ingest(files, ledger)
    summary = charges_summary(ledger)
    if name.startswith("focus"):  # EC2 hourly, Azure daily and GCP rows all reach the comparison
        assert {"aws:hourly", "azure:spread", "gcp:hourly"} <= set(summary), summary
    else:
        assert "azure:spread" in summary, summary
    assert_identical(ledger, spark_frame(spark, ledger, work / f"{name}-parquet"))


INSTANCES = ("m5.large", "m5.2xlarge", "c5.xlarge", "t3.micro", "r6g.medium", "m5.16xlarge")
REGIONS = ("us-east-1", "eu-west-1", "ap-south-1")
GCP_REGIONS = ("europe-west1", "us-central1")
FOCUS_HEADER = (
    "BilledCost", "EffectiveCost", "ListCost", "BillingAccountId", "BillingCurrency", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargeCategory", "ChargePeriodStart", "ChargePeriodEnd", "ChargeDescription",
    "ConsumedQuantity", "ConsumedUnit", "PricingCategory", "PricingQuantity", "PricingUnit", "ProviderName",
    "RegionId", "ServiceName", "SubAccountId", "SkuPriceDetails",
)
GCP_MACHINES = (("N2", 2, "8"), ("N2", 4, "16"), ("E2", 2, "4"), ("N1", 2, "7.5"), ("C2", 4, "16"))
"""Series, vCPUs and GiB of RAM, for FOCUS rows from Google Cloud (a machine type uses two pools)."""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(number: Decimal) -> str:
    return format(number, "f")


KINDS = {"hour": 55, "day": 20, "days": 8, "partial": 6, "spot": 3, "requests": 3, "gcp": 5}


def write_random_focus(path: Path, rows: int, seed: int, kinds: dict[str, int] = KINDS) -> None:
    """A FOCUS bill for September 2024, EC2 mostly: hourly rows, daily rows, rows of 2–5 days, rows
    that start or end inside an hour, rows no pool takes (spot, requests), and Compute Engine hours
    of machine types whose SkuPriceDetails give cores and RAM (two pools where the ledger has them);
    quantities with up to six decimals and prices with up to ten, so sums exercise the
    DECIMAL(38, 12) arithmetic."""
    rng = random.Random(seed)
    month = datetime(2024, 9, 1)
    with path.open("w", newline="") as stream:
        out = csv.writer(stream)
        out.writerow(FOCUS_HEADER)
        for _ in range(rows):
            kind = rng.choices(list(kinds), list(kinds.values()))[0]
            if kind in ("day", "days"):
                start = month + timedelta(days=rng.randrange(25))
                end = start + timedelta(days=1 if kind == "day" else rng.randint(2, 5))
            elif kind == "partial":
                start = month + timedelta(hours=rng.randrange(24 * 28), minutes=rng.choice([15, 30, 45]))
                end = start + timedelta(minutes=rng.choice([10, 30, 90, 200, 61 * 7]))
            else:
                start = month + timedelta(hours=rng.randrange(24 * 30))
                end = start + timedelta(hours=1)
            span = -(-(end - start) // timedelta(hours=1))  # the row's length in hours, rounded up
            hours = Decimal(rng.randint(1, 4 * 10**6 * span)) / 10**6
            instance = rng.choice(INSTANCES)
            system = rng.choices(["Linux", "Windows", "RHEL"], [80, 15, 5])[0]
            market = "Spot" if kind == "spot" else "On Demand"
            price = Decimal(rng.randint(1, 10**10)) / 10**10
            cost = (hours * price).quantize(Decimal("1e-10"))
            description = f"${_plain(price)} per {market} {system} {instance} Instance Hour"
            unit, provider, service, region, details = "Hours", "AWS", "Amazon Elastic Compute Cloud", None, ""
            if kind == "requests":
                description, unit = "$0.40 per million Amazon SQS requests", "Requests"
            elif kind == "gcp":
                series, cores, memory = rng.choice(GCP_MACHINES)
                provider, service, region = "Google Cloud", "Compute Engine", rng.choice(GCP_REGIONS)
                description = f"{series} Instance Core running in {region}"
                details = json.dumps({"InstanceSeries": series, "CoreCount": cores, "MemorySize": memory})
            out.writerow((
                _plain(cost), _plain(cost), _plain(cost), "123456789012", "USD", _iso(month),
                _iso(datetime(2024, 10, 1)), "Usage", _iso(start), _iso(end), description, _plain(hours), unit,
                "Dynamic" if kind == "spot" else "Standard", _plain(hours), unit, provider,
                region or rng.choice(REGIONS), service, f"{rng.randrange(5):012d}", details,
            ))


def test_generated_bill_identical(spark, work):
    source = work / "random_focus.csv"
    write_random_focus(source, rows=4000, seed=20240901)
    ledger = work / "generated.duckdb"
    (report,) = ingest([source], ledger)
    assert report.rows_loaded == 4000
    summary = charges_summary(ledger)
    assert summary["aws:hourly"] > 2000 and summary["aws:spread"] > 1000, summary
    if second_pools(ledger) is not None:  # a ledger with two pools per charge: Spark reads them too
        assert second_pools(ledger) > 50

    parquet = export_charges_parquet(ledger, work / "generated-parquet")
    on_spark = pool_hours_spark(spark.read.parquet(str(parquet)))  # a DataFrame in, not a path
    assert on_spark["pool"].nunique() >= 20
    assert any(q != 0 for q in on_spark["spread_quantity"])
    assert_identical(ledger, on_spark)


def test_hourly_only_bill_identical(spark, work):
    """No multi-hour row: the calendar is empty and the spreading half of the SQL adds nothing."""
    source = work / "hourly_focus.csv"
    write_random_focus(source, rows=300, seed=7, kinds={"hour": 9, "spot": 1})
    ledger = work / "hourly.duckdb"
    ingest([source], ledger)
    assert set(charges_summary(ledger)) == {"aws:hourly"}
    on_spark = spark_frame(spark, ledger, work / "hourly-parquet")
    assert all(q == 0 for q in on_spark["spread_quantity"])
    assert_identical(ledger, on_spark)


def test_parquet_export_keeps_decimals_and_naive_timestamps(spark, work):
    from pyspark.sql.types import DecimalType, TimestampNTZType

    write_random_focus(work / "small.csv", rows=50, seed=1)
    ledger = work / "small.duckdb"
    ingest([work / "small.csv"], ledger)
    parquet = export_charges_parquet(ledger, work / "schema-parquet")
    spark_types = {f.name: f.dataType for f in spark.read.parquet(str(parquet)).schema.fields}
    assert set(spark_types) == {c.name for c in ALL_COLUMNS}
    for column in ALL_COLUMNS:
        if column.sql_type == DECIMAL:
            assert spark_types[column.name] == DecimalType(38, 12), column.name
        elif column.sql_type == "TIMESTAMP":
            assert spark_types[column.name] == TimestampNTZType(), column.name

    charges = spark.read.parquet(str(parquet))
    as_double = charges.withColumn("hourly_quantity", charges["hourly_quantity"].cast("double"))
    with pytest.raises(TypeError, match="not a decimal"):
        pool_hours_spark(as_double)
