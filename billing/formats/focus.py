"""FOCUS 1.0–1.2 (CSV or Parquet), and the 1.3 renames (ServiceProviderName for ProviderName)."""

from __future__ import annotations

from billing.formats.base import Format, Period, Raw
from billing.pool_rules import aws_ec2_pool, aws_os

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


def _operating_system(raw: Raw) -> str:
    if raw.has("x_OperatingSystem"):
        return raw.text("x_OperatingSystem")
    if raw.has("ChargeDescription"):
        return (
            "NULLIF(regexp_extract(ChargeDescription, "
            r"'(?:On Demand|Reserved|Spot|Dedicated Usage) ([A-Za-z/ ]+?)(?: BYOL)?(?: with SQL [A-Za-z ]+?)? "
            r"[a-z][a-z0-9-]*\.[a-z0-9]+ (?:Dedicated )?Instance Hour', 1), '')"
        )
    return "NULL"


def _charges(raw: Raw) -> dict[str, str]:
    return {
        "provider": raw.text(*PROVIDER),
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
        "instance_type": _instance_type(raw),
        "operating_system": _operating_system(raw),
        "tags": raw.text("Tags"),
    }


def _source_sums(raw: Raw) -> dict[str, str]:
    return {
        measure: f"sum({raw.num(column)})"
        for measure, column in (("BilledCost", "BilledCost"), ("EffectiveCost", "EffectiveCost"),
                                ("ListCost", "ListCost"))
    }


def _pool(raw: Raw) -> tuple[str, str]:
    hours = (
        "CASE WHEN provider IN ('AWS', 'Amazon Web Services') AND charge_category = 'Usage' "
        "AND coalesce(pricing_category, '') <> 'Dynamic' "
        "AND lower(coalesce(consumed_unit, pricing_unit, '')) IN ('hours', 'hour', 'hrs') "
        "THEN coalesce(consumed_quantity, pricing_quantity) END"
    )
    software = r"regexp_extract(charge_description, 'with SQL (?:Server )?(Web|Std|Standard|Ent|Enterprise)', 1)"
    os_name = aws_os("operating_system", f"NULLIF({software}, '')",
                     "coalesce(charge_description LIKE '%BYOL%', false)",
                     "coalesce(charge_description LIKE '%Dedicated%', false)")
    return aws_ec2_pool("region_id", "instance_type", os_name, hours)


FOCUS = Format(
    name="focus",
    detect=_detect,
    required=(("BilledCost",), ("ChargePeriodStart",), ("ChargePeriodEnd",), ("ChargeCategory",)),
    numeric=NUMERIC,
    period=Period(start=("ChargePeriodStart",), end=("ChargePeriodEnd",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
)
