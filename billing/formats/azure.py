"""Azure cost details exports (EA and MCA), actual or amortized, mapped to FOCUS.

Rows are daily (``Date``). The cost column is ``CostInBillingCurrency`` (MCA, newer EA) or
``Cost`` (older EA). Which view a file is, is read from its rows: an amortized export spreads
reservations and savings plans over the usage they cover (covered or unused rows carry cost); an
actual export bills the purchase (purchase rows carry cost, covered usage is 0). The file's cost
column is BilledCost in the actual view and EffectiveCost in the amortized view, and ties to it;
the other figure follows FOCUS: BilledCost of commitment-covered usage is 0 (paid by the
purchase), EffectiveCost of a commitment purchase is 0 (spread over the covered usage, which an
actual export does not show). ListCost is PayGPrice × Quantity where the export gives a price.
"""

from __future__ import annotations

from billing.formats.base import Format, Period, Raw
from billing.pool_rules import azure_vm_pool
from billing.service_categories import service_category

COST = ("CostInBillingCurrency", "Cost")
NUMERIC = ("CostInBillingCurrency", "Cost", "Quantity", "EffectivePrice", "UnitPrice", "PayGPrice")
COMMITMENT_MODELS = "('Reservation', 'SavingsPlan')"
COVERED_CHARGES = "('Usage', 'UnusedReservation', 'UnusedSavingsPlan')"


def _detect(columns: set[str]) -> bool:
    return "MeterCategory" in columns and "Date" in columns and bool(set(COST) & columns)


def _inspect(connection, raw: Raw) -> dict[str, str]:
    cost, model, charge = raw.num(*COST), raw.text("PricingModel"), raw.text("ChargeType")
    amortized = connection.execute(
        f"SELECT count(*) FROM raw_rows WHERE {model} IN {COMMITMENT_MODELS} "
        f"AND {charge} IN {COVERED_CHARGES} AND {cost} <> 0"
    ).fetchone()[0]
    return {"view": "amortized" if amortized else "actual"}


def _billed_effective(raw: Raw) -> tuple[str, str]:
    cost, model, charge = raw.num(*COST), raw.text("PricingModel"), raw.text("ChargeType")
    zero = "CAST(0 AS DECIMAL(38, 12))"
    if raw.context.get("view") == "amortized":
        billed = f"CASE WHEN {model} IN {COMMITMENT_MODELS} AND {charge} IN {COVERED_CHARGES} THEN {zero} ELSE {cost} END"
        return billed, cost
    effective = f"CASE WHEN {model} IN {COMMITMENT_MODELS} AND {charge} = 'Purchase' THEN {zero} ELSE {cost} END"
    return cost, effective


def _charge_category(charge: str) -> str:
    return (
        f"CASE WHEN {charge} IN {COVERED_CHARGES} THEN 'Usage' WHEN {charge} = 'Purchase' THEN 'Purchase' "
        f"WHEN {charge} = 'Refund' THEN 'Credit' WHEN {charge} = 'Tax' THEN 'Tax' ELSE 'Adjustment' END"
    )


def _hours(raw: Raw) -> str:
    """Usage in hours: UnitOfMeasure '1 Hour', '10 Hours', '100 Hours' scale the quantity."""
    unit = raw.text("UnitOfMeasure")
    scale = f"TRY_CAST(regexp_extract({unit}, '^([0-9]+) Hours?$', 1) AS INTEGER)"
    return f"CASE WHEN {scale} IS NOT NULL THEN {raw.num('Quantity')} * {scale} END"


