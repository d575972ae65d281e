"""Generated FOCUS 1.2 exports for the ingest benchmark: many rows, written fast, sums known exactly.

    python -m benchmarks.focus_generator --rows N --out PATH [--format csv|parquet] [--seed S]

One billing month (May 2026) of an AWS estate with a little Azure, as a FOCUS 1.2 export with the
57 columns AWS's FOCUS 1.2 export writes (the column set of ``tests/data/focus12/focus12_aws.csv``):

- hourly EC2 usage over 10 regions × 20 families (200 size-flexible Linux pools), sizes medium to
  8xlarge, ``ChargeDescription`` as AWS writes it ("$0.0960 per On Demand Linux m5.large Instance
  Hour"), ``ConsumedQuantity`` in ``Hours`` (mostly whole hours, some partial): on demand; covered by
  a Savings Plan or a Reserved Instance (``PricingCategory`` Committed, ``CommitmentDiscountId``/
  ``Type``/``Category``/``Status``/``Quantity``/``Unit``, ``BilledCost`` 0); Spot (Dynamic, no pool);
  Windows on demand (m5/c5 large and xlarge: pools per instance type);
- Savings Plan recurring fees (Purchase) and unused commitment rows;
- S3 storage (GB-Mo) and data transfer (GB): no pool;
- daily Azure VM rows (ProviderName Microsoft, 24-hour charge periods, whole VM-days; SkuPriceDetails
  names the VM size as Azure's export does): 10 regions × 4 sizes = 40 pools, which pool-hours spread
  evenly over each day's 24 hours.

Every row's money is consistent: ListCost = ListUnitPrice × PricingQuantity, EffectiveCost the
on-demand, Savings Plan, RI or Spot rate × quantity, BilledCost 0 for covered usage. Quantities and
unit prices have 4 decimals and costs 8, generated as integers in numpy, so the sums the sidecar
``PATH.json`` gives (BilledCost, EffectiveCost, ListCost, ContractedCost, and the normalized usage
the pool rules must find) are exact. Strings are built and the file written by DuckDB from the
integer columns (no Python loop per row); the same ``--rows``/``--seed`` give the same file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.focus_estate import (  # the bill's vocabulary
    AZURE_ACCOUNT,
    AZURE_METERS,
    COLUMNS,
    COST_SCALE,
    ENVIRONMENTS,
    FAMILIES,
    GENERATOR_VERSION,
    HOURS,
    KINDS,
    MONTH_START,
    PAYERS,
    POOLED,
    PRICE_SCALE,
    REGIONS,
    RI_RATE,
    SIZES,
    SP_RATE,
    SPOT_RATE,
    SUB_ACCOUNTS,
    TEAMS,
    WINDOWS_FAMILIES,
    WINDOWS_PREMIUM,
    WINDOWS_SIZES,
    K,
)


def _cents4(text: str | Decimal) -> int:
    return int(Decimal(text) * PRICE_SCALE)


def price_table() -> np.ndarray:
    """On-demand Linux $/h in 1e-4 $, indexed [region, family, size] (rounded to 4 decimals)."""
    table = np.zeros((len(REGIONS), len(FAMILIES), len(SIZES)), dtype=np.int64)
    for r, (_, mult, _) in enumerate(REGIONS):
        for f, (_, large, _, _) in enumerate(FAMILIES):
            for s, (_, factor, _) in enumerate(SIZES):
                table[r, f, s] = _cents4((Decimal(large) * factor / 4 * mult / 100).quantize(Decimal("0.0001")))
    return table


def windows_premium() -> np.ndarray:
    return np.array([_cents4(WINDOWS_PREMIUM * factor / 4) for _, factor, _ in SIZES], dtype=np.int64)


def generate(rows: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """The rows as integer codes and exact integer money, and the totals the ingest must find."""
    rng = np.random.default_rng(seed)
    n = rows
    kind = rng.choice(len(KINDS), size=n, p=np.array([s for _, s in KINDS]) / sum(s for _, s in KINDS)).astype(np.int8)
    hour = (np.arange(n, dtype=np.int64) * HOURS // max(n, 1)).astype(np.int16)  # sorted by hour, as exports are
    region = rng.integers(0, len(REGIONS), n, dtype=np.int8)
    family = rng.integers(0, len(FAMILIES), n, dtype=np.int8)
    size = rng.choice(len(SIZES), size=n, p=np.array([w for *_, w in SIZES])).astype(np.int8)
    windows = kind == K["ec2_windows"]
    nw = int(windows.sum())
    family[windows] = np.array(WINDOWS_FAMILIES, dtype=np.int8)[rng.integers(0, len(WINDOWS_FAMILIES), nw)]
    size[windows] = np.array(WINDOWS_SIZES, dtype=np.int8)[rng.integers(0, len(WINDOWS_SIZES), nw)]
    sub = rng.integers(0, SUB_ACCOUNTS, n, dtype=np.int8)
    instance = rng.integers(0, 40, n, dtype=np.int16)  # which of up to 40 instances of that type in the account
    meter = rng.integers(0, len(AZURE_METERS), n, dtype=np.int8)
    env = rng.integers(0, len(ENVIRONMENTS), n, dtype=np.int8)
    team = rng.integers(0, len(TEAMS), n, dtype=np.int8)
    cost_center = rng.integers(1000, 1100, n, dtype=np.int16)

    ec2 = kind <= K["ec2_windows"]
    # quantity (1e-4 units): instance-hours, mostly whole; GB-Mo / GB for S3 and transfer; VM-hours a day
    quantity = np.where(rng.random(n) < 0.85, PRICE_SCALE, rng.integers(1, PRICE_SCALE, n)).astype(np.int64)
    quantity[kind == K["s3"]] = rng.integers(1, 500 * PRICE_SCALE, int((kind == K["s3"]).sum()))
    quantity[kind == K["data_transfer"]] = rng.integers(1, 100 * PRICE_SCALE, int((kind == K["data_transfer"]).sum()))
    azure = kind == K["azure_vm"]
    quantity[azure] = 24 * PRICE_SCALE * rng.integers(1, 9, int(azure.sum()))
    quantity[(kind == K["sp_unused"]) | (kind == K["sp_fee"])] = PRICE_SCALE

    # unit prices (1e-4 $)
    on_demand = price_table()[region, family, size]
    list_price = np.where(windows, on_demand + windows_premium()[size], on_demand)
    list_price[kind == K["s3"]] = _cents4("0.023")
    transfer = kind == K["data_transfer"]
    list_price[transfer] = np.where(region[transfer] < 4, _cents4("0.09"), _cents4("0.02"))
    list_price[azure] = np.array([_cents4(m[2]) for m in AZURE_METERS])[meter[azure]]
    unused, fee = kind == K["sp_unused"], kind == K["sp_fee"]
    list_price[unused] = rng.integers(1, 5 * PRICE_SCALE, int(unused.sum()))  # $/h of commitment left unused
    list_price[fee] = rng.integers(10 * PRICE_SCALE, 50 * PRICE_SCALE, int(fee.sum()))  # hourly commitment fee
    rate = np.full(n, 100, dtype=np.int64)
    rate[kind == K["ec2_savings_plan"]] = SP_RATE
    rate[kind == K["ec2_reserved"]] = RI_RATE
    rate[kind == K["ec2_spot"]] = SPOT_RATE
    effective_price = (list_price * rate + 50) // 100  # 4 decimals, rounded half up

    list_cost = quantity * list_price  # 1e-8 $
    effective = quantity * effective_price
    covered = (kind == K["ec2_savings_plan"]) | (kind == K["ec2_reserved"])
    billed = np.where(covered | unused, 0, effective)
    contracted = list_cost.copy()
    list_cost[unused] = 0
    contracted[unused] = 0
    effective[fee] = 0  # the fee is amortized into the covered usage's EffectiveCost

    codes = {"kind": kind, "hour": hour, "region": region, "family": family, "size": size, "sub": sub,
             "instance": instance, "meter": meter, "env": env, "team": team, "cost_center": cost_center}
    frame = pd.DataFrame({
        **{name: values.astype(np.int32) for name, values in codes.items()},  # room for the SQL's arithmetic
        "quantity": quantity, "list_price": list_price, "effective_price": effective_price,
        "billed": billed, "effective": effective, "list_cost": list_cost, "contracted": contracted,
    })

    factor = np.array([f for _, f, _ in SIZES], dtype=np.int64)[size]
    pooled = np.isin(kind, POOLED)
    # EC2: Linux pools by (region, family) in normalized units; Windows pools by (region, type) in hours;
    # Azure VMs: pools by (region, VM size) in hours, each daily row spread evenly over its 24 hours
    normalized = np.where(windows | azure, quantity, quantity * factor)  # 1e-4 units
    code = np.where(windows, 10_000 + (region.astype(np.int64) * 100 + family) * 10 + size,
                    region.astype(np.int64) * 100 + family)
    code = np.where(azure, 20_000 + region.astype(np.int64) * 10 + meter, code)
    pooled |= azure
    hourly = pooled & ~azure
    azure_days = np.unique(code[azure] * 31 + hour[azure] // 24)  # (pool, day) pairs
    spread = (azure_days // 31 * HOURS)[:, None] + (azure_days % 31 * 24)[:, None] + np.arange(24)[None, :]
    pool_hours = np.unique(np.concatenate([code[hourly] * HOURS + hour[hourly], spread.ravel()])).size
    pools = np.unique(code[pooled])
    normalized = normalized[pooled]

    def exact(values: np.ndarray, scale: int) -> str:
        total = sum(int(values[i:i + 1_000_000].sum()) for i in range(0, values.size, 1_000_000))
        return str(Decimal(total) / scale)

    expected = {
        "generator_version": GENERATOR_VERSION, "rows": n, "seed": seed, "month": MONTH_START,
        "sums": {"BilledCost": exact(billed, COST_SCALE), "EffectiveCost": exact(effective, COST_SCALE),
                 "ListCost": exact(list_cost, COST_SCALE), "ContractedCost": exact(contracted, COST_SCALE)},
        "pool_quantity": exact(normalized, PRICE_SCALE),
        "pools": int(pools.size), "pool_hours": int(pool_hours),
        "rows_by_kind": {name: int((kind == i).sum()) for i, (name, _) in enumerate(KINDS)},
        "ec2_rows": int(ec2.sum()),
    }
    return frame, expected


def _list(values) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]"


def select_sql(parquet: bool) -> str:
    """One SELECT over the integer frame ``g`` that builds the export's columns."""
    d = {name: i for i, (name, _) in enumerate(KINDS)}
    regions, families, sizes = _list(r for r, _, _ in REGIONS), _list(f for f, *_ in FAMILIES), _list(s for s, *_ in SIZES)
    region_names = _list(("US East (N. Virginia)", "US East (Ohio)", "US West (N. California)", "US West (Oregon)",
                          "Europe (Ireland)", "Europe (London)", "Europe (Frankfurt)", "Asia Pacific (Singapore)",
                          "Asia Pacific (Tokyo)", "Asia Pacific (Mumbai)"))
    azure_regions = _list(a for *_, a in REGIONS)
    vcpu = "[" + ", ".join(str(c) for *_, c, _ in FAMILIES) + "]"
    memory = "[" + ", ".join(str(m) for *_, m in FAMILIES) + "]"
    factor = "[" + ", ".join(str(f) for _, f, _ in SIZES) + "]"

    def money(column: str) -> str:  # integer 1e-8 $ → DECIMAL with 8 decimals, exactly
        return f"CAST({column} * CAST(0.00000001 AS DECIMAL(9, 8)) AS DECIMAL(18, 8))"

    def number(column: str) -> str:  # integer 1e-4 → DECIMAL with 4 decimals
        return f"CAST({column} * CAST(0.0001 AS DECIMAL(5, 4)) AS DECIMAL(18, 4))"

    def when(kinds: tuple[str, ...], value: str, other: str = "NULL") -> str:
        codes = ", ".join(str(d[k]) for k in kinds)
        return f"CASE WHEN kind IN ({codes}) THEN {value} ELSE {other} END"

    ec2 = ("ec2_on_demand", "ec2_savings_plan", "ec2_reserved", "ec2_spot", "ec2_windows")
    sp = ("ec2_savings_plan", "sp_unused", "sp_fee")
    az = d["azure_vm"]
    itype = f"({families}[family + 1] || '.' || {sizes}[size + 1])"
    os_name = f"CASE WHEN kind = {d['ec2_windows']} THEN 'Windows' ELSE 'Linux' END"
    payer = "(sub % 2)"
    payer_id = f"CASE WHEN kind = {az} THEN '{AZURE_ACCOUNT[0]}' ELSE {_list(p for p, _ in PAYERS)}[{payer} + 1] END"
    sub_id = f"CASE WHEN kind = {az} THEN 'sub-' || lpad(CAST(sub AS VARCHAR), 4, '0') ELSE '2000000000' || CAST(sub + 10 AS VARCHAR) END"
    start = f"(TIMESTAMP '{MONTH_START}' + to_hours(CASE WHEN kind = {az} THEN hour // 24 * 24 ELSE hour END))"
    end = f"({start} + CASE WHEN kind = {az} THEN INTERVAL 1 DAY ELSE INTERVAL 1 HOUR END)"
    if parquet:
        def ts(sql: str) -> str:
            return f"CAST({sql} AS TIMESTAMPTZ)"
    else:
        def ts(sql: str) -> str:
            return f"strftime({sql}, '%Y-%m-%dT%H:%M:%SZ')"
    price = "CAST(list_price * CAST(0.0001 AS DECIMAL(5, 4)) AS VARCHAR)"
    eff_price = "CAST(effective_price * CAST(0.0001 AS DECIMAL(5, 4)) AS VARCHAR)"
    sp_id = f"'arn:aws:savingsplans::' || {_list(p for p, _ in PAYERS)}[{payer} + 1] || ':savingsplan/5f2e' || CAST(4000 + sub AS VARCHAR) || '-7c1d-4b9a-9e21-0f3a6b8c' || CAST(1000 + sub AS VARCHAR)"
    ri_id = f"'arn:aws:ec2:' || {regions}[region + 1] || ':2000000000' || CAST(sub + 10 AS VARCHAR) || ':reserved-instances/' || substr(md5('ri' || region || '-' || family || '-' || sub), 1, 17)"
    description = (
        f"CASE kind "
        f"WHEN {d['ec2_on_demand']} THEN '$' || {price} || ' per On Demand Linux ' || {itype} || ' Instance Hour' "
        f"WHEN {d['ec2_savings_plan']} THEN '$' || {price} || ' per On Demand Linux ' || {itype} || ' Instance Hour' "
        f"WHEN {d['ec2_reserved']} THEN '$0.0000 per Reserved Linux ' || {itype} || ' Instance Hour' "
        f"WHEN {d['ec2_spot']} THEN '$' || {eff_price} || ' per Spot Linux ' || {itype} || ' Instance Hour' "
        f"WHEN {d['ec2_windows']} THEN '$' || {price} || ' per On Demand Windows ' || {itype} || ' Instance Hour' "
        f"WHEN {d['sp_unused']} THEN 'Savings Plan unused commitment' "
        f"WHEN {d['sp_fee']} THEN 'Savings Plan recurring fee (1yr, No Upfront)' "
        f"WHEN {d['s3']} THEN '$0.023 per GB - first 50 TB / month of storage used' "
        f"WHEN {d['data_transfer']} THEN '$' || {price} || ' per GB - data transfer out' "
        f"ELSE {_list(m[1] for m in AZURE_METERS)}[meter + 1] END"
    )
    service = (
        f"CASE WHEN kind IN ({', '.join(str(d[k]) for k in ec2 + ('sp_unused', 'sp_fee'))}) THEN 'Amazon Elastic Compute Cloud' "
        f"WHEN kind = {d['s3']} THEN 'Amazon Simple Storage Service' WHEN kind = {d['data_transfer']} THEN 'AWS Data Transfer' "
        f"ELSE 'Virtual Machines' END"
    )
    category = (
        f"CASE WHEN kind = {d['s3']} THEN 'Storage' WHEN kind = {d['data_transfer']} THEN 'Networking' ELSE 'Compute' END"
    )
    unit = (
        f"CASE WHEN kind = {d['s3']} THEN 'GB-Mo' WHEN kind = {d['data_transfer']} THEN 'GB' ELSE 'Hours' END"
    )
    consumed = when(tuple(k for k, _ in KINDS if k not in ("sp_unused", "sp_fee")), number("quantity"))
    consumed_unit = when(tuple(k for k, _ in KINDS if k not in ("sp_unused", "sp_fee")), unit)
    sku = "'SKU-' || upper(substr(md5(kind || '-' || region || '-' || family || '-' || size || '-' || meter), 1, 24))"
    resource = (
        f"CASE WHEN kind IN ({', '.join(str(d[k]) for k in ec2)}) THEN 'arn:aws:ec2:' || {regions}[region + 1] || ':2000000000' "
        f"|| CAST(sub + 10 AS VARCHAR) || ':instance/i-0' || lpad(lower(to_hex(((region * 20 + family) * 6 + size) * 40960 + sub * 40 + instance)), 16, '0') "
        f"WHEN kind = {d['s3']} THEN 'arn:aws:s3:::examplecorp-' || {_list(ENVIRONMENTS)}[env + 1] || '-' || {_list(TEAMS)}[team + 1] || '-' || CAST(instance AS VARCHAR) "
        f"WHEN kind = {az} THEN '/subscriptions/sub-' || lpad(CAST(sub AS VARCHAR), 4, '0') || '/resourceGroups/rg-' || {_list(TEAMS)}[team + 1] "
        f"|| '/providers/Microsoft.Compute/virtualMachines/vm-' || CAST(instance AS VARCHAR) "
        f"WHEN kind IN ({d['sp_unused']}, {d['sp_fee']}) THEN {sp_id} END"
    )
    resource_type = (
        f"CASE WHEN kind IN ({', '.join(str(d[k]) for k in ec2)}) THEN 'Instance' WHEN kind = {d['s3']} THEN 'Bucket' "
        f"WHEN kind = {az} THEN 'Virtual machine' WHEN kind IN ({d['sp_unused']}, {d['sp_fee']}) THEN 'Savings Plan' END"
    )
    cd_id = f"CASE WHEN kind IN ({', '.join(str(d[k]) for k in sp)}) THEN {sp_id} WHEN kind = {d['ec2_reserved']} THEN {ri_id} END"
    cd_type = when(sp, "'Savings Plan'", when(("ec2_reserved",), "'Reserved Instance'"))
    cd_cat = when(sp, "'Spend'", when(("ec2_reserved",), "'Usage'"))
    cd_status = when(("ec2_savings_plan", "ec2_reserved"), "'Used'", when(("sp_unused",), "'Unused'"))
    cd_qty = when(("ec2_savings_plan", "sp_unused"), money("effective"), when(("ec2_reserved",), number("quantity")))
    cd_unit = when(("ec2_savings_plan", "sp_unused"), "'USD'", when(("ec2_reserved",), "'Hours'"))
    sku_details = when(  # EC2: no InstanceType (ChargeDescription names it); Azure VMs: as Azure writes it
        ec2,
        f"'{{\"CoreCount\":' || CAST({vcpu}[family + 1] * {factor}[size + 1] // 4 AS VARCHAR) || ',\"MemorySize\":' "
        f"|| CAST({memory}[family + 1] * {factor}[size + 1] // 4 AS VARCHAR) || ',\"OperatingSystem\":\"' || {os_name} "
        f"|| '\",\"InstanceSeries\":\"' || {families}[family + 1] || '\"}}'",
        when(("azure_vm",),
             f"'{{\"InstanceType\":\"' || {_list(m[0] for m in AZURE_METERS)}[meter + 1] || '\",\"InstanceSeries\":\"' "
             f"|| {_list(m[3] for m in AZURE_METERS)}[meter + 1] || '\",\"CoreCount\":' "
             f"|| CAST({[m[4] for m in AZURE_METERS]}[meter + 1] AS VARCHAR) || ',\"MemorySize\":' "
             f"|| CAST({[m[5] for m in AZURE_METERS]}[meter + 1] AS VARCHAR) || ',\"OperatingSystem\":\"Linux\"}}'"),
    )
    tags = (
        f"'{{\"Environment\":\"' || {_list(ENVIRONMENTS)}[env + 1] || '\",\"CostCenter\":\"cc-' || CAST(cost_center AS VARCHAR) "
        f"|| '\",\"Owner\":\"team-' || {_list(TEAMS)}[team + 1] || '\"}}'"
    )
    aws_region = f"CASE WHEN kind = {az} THEN {azure_regions}[region + 1] ELSE {regions}[region + 1] END"
    columns = {
        "ProviderName": f"CASE WHEN kind = {az} THEN 'Microsoft' ELSE 'AWS' END",
        "PublisherName": f"CASE WHEN kind = {az} THEN 'Microsoft' ELSE 'AWS' END",
        "InvoiceIssuerName": f"CASE WHEN kind = {az} THEN 'Microsoft' ELSE 'AWS' END",
        "InvoiceId": f"'INV-2026-05-' || lpad(CAST(CASE WHEN kind = {az} THEN 9 ELSE {payer} + 1 END AS VARCHAR), 4, '0')",
        "BillingAccountId": payer_id,
        "BillingAccountName": f"CASE WHEN kind = {az} THEN '{AZURE_ACCOUNT[1]}' ELSE {_list(nm for _, nm in PAYERS)}[{payer} + 1] END",
        "BillingAccountType": f"CASE WHEN kind = {az} THEN 'Billing Account' ELSE 'Payer Account' END",
        "SubAccountId": sub_id,
        "SubAccountName": f"{_list(ENVIRONMENTS)}[sub % 4 + 1] || '-' || {_list(TEAMS)}[sub % 8 + 1]",
        "SubAccountType": f"CASE WHEN kind = {az} THEN 'Subscription' ELSE 'Linked Account' END",
        "BillingPeriodStart": ts(f"TIMESTAMP '{MONTH_START}'"),
        "BillingPeriodEnd": ts(f"TIMESTAMP '{MONTH_START}' + INTERVAL 1 MONTH"),
        "ChargePeriodStart": ts(start),
        "ChargePeriodEnd": ts(end),
        "ChargeCategory": f"CASE WHEN kind = {d['sp_fee']} THEN 'Purchase' ELSE 'Usage' END",
        "ChargeClass": "NULL",
        "ChargeDescription": description,
        "ChargeFrequency": f"CASE WHEN kind = {d['sp_fee']} THEN 'Recurring' ELSE 'Usage-Based' END",
        "BilledCost": money("billed"),
        "EffectiveCost": money("effective"),
        "ListCost": money("list_cost"),
        "ContractedCost": money("contracted"),
        "ListUnitPrice": when(("sp_unused",), "NULL", number("list_price")),
        "ContractedUnitPrice": when(("sp_unused",), "NULL", number("list_price")),
        "PricingCategory": (
            f"CASE WHEN kind IN ({d['ec2_savings_plan']}, {d['ec2_reserved']}, {d['sp_unused']}) THEN 'Committed' "
            f"WHEN kind = {d['ec2_spot']} THEN 'Dynamic' ELSE 'Standard' END"
        ),
        "PricingQuantity": when(("sp_unused",), "NULL", number("quantity")),
        "PricingUnit": when(("sp_unused",), "NULL", unit),
        "PricingCurrency": "'USD'",
        "PricingCurrencyContractedUnitPrice": when(("sp_unused",), "NULL", number("list_price")),
        "PricingCurrencyEffectiveCost": money("effective"),
        "PricingCurrencyListUnitPrice": when(("sp_unused",), "NULL", number("list_price")),
        "BillingCurrency": "'USD'",
        "ConsumedQuantity": consumed,
        "ConsumedUnit": consumed_unit,
        "ServiceName": service,
        "ServiceCategory": category,
        "ServiceSubcategory": (
            f"CASE WHEN kind = {d['s3']} THEN 'Object Storage' WHEN kind = {d['data_transfer']} THEN 'Network Traffic' "
            f"WHEN kind IN ({d['sp_unused']}, {d['sp_fee']}) THEN 'Commitment' ELSE 'Virtual Machines' END"
        ),
        "SkuId": sku,
        "SkuMeter": f"CASE WHEN kind = {az} THEN {_list(m[1] for m in AZURE_METERS)}[meter + 1] ELSE {category} END",
        "SkuPriceId": "'SPRICE-' || substr(md5(kind || '-' || region || '-' || family || '-' || size || '-' || meter || '-p'), 1, 24)",
        "SkuPriceDetails": sku_details,
        "ResourceId": resource,
        "ResourceName": "NULL",
        "ResourceType": resource_type,
        "RegionId": f"CASE WHEN kind IN ({d['sp_unused']}, {d['sp_fee']}) THEN NULL ELSE {aws_region} END",
        "RegionName": f"CASE WHEN kind IN ({d['sp_unused']}, {d['sp_fee']}) THEN NULL WHEN kind = {az} THEN {azure_regions}[region + 1] ELSE {region_names}[region + 1] END",
        "AvailabilityZone": when(ec2, f"{regions}[region + 1] || ['a', 'b', 'c'][instance % 3 + 1]"),
        "CommitmentDiscountId": cd_id,
        "CommitmentDiscountName": when(sp, "'ComputeSavingsPlan-1yr-NoUpfront'", when(("ec2_reserved",), "'EC2ReservedInstance-1yr-NoUpfront'")),
        "CommitmentDiscountCategory": cd_cat,
        "CommitmentDiscountType": cd_type,
        "CommitmentDiscountStatus": cd_status,
        "CommitmentDiscountQuantity": cd_qty,
        "CommitmentDiscountUnit": cd_unit,
        "CapacityReservationId": "NULL",
        "CapacityReservationStatus": "NULL",
        "Tags": tags,
    }
    assert tuple(columns) == COLUMNS
    typed_null = {"ChargeClass", "ResourceName", "CapacityReservationId", "CapacityReservationStatus"}
    body = ", ".join(
        f"{'CAST(NULL AS VARCHAR)' if name in typed_null else sql} AS \"{name}\"" for name, sql in columns.items()
    )
    return f"SELECT {body} FROM g"


