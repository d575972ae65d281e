"""AWS Cost and Usage Report: CUR 2.0 (``line_item_unblended_cost``) and legacy CUR
(``lineItem/UnblendedCost``), mapped to FOCUS as AWS's own FOCUS export does.

Legacy names are read through their CUR 2.0 spelling (``lineItem/UsageStartDate`` is
``line_item_usage_start_date``), so one mapping serves both.

EffectiveCost amortizes commitments by line item type: reservation-covered usage carries
``reservation/EffectiveCost``, savings-plan-covered usage ``savingsPlan/SavingsPlanEffectiveCost``;
the recurring fees keep only their unused part (``RIFee``: unused amortized upfront + unused
recurring fee; ``SavingsPlanRecurringFee``: total commitment − used commitment); upfront purchases
and savings-plan negations are 0 (their cost is in the covered usage); everything else is unblended.
"""

from __future__ import annotations

import re

from billing.formats.base import Format, Period, Raw
from billing.pool_rules import aws_ec2_pool, aws_os
from billing.service_categories import service_category

NUMERIC = (
    "line_item_unblended_cost", "line_item_usage_amount", "line_item_normalization_factor",
    "line_item_unblended_rate", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate",
    "reservation_effective_cost", "savings_plan_savings_plan_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
    "reservation_unused_normalized_unit_quantity",
)
COVERED = ("DiscountedUsage", "SavingsPlanCoveredUsage")


def cur2_name(column: str) -> str:
    """'lineItem/UsageStartDate' → 'line_item_usage_start_date'; CUR 2.0 names are unchanged."""
    if "/" not in column:
        return column
    category, name = column.split("/", 1)
    return "_".join(_snake(part) for part in (category, name))