def _charges(raw: Raw) -> dict[str, str]:
    charge, model = raw.text("ChargeType"), raw.text("PricingModel")
    billed, effective = _billed_effective(raw)
    benefit = f"coalesce({raw.text('benefitId')}, {raw.text('ReservationId')})"
    pay_g = raw.num("PayGPrice")
    return {
        "provider": "'Microsoft'",
        "publisher_name": f"coalesce({raw.text('PublisherName')}, 'Microsoft')",
        "invoice_issuer_name": "'Microsoft'",
        "billing_account_id": raw.text("BillingAccountId"),
        "billing_account_name": raw.text("BillingAccountName"),
        "sub_account_id": raw.text("SubscriptionId"),
        "sub_account_name": raw.text("SubscriptionName"),
        "billing_currency": raw.text("BillingCurrencyCode", "BillingCurrency"),
        "billing_period_start": raw.ts("BillingPeriodStartDate"),
        "billing_period_end": f"({raw.ts('BillingPeriodEndDate')} + INTERVAL 1 DAY)",
        "charge_category": _charge_category(charge),
        "charge_frequency": f"CASE WHEN {raw.text('Frequency')} = 'OneTime' THEN 'One-Time' "
                            f"WHEN {raw.text('Frequency')} = 'Recurring' THEN 'Recurring' ELSE 'Usage-Based' END",
        "charge_description": raw.text("MeterName"),
        "pricing_category": f"CASE WHEN {model} IN {COMMITMENT_MODELS} AND {charge} <> 'Purchase' THEN 'Committed' "
                            f"WHEN {model} = 'Spot' THEN 'Dynamic' WHEN {charge} = 'Usage' THEN 'Standard' ELSE 'Other' END",
        "service_name": raw.text("MeterCategory"),
        "service_category": service_category(raw.text("MeterCategory")),
        "region_id": f"lower({raw.text('ResourceLocation')})",
        "resource_id": raw.text("ResourceId"),
        "sku_id": raw.text("MeterId"),
        "sku_price_id": raw.text("PartNumber"),
        "consumed_quantity": raw.num("Quantity"),
        "consumed_unit": raw.text("UnitOfMeasure"),
        "pricing_quantity": raw.num("Quantity"),
        "pricing_unit": raw.text("UnitOfMeasure"),
        "list_unit_price": f"NULLIF({pay_g}, 0)",
        "billed_cost": billed,
        "effective_cost": effective,
        "list_cost": f"CASE WHEN {pay_g} > 0 THEN CAST({pay_g} * {raw.num('Quantity')} AS DECIMAL(38, 12)) END",
        "contracted_cost": f"CAST({raw.num('UnitPrice')} * {raw.num('Quantity')} AS DECIMAL(38, 12))",
        "commitment_discount_id": f"CASE WHEN {model} IN {COMMITMENT_MODELS} THEN {benefit} END",
        "commitment_discount_name": f"CASE WHEN {model} IN {COMMITMENT_MODELS} THEN coalesce({raw.text('benefitName')}, {raw.text('ReservationName')}) END",
        "commitment_discount_type": f"CASE {model} WHEN 'Reservation' THEN 'Reservation' WHEN 'SavingsPlan' THEN 'Savings Plan' END",
        "commitment_discount_status": f"CASE WHEN {model} IN {COMMITMENT_MODELS} AND {charge} = 'Usage' THEN 'Used' "
                                      f"WHEN {charge} IN ('UnusedReservation', 'UnusedSavingsPlan') THEN 'Unused' END",
        "instance_type": f"CASE WHEN {raw.text('MeterCategory')} = 'Virtual Machines' THEN {raw.text('MeterName')} END",
        "tags": raw.text("Tags"),
        "_hours": _hours(raw),
        "_charge_type": charge,
    }


def _source_sums(raw: Raw) -> dict[str, str]:
    measure = "EffectiveCost" if raw.context.get("view") == "amortized" else "BilledCost"
    return {measure: f"sum({raw.num(*COST)})"}


def _pool(raw: Raw) -> tuple[str, str]:
    hours = (
        "CASE WHEN instance_type IS NOT NULL AND _charge_type = 'Usage' "
        "AND coalesce(pricing_category, '') <> 'Dynamic' THEN _hours END"
    )
    return azure_vm_pool("region_id", "instance_type", hours)


AZURE = Format(
    name="azure-cost-details",
    detect=_detect,
    required=(COST, ("Date",), ("MeterCategory",), ("ChargeType",)),
    numeric=NUMERIC,
    period=Period(start=("Date",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
    inspect=_inspect,
)