def write(frame: pd.DataFrame, out: Path, fmt: str, threads: int | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET enable_progress_bar = false")
        if threads:
            connection.execute(f"SET threads = {int(threads)}")
        connection.register("g", frame)
        target = "'" + str(tmp).replace("'", "''") + "'"
        # PRESERVE_ORDER: DuckDB's parallel COPY may otherwise write row chunks in any order (the file
        # would differ from run to run); with it the rows come out in generated order, sorted by hour
        if fmt == "csv":
            options = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', PRESERVE_ORDER true"
        else:
            options = "FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880, PRESERVE_ORDER true"
        connection.execute(f"COPY ({select_sql(fmt == 'parquet')}) TO {target} ({options})")
    finally:
        connection.close()
    tmp.replace(out)


def generate_file(rows: int, out: Path, fmt: str = "csv", seed: int = 12) -> dict:
    """Write the export to ``out`` and its expected totals to ``out`` + ``.json``; returns them."""
    t = time.perf_counter()
    frame, expected = generate(rows, seed)
    generated = time.perf_counter() - t
    write(frame, out, fmt)
    expected |= {"format": fmt, "file": str(out), "bytes": out.stat().st_size, "generator_source": source_digest(),
                 "generate_seconds": round(generated, 2), "write_seconds": round(time.perf_counter() - t - generated, 2)}
    sidecar(out).write_text(json.dumps(expected, indent=1) + "\n")
    return expected


def source_digest() -> str:
    """SHA-256 of the generator's source: a cached file is reused only if the generator is unchanged."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(__file__).with_name("focus_estate.py").read_bytes())
    return digest.hexdigest()[:16]


def sidecar(out: Path) -> Path:
    return out.with_name(out.name + ".json")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--format", choices=("csv", "parquet"), default=None,
                    help="default: from the file name's suffix (.parquet or else csv)")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    fmt = args.format or ("parquet" if args.out.suffix == ".parquet" else "csv")
    expected = generate_file(args.rows, args.out, fmt, args.seed)
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
