"""Ledger → pool-hours and existing commitments, checked against computations done here in Python
from the source rows (the provider rules of DESIGN.md §5 written out a second time)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.commitments_from_bill import commitments_in
from billing.ingest import ingest
from billing.pool_hours import pool_hours_duckdb
from billing.pools import export_pools
from tests.test_ingest import (
    AZURE_AMORTIZED,
    FOCUS_SAMPLE,
    GCP_SAMPLE,
    SPEC,
    number,
    rows_of,
)

SIZES = {"nano": Decimal("0.25"), "micro": Decimal("0.5"), "small": 1, "medium": 2, "large": 4, "xlarge": 8}


def factor(size: str) -> Decimal | None:
    if size in SIZES:
        return Decimal(SIZES[size])
    match = re.fullmatch(r"(\d+)xlarge", size)
    return Decimal(8 * int(match.group(1))) if match else None


def expected_focus_pools(rows) -> dict[tuple[str, str], Decimal]:
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        match = re.search(r"On Demand (\w+) ([a-z0-9-]+)\.(\w+) Instance Hour", r["ChargeDescription"])
        if r["ProviderName"] != "AWS" or r["ChargeCategory"] != "Usage" or not match or r["ConsumedUnit"] != "Hours":
            continue
        os_name, family, size = match.groups()
        nf = factor(size)
        if os_name == "Linux" and nf is not None and family not in ("g4ad", "g4dn", "g5", "g5g", "inf1"):
            key = f"aws:ec2:{r['RegionId']}:{family}:linux"
            quantity = number(r["ConsumedQuantity"]) * nf
        else:
            key = f"aws:ec2:{r['RegionId']}:{family}.{size}:{os_name.lower()}"
            quantity = number(r["ConsumedQuantity"])
        hour = datetime.fromisoformat(r["ChargePeriodStart"]).strftime("%Y-%m-%dT%H:00:00Z")
        expected[(key, hour)] += quantity
    return dict(expected)


def actual(frame: pd.DataFrame) -> dict[tuple[str, str], Decimal]:
    return {(p, pd.Timestamp(h).strftime("%Y-%m-%dT%H:00:00Z")): Decimal(q)
            for p, h, q in zip(frame["pool"], frame["hour"], frame["quantity"])}


def test_focus_sample_ec2_hours_become_normalized_pool_hours(tmp_path):
    ledger = tmp_path / "l.duckdb"
    ingest([FOCUS_SAMPLE], ledger)
    expected = expected_focus_pools(rows_of(FOCUS_SAMPLE))
    assert len(expected) >= 20
    assert actual(pool_hours_duckdb(ledger)) == expected


def test_usage_csv_reads_back_and_uncovered_usage_is_reported(tmp_path):
    from models.readers import read_usage

    ledger = tmp_path / "l.duckdb"
    ingest([FOCUS_SAMPLE], ledger)
    report = export_pools(ledger, tmp_path / "usage.csv")
    usage = read_usage(tmp_path / "usage.csv")
    expected = expected_focus_pools(rows_of(FOCUS_SAMPLE))
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (pool, _), q in expected.items():
        totals[pool] += q
    assert sorted(usage.pools) == sorted(totals)
    for i, pool in enumerate(usage.pools):
        assert usage.values[:, i].sum() == pytest.approx(float(totals[pool]), rel=1e-12)
    assert {p.pool: p.quantity for p in report.pools} == dict(totals)
    uncovered = {(u.provider, u.service): u.rows for u in report.uncovered}
    assert uncovered[("AWS", "Amazon Simple Storage Service")] > 0
    rows = rows_of(FOCUS_SAMPLE)
    assert sum(uncovered.values()) + sum(1 for r in rows if r["ProviderName"] == "AWS" and "Instance Hour" in r["ChargeDescription"]
                                         and r["ChargeCategory"] == "Usage") == sum(1 for r in rows if r["ChargeCategory"] == "Usage")


def test_daily_azure_rows_spread_evenly_over_their_hours(tmp_path):
    ledger = tmp_path / "l.duckdb"
    ingest([AZURE_AMORTIZED], ledger)
    frame = pool_hours_duckdb(ledger)
    report = export_pools(ledger, tmp_path / "usage.csv")
    for r in rows_of(AZURE_AMORTIZED):
        if r["MeterCategory"] != "Virtual Machines" or r["ChargeType"] != "Usage":
            continue
        pool = "azure:vm:" + r["ResourceLocation"].lower() + ":" + re.sub(r"[^a-z0-9.\-]+", "-", r["MeterName"].lower()).strip("-")
        day = datetime.strptime(r["Date"], "%m/%d/%Y")
        hours = frame[frame["pool"] == pool]
        assert len(hours) == 24
        assert list(pd.to_datetime(hours["hour"])) == [day + timedelta(hours=h) for h in range(24)]
        per_hour = (number(r["Quantity"]) / 24).quantize(Decimal("1e-12"))
        assert set(Decimal(q) for q in hours["quantity"]) == {per_hour}
    assert report.pools and all(p.spread_share == 1.0 for p in report.pools)


def test_gcp_cores_and_ram_become_series_pools(tmp_path):
    ledger = tmp_path / "l.duckdb"
    ingest([GCP_SAMPLE], ledger)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows_of(GCP_SAMPLE):
        match = re.match(r"(\w+) Instance (Core|Ram) running", r["sku.description"])
        if match and r["service.description"] == "Compute Engine":
            kind = "vcpu" if match.group(2) == "Core" else "memory"
            expected[f"gcp:compute:{r['location.region']}:{match.group(1).lower()}:{kind}"] += number(r["usage.amount_in_pricing_units"])
    frame = pool_hours_duckdb(ledger)
    assert {p: sum(Decimal(q) for q in g["quantity"]) for p, g in frame.groupby("pool")} == dict(expected)
    assert not any("spot" in p for p in frame["pool"])


@pytest.mark.parametrize("name, utilization, size, amortized", [
    ("commitment_discount_scenarios/commitment_discount_usage_scenario_1.csv", 1.0, 1, "1.00"),
    ("commitment_discount_scenarios/commitment_discount_usage_scenario_2.csv", 0.0, 1, "1.00"),
    ("commitment_discount_scenarios/commitment_discount_usage_scenario_3.csv", 0.75, 1, "1.00"),
    ("commitment_discount_flexibility/one_hundred_percent_utilization_with_commitment_discount_flexibility_with_2_resources.csv", 1.0, 4, "2.00"),
    ("commitment_discount_flexibility/one_hundred_percent_utilization_with_commitment_discount_flexibility_with_1_resource.csv", 1.0, 1, "0.50"),
    ("commitment_discount_flexibility/one_hundred_percent_utilization_without_commitment_discount_flexibility.csv", 1.0, 1, "1.50"),
    ("commitment_discount_flexibility/zero_percent_utilization_without_commitment_discount_flexibility.csv", 0.0, 1, "1.50"),
])
def test_spec_commitment_examples_give_the_specs_utilization_and_amortized_cost(tmp_path, name, utilization, size, amortized):
    """The utilization the spec states (file names say 100%/0%; scenario 3 uses 0.75 of 1.00), the
    commitment's size per hour, and its amortized cost: the EffectiveCost of its usage rows, which for
    the purchase-and-usage files equals the purchase's BilledCost for that hour."""
    ledger = tmp_path / "l.duckdb"
    ingest([SPEC / name], ledger)
    (commitment,) = commitments_in(ledger)
    assert commitment.utilization == utilization
    assert commitment.quantity == size
    assert commitment.amortized_cost == Decimal(amortized)
    purchase = [r for r in rows_of(SPEC / name) if r["ChargeCategory"] == "Purchase"]
    if purchase:
        assert commitment.amortized_cost == sum(number(r["BilledCost"]) for r in purchase)


