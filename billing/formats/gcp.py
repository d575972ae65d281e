"""Google Cloud billing export to BigQuery (standard or detailed), as CSV, mapped to FOCUS.

Nested fields arrive flattened (``service.description``, ``usage.amount_in_pricing_units``);
``credits`` is a JSON list of ``{name, amount, type}``. BilledCost and EffectiveCost are cost plus
its credits (Google invoices net of them: sustained-use, committed-use and promotional credits);
ListCost is ``cost_at_list`` where the export has it. Committed-use-discount fees (SKUs named
'Commitment v1: …') are purchases.
"""

from __future__ import annotations

from billing.formats.base import DECIMAL, Format, Period, Raw
from billing.pool_rules import gcp_compute_pool
from billing.service_categories import service_category

NUMERIC = ("cost", "cost_at_list", "usage.amount", "usage.amount_in_pricing_units", "currency_conversion_rate")


def _detect(columns: set[str]) -> bool:
    return {"cost", "usage_start_time", "usage_end_time"} <= columns and (
        "sku.description" in columns or "service.description" in columns
    )


def _credits(raw: Raw) -> str:
    if not raw.has("credits"):
        return f"CAST(0 AS {DECIMAL})"
    return (
        f"coalesce(list_sum(CAST(json_extract_string(TRY_CAST(NULLIF(TRIM({raw.text('credits')}), '') AS JSON), "
        f"'$[*].amount') AS {DECIMAL}[])), 0)"
    )


def _net(raw: Raw) -> str:
    return f"CAST({raw.num('cost')} + {_credits(raw)} AS {DECIMAL})"


def _charges(raw: Raw) -> dict[str, str]:
    sku = raw.text("sku.description")
    cost_type = raw.text("cost_type")
    commitment = f"regexp_matches(coalesce({sku}, ''), '^Commitment')"
    return {
        "provider": "'Google Cloud'",
        "publisher_name": "'Google Cloud'",
        "invoice_issuer_name": "'Google Cloud'",
        "billing_account_id": raw.text("billing_account_id"),
        "sub_account_id": raw.text("project.id"),
        "sub_account_name": raw.text("project.name"),
        "billing_currency": raw.text("currency"),
        "billing_period_start": f"CAST(strptime({raw.text('invoice.month')}, '%Y%m') AS TIMESTAMP)"
        if raw.has("invoice.month") else "NULL",
        "billing_period_end": f"(CAST(strptime({raw.text('invoice.month')}, '%Y%m') AS TIMESTAMP) + INTERVAL 1 MONTH)"
        if raw.has("invoice.month") else "NULL",
        "charge_category": f"CASE WHEN {cost_type} = 'tax' THEN 'Tax' WHEN {cost_type} IN ('adjustment', 'rounding_error') "
                           f"THEN 'Adjustment' WHEN {commitment} THEN 'Purchase' ELSE 'Usage' END",
        "charge_frequency": f"CASE WHEN {commitment} THEN 'Recurring' ELSE 'Usage-Based' END",
        "charge_description": sku,
        "pricing_category": f"CASE WHEN regexp_matches(lower(coalesce({sku}, '')), 'spot|preemptible') THEN 'Dynamic' "
                            f"ELSE 'Standard' END",
        "service_name": raw.text("service.description"),
        "service_category": service_category(raw.text("service.description")),
        "region_id": raw.text("location.region"),
        "resource_id": raw.text("resource.global_name", "resource.name"),
        "sku_id": raw.text("sku.id"),
        "consumed_quantity": raw.num("usage.amount"),
        "consumed_unit": raw.text("usage.unit"),
        "pricing_quantity": f"CASE WHEN {raw.text('usage.pricing_unit')} IS NOT NULL "
                            f"THEN {raw.num('usage.amount_in_pricing_units')} END",
        "pricing_unit": raw.text("usage.pricing_unit"),
        "billed_cost": _net(raw),
        "effective_cost": _net(raw),
        "list_cost": raw.num("cost_at_list"),
        "contracted_cost": raw.num("cost"),
        "commitment_discount_id": f"CASE WHEN {commitment} THEN {sku} END",
        "commitment_discount_type": f"CASE WHEN {commitment} THEN 'Committed Use Discount' END",
        "tags": raw.text("labels"),
    }


def _source_sums(raw: Raw) -> dict[str, str]:
    sums = {"BilledCost": f"sum({_net(raw)})", "EffectiveCost": f"sum({_net(raw)})"}
    if raw.has("cost_at_list"):
        sums["ListCost"] = f"sum({raw.num('cost_at_list')})"
    return sums


def _pool(raw: Raw) -> tuple[str, str]:
    amount = "CASE WHEN service_name = 'Compute Engine' AND charge_category = 'Usage' THEN pricing_quantity END"
    return gcp_compute_pool("region_id", "charge_description", amount)


GCP = Format(
    name="gcp-billing-export",
    detect=_detect,
    required=(("cost",), ("usage_start_time",), ("usage_end_time",), ("currency",)),
    numeric=NUMERIC,
    period=Period(start=("usage_start_time",), end=("usage_end_time",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
)
