"""FOCUS 1.0–1.2 (CSV or Parquet), and the 1.3 renames (ServiceProviderName for ProviderName)."""

from __future__ import annotations

from billing.formats.base import DECIMAL, Format, Keyed, Period, Raw
from billing.pool_rules import aws_ec2_pool, aws_os, azure_vm_pool, gcp_machine_pools

PROVIDER = ("ProviderName", "ServiceProviderName")
NUMERIC = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ListUnitPrice",
    "ContractedUnitPrice", "ConsumedQuantity", "PricingQuantity", "CommitmentDiscountQuantity",
)

INSTANCE_HOUR = r"([a-z][a-z0-9-]*\.[a-z0-9]+) (?:Dedicated )?Instance Hour"
"""AWS writes the instance type into ChargeDescription: '$0.34 per On Demand Linux c5.2xlarge Instance Hour'."""


MARKERS = {"BilledCost", "EffectiveCost", "ListCost", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
           "BillingPeriodStart", "BillingPeriodEnd"}


def _detect(columns: set[str]) -> bool:
    """Three FOCUS columns make a FOCUS file, so one missing mandatory column is named as such."""
    return len(MARKERS & columns) >= 3


def _instance_type(raw: Raw) -> str:
    parts = []
    for column in ("x_InstanceType", "x_SkuInstanceType"):
        if raw.has(column):
            parts.append(raw.text(column))
    if raw.has("SkuPriceDetails"):
        parts.append(
            "NULLIF(coalesce(json_extract_string(TRY_CAST(SkuPriceDetails AS JSON), '$.InstanceType'), "
            "json_extract_string(TRY_CAST(SkuPriceDetails AS JSON), '$.x_InstanceType')), '')"
        )
    if raw.has("ChargeDescription"):
        parts.append(f"NULLIF(regexp_extract(ChargeDescription, '{INSTANCE_HOUR}', 1), '')")
    return f"coalesce({', '.join(parts)})" if parts else "NULL"


def _price_detail(raw: Raw, key: str) -> str:
    if not raw.has("SkuPriceDetails"):
        return "NULL"
    return f"NULLIF(json_extract_string(TRY_CAST(NULLIF(TRIM(SkuPriceDetails), '') AS JSON), '$.{key}'), '')"


def _operating_system(raw: Raw) -> str:
    if raw.has("x_OperatingSystem"):
        return raw.text("x_OperatingSystem")
    if raw.has("SkuPriceDetails"):
        detail = _price_detail(raw, "OperatingSystem")
        if raw.has("ChargeDescription"):
            return f"coalesce({detail}, {_description_os()})"
        return detail
    if raw.has("ChargeDescription"):
        return _description_os()
    return "NULL"


def _description_os() -> str:
    return (
        "NULLIF(regexp_extract(ChargeDescription, "
        r"'(?:On Demand|Reserved|Spot|Dedicated Usage) ([A-Za-z/ ]+?)(?: BYOL)?(?: with SQL [A-Za-z ]+?)? "
        r"[a-z][a-z0-9-]*\.[a-z0-9]+ (?:Dedicated )?Instance Hour', 1), '')"
    )


def _charges(raw: Raw) -> dict[str, str]:
    return {
        "provider": raw.text(*PROVIDER),
        "publisher_name": f"coalesce({raw.text('PublisherName', 'HostProviderName')}, {raw.text(*PROVIDER)})",
        "invoice_issuer_name": f"coalesce({raw.text('InvoiceIssuerName')}, {raw.text(*PROVIDER)})",
        "billing_account_id": raw.text("BillingAccountId"),
        "billing_account_name": raw.text("BillingAccountName"),
        "sub_account_id": raw.text("SubAccountId"),
        "sub_account_name": raw.text("SubAccountName"),
        "billing_currency": raw.text("BillingCurrency"),
        "billing_period_start": raw.ts("BillingPeriodStart"),
        "billing_period_end": raw.ts("BillingPeriodEnd"),
        "charge_category": raw.text("ChargeCategory"),
        "charge_class": raw.text("ChargeClass"),
        "charge_frequency": raw.text("ChargeFrequency"),
        "charge_description": raw.text("ChargeDescription"),
        "pricing_category": raw.text("PricingCategory"),
        "service_name": raw.text("ServiceName"),
        "service_category": raw.text("ServiceCategory"),
        "region_id": raw.text("RegionId", "Region"),
        "resource_id": raw.text("ResourceId"),
        "resource_type": raw.text("ResourceType"),
        "sku_id": raw.text("SkuId"),
        "sku_price_id": raw.text("SkuPriceId", "SkuPriceid"),
        "consumed_quantity": raw.num("ConsumedQuantity"),
        "consumed_unit": raw.text("ConsumedUnit"),
        "pricing_quantity": raw.num("PricingQuantity"),
        "pricing_unit": raw.text("PricingUnit"),
        "list_unit_price": raw.num("ListUnitPrice"),
        "billed_cost": raw.num("BilledCost"),
        "effective_cost": raw.num("EffectiveCost"),
        "list_cost": raw.num("ListCost"),
        "contracted_cost": raw.num("ContractedCost"),
        "commitment_discount_id": raw.text("CommitmentDiscountId"),
        "commitment_discount_name": raw.text("CommitmentDiscountName"),
        "commitment_discount_type": raw.text("CommitmentDiscountType"),
        "commitment_discount_category": raw.text("CommitmentDiscountCategory"),
        "commitment_discount_status": raw.text("CommitmentDiscountStatus"),
        "commitment_discount_quantity": raw.num("CommitmentDiscountQuantity"),
        "commitment_discount_unit": raw.text("CommitmentDiscountUnit"),
        "tags": raw.text("Tags"),
    }