def test_one_time_purchase_gives_the_term(tmp_path):
    ledger = tmp_path / "l.duckdb"
    scenarios = SPEC / "commitment_discount_scenarios"
    ingest([scenarios / "commitment_discount_purchase_scenario_1.csv", scenarios / "commitment_discount_usage_scenario_1.csv"], ledger)
    (commitment,) = commitments_in(ledger)
    assert (commitment.start.year, commitment.end.year, commitment.end_seen_only) == (2023, 2024, False)


def test_cli_ingest_json_and_pools(tmp_path):
    from typer.testing import CliRunner

    from api.cli import app

    runner = CliRunner()
    ledger = tmp_path / "l.duckdb"
    result = runner.invoke(app, ["ingest", str(FOCUS_SAMPLE), "--ledger", str(ledger), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    rows = rows_of(FOCUS_SAMPLE)
    for provider in ("AWS", "Microsoft", "Oracle"):
        mine = [r for r in rows if r["ProviderName"] == provider]
        assert body["providers"][provider]["rows"] == len(mine)
        for measure in ("BilledCost", "EffectiveCost", "ListCost"):
            assert body["providers"][provider][measure] == pytest.approx(float(round(sum(number(r[measure]) for r in mine), 2)), abs=0.005)
    assert body["rejected"] == []
    result = runner.invoke(app, ["pools", "--ledger", str(ledger), "--out", str(tmp_path / "u.csv"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["pools"]) == len({p for p, _ in expected_focus_pools(rows)})
    bad = runner.invoke(app, ["ingest", str(tmp_path / "u.csv"), "--ledger", str(ledger)])
    assert bad.exit_code == 2 and "is not a billing export" in bad.output and "ledger is unchanged" in bad.output


hourly_rows = st.lists(
    st.tuples(
        st.sampled_from(["m5.large", "m5.xlarge", "c5.2xlarge", "t3.micro", "r5.24xlarge"]),
        st.sampled_from(["us-east-1", "eu-west-1"]),
        st.integers(0, 47),                      # hour
        st.integers(1, 3),                       # hours spanned
        st.decimals(0, 10, places=3),            # consumed hours
        st.decimals(0, 100, places=6),           # cost
    ),
    min_size=1, max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hourly_rows)
def test_any_bill_ties_and_keeps_every_pool_unit(tmp_path_factory, rows):
    """Sums tie exactly, and pool-hours add up to hours × normalization factor, however rows span hours."""
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "bill.csv"
    start = datetime(2025, 3, 1)
    lines = ["ProviderName,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,"
             "BilledCost,EffectiveCost,ListCost,RegionId,ChargeDescription"]
    expected_units = Decimal(0)
    for instance, region, hour, span, used, cost in rows:
        begin = start + timedelta(hours=hour)
        lines.append(f"AWS,USD,Usage,{begin:%Y-%m-%dT%H:%M:%SZ},{begin + timedelta(hours=span):%Y-%m-%dT%H:%M:%SZ},{used},Hours,"
                     f"{cost},{cost},{cost},{region},$1 per On Demand Linux {instance} Instance Hour")
        expected_units += used * factor(instance.split(".")[1])
    path.write_text("\n".join(lines) + "\n")
    report = ingest([path], folder / "l.duckdb")[0]
    total = sum((r[5] for r in rows), Decimal(0))
    assert report.loaded == {"BilledCost": total, "EffectiveCost": total, "ListCost": total}
    frame = pool_hours_duckdb(folder / "l.duckdb")
    got = sum((Decimal(q) for q in frame["quantity"]), Decimal(0))
    assert abs(got - expected_units) <= Decimal("1e-11") * len(rows) * 3


def test_cur_reservation_and_savings_plan_lines_become_commitments(tmp_path):
    """A 4-hour window: an m5 RI of 8 normalized units, 6 used each hour (0.75 h of m5.xlarge, NF 8),
    its fee line leaving 8 units idle; a $1/h savings plan consuming 0.6, 0.8, 1.0, 0.6."""
    import csv as csv_module

    header = ["line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
              "line_item_unblended_cost", "line_item_usage_amount", "line_item_normalization_factor",
              "line_item_product_code", "line_item_usage_type", "product_instance_type", "product_region_code",
              "product_operating_system", "reservation_reservation_a_r_n", "reservation_effective_cost",
              "reservation_unused_normalized_unit_quantity", "reservation_start_time", "reservation_end_time",
              "savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_effective_cost",
              "savings_plan_total_commitment_to_date", "savings_plan_used_commitment", "savings_plan_start_time",
              "savings_plan_end_time", "line_item_currency_code", "bill_payer_account_id"]
    ri, sp = "arn:aws:ec2:us-east-1:1:reserved-instances/r1", "arn:aws:savingsplans::1:savingsplan/s1"
    hour = lambda h: f"2025-01-01T{h:02d}:00:00Z"  # noqa: E731
    rows = []
    for h, consumed in zip(range(4), ("0.6", "0.8", "1.0", "0.6")):
        rows.append(dict(line_item_line_item_type="DiscountedUsage", line_item_usage_start_date=hour(h),
                         line_item_usage_end_date=hour(h + 1), line_item_unblended_cost="0", line_item_usage_amount="0.75",
                         line_item_normalization_factor="8", line_item_product_code="AmazonEC2",
                         line_item_usage_type="BoxUsage:m5.xlarge", product_instance_type="m5.xlarge",
                         product_region_code="us-east-1", product_operating_system="Linux",
                         reservation_reservation_a_r_n=ri, reservation_effective_cost="0.09",
                         reservation_start_time="2024-06-01T00:00:00Z", reservation_end_time="2025-06-01T00:00:00Z"))
        rows.append(dict(line_item_line_item_type="SavingsPlanCoveredUsage", line_item_usage_start_date=hour(h),
                         line_item_usage_end_date=hour(h + 1), line_item_unblended_cost="1.20", line_item_usage_amount="1",
                         line_item_product_code="AmazonEC2", line_item_usage_type="BoxUsage:c5.2xlarge",
                         product_instance_type="c5.2xlarge", product_region_code="us-east-1", product_operating_system="Linux",
                         savings_plan_savings_plan_a_r_n=sp, savings_plan_savings_plan_effective_cost=consumed,
                         savings_plan_start_time="2024-01-01T00:00:00Z", savings_plan_end_time="2027-01-01T00:00:00Z"))
        rows.append(dict(line_item_line_item_type="SavingsPlanRecurringFee", line_item_usage_start_date=hour(h),
                         line_item_usage_end_date=hour(h + 1), line_item_unblended_cost="1.00",
                         savings_plan_savings_plan_a_r_n=sp, savings_plan_total_commitment_to_date="1.00",
                         savings_plan_used_commitment=consumed,
                         savings_plan_start_time="2024-01-01T00:00:00Z", savings_plan_end_time="2027-01-01T00:00:00Z"))
    rows.append(dict(line_item_line_item_type="RIFee", line_item_usage_start_date=hour(0), line_item_usage_end_date=hour(4),
                     line_item_unblended_cost="0.48", reservation_reservation_a_r_n=ri,
                     reservation_unused_normalized_unit_quantity="8",
                     reservation_start_time="2024-06-01T00:00:00Z", reservation_end_time="2025-06-01T00:00:00Z"))
    path = tmp_path / "cur2.csv"
    with path.open("w", newline="") as stream:
        writer = csv_module.DictWriter(stream, fieldnames=header)
        writer.writeheader()
        for r in rows:
            writer.writerow({**{k: "" for k in header}, "line_item_currency_code": "USD", "bill_payer_account_id": "1", **r})
    ledger = tmp_path / "l.duckdb"
    ingest([path], ledger)
    found = {c.id: c for c in commitments_in(ledger)}
    assert found[ri].quantity == 8 and found[ri].utilization == 0.75 and found[ri].unit == "Normalized Hour"
    assert (found[ri].start.isoformat(), found[ri].end.isoformat()) == ("2024-06-01T00:00:00+00:00", "2025-06-01T00:00:00+00:00")
    assert found[sp].quantity == 1 and found[sp].utilization == pytest.approx(3.0 / 4.0) and found[sp].unit == "USD"
    assert found[ri].pools == ("aws:ec2:us-east-1:m5:linux",) and not found[ri].end_seen_only
    frame = pool_hours_duckdb(ledger)
    m5 = frame[frame["pool"] == "aws:ec2:us-east-1:m5:linux"]
    assert list(m5["quantity"]) == [Decimal(6)] * 4


@pytest.mark.parametrize("description, pool, units", [
    ("$0.096 per On Demand Linux m5.large Instance Hour", "aws:ec2:us-east-1:m5:linux", 4),
    ("$0.3 per On Demand Windows with SQL Web m5.large Instance Hour", "aws:ec2:us-east-1:m5.large:windows-sql-web", 1),
    ("$0.1 per On Demand Windows BYOL m5.large Instance Hour", "aws:ec2:us-east-1:m5.large:windows-byol", 1),
    ("$0.2 per On Demand Red Hat Enterprise Linux with HA m5.large Instance Hour",
     "aws:ec2:us-east-1:m5.large:red-hat-enterprise-linux-with-ha", 1),
    ("$1.0 per On Demand Linux g5.xlarge Instance Hour", "aws:ec2:us-east-1:g5.xlarge:linux", 1),
    ("$0.11 per Dedicated Usage Linux m5.large Dedicated Instance Hour", "aws:ec2:us-east-1:m5.large:linux-dedicated", 1),
])
def test_ingested_pools_are_the_price_catalogs_pools(tmp_path, description, pool, units):
    """Ingest names a pool exactly as the price catalogs do (billing.catalogs.aws_common.pool_for)."""
    from billing.catalogs.aws_common import pool_for

    path = tmp_path / "bill.csv"
    path.write_text(
        "ProviderName,BillingCurrency,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,"
        "BilledCost,EffectiveCost,ListCost,RegionId,ChargeDescription\n"
        f'AWS,USD,Usage,2025-01-01T00:00:00Z,2025-01-01T01:00:00Z,1,Hours,1,1,1,us-east-1,"{description}"\n'
    )
    ingest([path], tmp_path / "l.duckdb")
    frame = pool_hours_duckdb(tmp_path / "l.duckdb")
    assert list(frame["pool"]) == [pool] and list(frame["quantity"]) == [Decimal(units)]
    os_name = re.search(r"(?:On Demand|Dedicated Usage) (.+?)(?: BYOL| with SQL Web)? [a-z0-9]+\.\w+ ", description).group(1)
    expected, _ = pool_for("us-east-1", re.search(r"([a-z0-9]+\.[a-z0-9]+) (?:Dedicated )?Instance", description).group(1),
                           os_name, "sql-web" if "SQL Web" in description else "", "BYOL" in description,
                           "Dedicated" in description)
    assert expected == pool


@pytest.mark.parametrize("sku, series, resource", [
    ("N2 Instance Core running in Americas", "n2", "vcpu"),
    ("C2D AMD Instance Ram running in Americas", "c2d", "memory"),
    ("N1 Predefined Instance Core running in Americas", "n1", "vcpu"),
    ("M3 Memory-optimized Instance Core running in Americas", "m3", "vcpu"),
    ("Compute optimized Core running in Americas", "c2", "vcpu"),
    ("Memory-optimized Instance Ram running in Americas", "m1", "memory"),
    ("N2 Custom Instance Core running in Americas", "n2", "vcpu"),
    ("Custom Instance Ram running in Americas", "n1", "memory"),
    ("Spot Preemptible N2 Instance Core running in Americas", None, None),
    ("Commitment v1: N2 Cpu in Americas for 1 Year", None, None),
])
def test_gcp_sku_descriptions_name_the_catalogs_series(tmp_path, sku, series, resource):
    import csv as csv_module

    rows = rows_of(GCP_SAMPLE)[:1]
    rows[0].update({"sku.description": sku, "usage.amount_in_pricing_units": "3"})
    path = tmp_path / "gcp.csv"
    with path.open("w", newline="") as stream:
        writer = csv_module.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ingest([path], tmp_path / "l.duckdb")
    frame = pool_hours_duckdb(tmp_path / "l.duckdb")
    expected = [] if series is None else [f"gcp:compute:us-central1:{series}:{resource}"]
    assert list(frame["pool"]) == expected