def _snake(text: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", text).lower()


class CurRaw(Raw):
    """Raw columns addressed by their CUR 2.0 names, whichever spelling the file uses."""

    def __init__(self, columns):
        super().__init__(columns)
        self._by_cur2 = {cur2_name(c): c for c in columns}

    def has(self, column: str) -> bool:
        return column in self._by_cur2

    def first(self, *columns: str) -> str | None:
        return next((self._by_cur2[c] for c in columns if c in self._by_cur2), None)


def _detect(columns: set[str]) -> bool:
    return bool({"line_item_unblended_cost", "lineItem/UnblendedCost"} & columns)


def _effective(raw: CurRaw) -> str:
    unblended = raw.num("line_item_unblended_cost")
    zero = "CAST(0 AS DECIMAL(38, 12))"

    def part(column: str) -> str:
        return f"coalesce({raw.num(column)}, 0)" if raw.has(column) else "0"

    return (
        f"CASE {raw.text('line_item_line_item_type')} "
        f"WHEN 'DiscountedUsage' THEN {raw.num('reservation_effective_cost') if raw.has('reservation_effective_cost') else unblended} "
        f"WHEN 'SavingsPlanCoveredUsage' THEN {raw.num('savings_plan_savings_plan_effective_cost') if raw.has('savings_plan_savings_plan_effective_cost') else unblended} "
        f"WHEN 'RIFee' THEN {part('reservation_unused_amortized_upfront_fee_for_billing_period')} + {part('reservation_unused_recurring_fee')} "
        f"WHEN 'SavingsPlanRecurringFee' THEN {part('savings_plan_total_commitment_to_date')} - {part('savings_plan_used_commitment')} "
        f"WHEN 'SavingsPlanUpfrontFee' THEN {zero} WHEN 'SavingsPlanNegation' THEN {zero} "
        f"ELSE {unblended} END"
    )


def _commitment_quantity(raw: CurRaw, kind: str) -> str:
    """The part of a commitment a row used or left idle, as FOCUS counts it: normalized hours of a
    reservation (covered usage × normalization factor; the RI fee line's unused units), dollars of
    a savings plan (the commitment the covered usage consumed; the fee line's unused commitment)."""
    usage, factor = raw.num("line_item_usage_amount"), raw.num("line_item_normalization_factor")
    return (
        f"CASE WHEN {kind} = 'DiscountedUsage' THEN {usage} * coalesce(NULLIF({factor}, 0), 1) "
        f"WHEN {kind} = 'RIFee' THEN {raw.num('reservation_unused_normalized_unit_quantity')} "
        f"WHEN {kind} = 'SavingsPlanCoveredUsage' THEN {raw.num('savings_plan_savings_plan_effective_cost')} "
        f"WHEN {kind} = 'SavingsPlanRecurringFee' THEN {raw.num('savings_plan_total_commitment_to_date')} "
        f"- {raw.num('savings_plan_used_commitment')} END"
    )


def _charge_category(kind: str) -> str:
    return (
        f"CASE WHEN {kind} IN ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation') THEN 'Usage' "
        f"WHEN {kind} IN ('RIFee', 'Fee', 'SavingsPlanRecurringFee', 'SavingsPlanUpfrontFee') THEN 'Purchase' "
        f"WHEN {kind} = 'Tax' THEN 'Tax' WHEN {kind} IN ('Credit', 'Refund', 'BundledDiscount', 'EdpDiscount', "
        f"'PrivateRateDiscount', 'SppDiscount', 'DistributorDiscount') THEN 'Credit' ELSE 'Adjustment' END"
    )


def _tags(raw: CurRaw) -> str:
    if raw.has("resource_tags"):
        return raw.text("resource_tags")
    tag_columns = [c for c in raw.columns if c.startswith("resourceTags/")]
    if not tag_columns:
        return "NULL"
    pairs = ", ".join(f"'{c.split('/', 1)[1]}', {raw.text(c)}" for c in tag_columns)
    return f"CAST(json_object({pairs}) AS VARCHAR)"


def _charges(raw: CurRaw) -> dict[str, str]:
    kind = raw.text("line_item_line_item_type")
    arn = f"coalesce({raw.text('reservation_reservation_a_r_n')}, {raw.text('savings_plan_savings_plan_a_r_n')})"
    usage_type = raw.text("line_item_usage_type")
    return {
        "provider": "'AWS'",
        "publisher_name": "'AWS'",
        "invoice_issuer_name": "'AWS'",
        "billing_account_id": raw.text("bill_payer_account_id"),
        "sub_account_id": raw.text("line_item_usage_account_id"),
        "sub_account_name": raw.text("line_item_usage_account_name"),
        "billing_currency": raw.text("line_item_currency_code"),
        "billing_period_start": raw.ts("bill_billing_period_start_date"),
        "billing_period_end": raw.ts("bill_billing_period_end_date"),
        "charge_category": _charge_category(kind),
        "charge_frequency": f"CASE WHEN {kind} IN ('Fee', 'SavingsPlanUpfrontFee') THEN 'One-Time' "
                            f"WHEN {kind} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Recurring' ELSE 'Usage-Based' END",
        "charge_description": raw.text("line_item_line_item_description"),
        "pricing_category": f"CASE WHEN {kind} IN {COVERED} THEN 'Committed' "
                            f"WHEN {usage_type} LIKE '%SpotUsage%' THEN 'Dynamic' "
                            f"WHEN {kind} = 'Usage' THEN 'Standard' ELSE 'Other' END",
        "service_name": f"coalesce({raw.text('product_product_name')}, {raw.text('line_item_product_code')})",
        "service_category": service_category(f"coalesce({raw.text('product_product_name')}, {raw.text('line_item_product_code')})"),
        "region_id": raw.text("product_region_code"),
        "resource_id": raw.text("line_item_resource_id"),
        "sku_id": raw.text("product_sku"),
        "consumed_quantity": raw.num("line_item_usage_amount"),
        "consumed_unit": raw.text("pricing_unit"),
        "pricing_quantity": f"CASE WHEN {_charge_category(kind)} IN ('Usage', 'Purchase') "
                            f"AND {raw.text('pricing_unit')} IS NOT NULL THEN {raw.num('line_item_usage_amount')} END",
        "pricing_unit": f"CASE WHEN {_charge_category(kind)} IN ('Usage', 'Purchase') THEN {raw.text('pricing_unit')} END",
        "list_unit_price": raw.num("pricing_public_on_demand_rate"),
        "billed_cost": raw.num("line_item_unblended_cost"),
        "effective_cost": _effective(raw),
        "list_cost": raw.num("pricing_public_on_demand_cost"),
        "contracted_cost": f"CASE WHEN {kind} IN {COVERED} THEN {raw.num('pricing_public_on_demand_cost')} "
                           f"ELSE {raw.num('line_item_unblended_cost')} END",
        "commitment_discount_id": f"CASE WHEN {kind} IN {COVERED + ('RIFee', 'SavingsPlanRecurringFee', 'Fee', 'SavingsPlanUpfrontFee')} THEN {arn} END",
        "commitment_discount_type": f"CASE WHEN {kind} = 'DiscountedUsage' OR ({kind} IN ('RIFee', 'Fee') "
                                    f"AND {raw.text('reservation_reservation_a_r_n')} IS NOT NULL) THEN 'Reserved Instance' "
                                    f"WHEN {kind} LIKE 'SavingsPlan%' THEN 'Savings Plan' END",
        "commitment_discount_status": f"CASE WHEN {kind} IN {COVERED} THEN 'Used' "
                                      f"WHEN {kind} IN ('RIFee', 'SavingsPlanRecurringFee') THEN 'Unused' END",
        "commitment_discount_quantity": _commitment_quantity(raw, kind),
        "commitment_discount_unit": f"CASE WHEN {kind} IN ('DiscountedUsage', 'RIFee') THEN 'Normalized Hour' "
                                    f"WHEN {kind} IN ('SavingsPlanCoveredUsage', 'SavingsPlanRecurringFee') "
                                    f"THEN {raw.text('line_item_currency_code')} END",
        "commitment_start": f"coalesce({raw.ts('reservation_start_time')}, {raw.ts('savings_plan_start_time')})",
        "commitment_end": f"coalesce({raw.ts('reservation_end_time')}, {raw.ts('savings_plan_end_time')})",
        "instance_type": raw.text("product_instance_type"),
        "operating_system": raw.text("product_operating_system"),
        "tags": _tags(raw),
        "_normalization_factor": raw.num("line_item_normalization_factor"),
        "_software": raw.text("product_pre_installed_sw"),
        "_byol": f"coalesce(lower({raw.text('product_license_model')}) LIKE '%bring your own%', false)",
        "_tenancy": raw.text("product_tenancy"),
        "_product_code": raw.text("line_item_product_code"),
        "_usage_type": usage_type,
    }


def _source_sums(raw: CurRaw) -> dict[str, str]:
    sums = {"BilledCost": f"sum({raw.num('line_item_unblended_cost')})",
            "EffectiveCost": f"sum({_effective(raw)})"}
    if raw.has("pricing_public_on_demand_cost"):
        sums["ListCost"] = f"sum({raw.num('pricing_public_on_demand_cost')})"
    return sums


def _pool(raw: Raw) -> tuple[str, str]:
    hours = (
        "CASE WHEN _product_code = 'AmazonEC2' AND charge_category = 'Usage' "
        "AND coalesce(pricing_category, '') <> 'Dynamic' AND coalesce(_tenancy, '') <> 'Host' "
        "AND (_usage_type LIKE '%BoxUsage%' OR _usage_type LIKE '%DedicatedUsage%') "
        "THEN consumed_quantity END"
    )
    dedicated = "(coalesce(_tenancy, '') = 'Dedicated' OR _usage_type LIKE '%DedicatedUsage%')"
    os_name = aws_os("operating_system", "_software", "_byol", dedicated)
    return aws_ec2_pool("region_id", "instance_type", os_name, hours, "_normalization_factor")


CUR = Format(
    name="aws-cur",
    detect=_detect,
    required=(
        ("line_item_unblended_cost", "lineItem/UnblendedCost"),
        ("line_item_usage_start_date", "lineItem/UsageStartDate"),
        ("line_item_usage_end_date", "lineItem/UsageEndDate"),
        ("line_item_line_item_type", "lineItem/LineItemType"),
    ),
    numeric=NUMERIC,
    period=Period(start=("line_item_usage_start_date",), end=("line_item_usage_end_date",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
    raw=CurRaw,
)