KEYS = ("SkuPriceDetails", "ChargeDescription", "x_InstanceType", "x_SkuInstanceType", "x_OperatingSystem")


def _keyed(raw: Raw) -> Keyed:
    """What a row's price details and description say: instance type, OS, machine shape, and the
    AWS OS slug of its pool."""
    software = rf"regexp_extract({raw.text('ChargeDescription')}, 'with SQL (?:Server )?(Web|Std|Standard|Ent|Enterprise)', 1)"
    os_name = aws_os("operating_system", f"NULLIF({software}, '')",
                     f"coalesce({raw.text('ChargeDescription')} LIKE '%BYOL%', false)",
                     f"coalesce({raw.text('ChargeDescription')} LIKE '%Dedicated%' OR _tenancy = 'Dedicated', false)")
    return Keyed(
        keys=tuple(k for k in KEYS if raw.has(k)),
        columns={
            "instance_type": _instance_type(raw),
            "operating_system": _operating_system(raw),
            "_series": _price_detail(raw, "InstanceSeries"),
            "_cores": f"TRY_CAST({_price_detail(raw, 'CoreCount')} AS {DECIMAL})",
            "_memory_gib": f"TRY_CAST({_price_detail(raw, 'MemorySize')} AS {DECIMAL})",
            "_tenancy": _price_detail(raw, "x_Tenancy"),
            "_preemptible": f"coalesce(lower({_price_detail(raw, 'x_Preemptible')}) = 'true', false)",
        },
        derived={"__aws_os_name": f"CASE WHEN instance_type IS NOT NULL THEN {os_name} END"},
    )


def _source_sums(raw: Raw) -> dict[str, str]:
    return {
        measure: f"sum({raw.num(column)})"
        for measure, column in (("BilledCost", "BilledCost"), ("EffectiveCost", "EffectiveCost"),
                                ("ListCost", "ListCost"))
    }


AWS = "('AWS', 'Amazon Web Services')"
AZURE = "('Microsoft', 'Microsoft Azure', 'Azure')"
GOOGLE = "('Google Cloud', 'Google', 'Google Cloud Platform', 'GCP')"
USAGE_HOURS = (
    "CASE WHEN charge_category = 'Usage' AND coalesce(pricing_category, '') <> 'Dynamic' AND NOT _preemptible "
    "AND lower(coalesce(consumed_unit, '')) IN ('hours', 'hour', 'hrs') THEN consumed_quantity END"
)


def _pool_helpers(raw: Raw) -> dict[str, str]:
    """The AWS and Azure usage hours and the AWS OS slug: large expressions the pool id and its
    quantity each use several times, so computed once per row."""
    ec2 = "(service_name IN ('Amazon Elastic Compute Cloud', 'AmazonEC2', 'Amazon EC2') OR (service_name IS NULL " \
          "AND instance_type NOT LIKE '%.%.%'))"
    return {
        "__aws_hours": f"CASE WHEN provider IN {AWS} AND {ec2} THEN {USAGE_HOURS} END",
        "__aws_os": f"CASE WHEN provider IN {AWS} THEN __aws_os_name END",
        "__azure_hours": f"CASE WHEN provider IN {AZURE} AND service_name = 'Virtual Machines' THEN {USAGE_HOURS} END",
    }


def _pool(raw: Raw) -> tuple[str, str]:
    """AWS EC2 (size-flexible where it can be), Azure VMs per size, GCP machine types' cores."""
    aws_pool, aws_quantity = aws_ec2_pool("region_id", "instance_type", "__aws_os", "__aws_hours")
    azure_pool, azure_quantity = azure_vm_pool("region_id", "instance_type", "__azure_hours")
    (gcp_pool, gcp_quantity), _ = _gcp(raw)
    return (
        f"CASE WHEN provider IN {AWS} THEN {aws_pool} WHEN provider IN {AZURE} THEN {azure_pool} "
        f"WHEN provider IN {GOOGLE} THEN {gcp_pool} END",
        f"CASE WHEN provider IN {AWS} THEN {aws_quantity} WHEN provider IN {AZURE} THEN {azure_quantity} "
        f"WHEN provider IN {GOOGLE} THEN {gcp_quantity} END",
    )


def _gcp(raw: Raw):
    hours = f"CASE WHEN provider IN {GOOGLE} AND service_name = 'Compute Engine' THEN {USAGE_HOURS} END"
    return gcp_machine_pools("region_id", "_series", "_cores", "_memory_gib", hours)


def _memory_pool(raw: Raw) -> tuple[str, str]:
    """A GCP machine type's RAM: the second pool its hours use."""
    return _gcp(raw)[1]


FOCUS = Format(
    name="focus",
    detect=_detect,
    required=(("BilledCost",), ("ChargePeriodStart",), ("ChargePeriodEnd",), ("ChargeCategory",)),
    numeric=NUMERIC,
    period=Period(start=("ChargePeriodStart",), end=("ChargePeriodEnd",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
    pool_helpers=_pool_helpers,
    second_pool=_memory_pool,
    keyed=_keyed,
)
