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
        "_consumed": raw.small_num("ConsumedQuantity"),  # for the pool quantity: cheap to multiply
    }


KEYS = ("SkuPriceDetails", "ChargeDescription", "x_InstanceType", "x_SkuInstanceType", "x_OperatingSystem",
        *PROVIDER, "ServiceName", "RegionId", "Region", "ChargeCategory", "PricingCategory", "ConsumedUnit")
"""Everything a row's pool and its units per consumed hour depend on: a few thousand distinct tuples
in a bill of millions of rows."""


UNIT = "DECIMAL(18, 8)"
"""Pool units per consumed hour (a normalization factor, cores, GiB): exact, and cheap to multiply."""


def _unit(sql: str) -> str:
    """``sql`` as a UNIT, or an error naming it if that would round it (per distinct key: free)."""
    return (f"CASE WHEN CAST({sql} AS {UNIT}) = {sql} OR {sql} IS NULL THEN CAST({sql} AS {UNIT}) "
            f"ELSE error('a machine size or normalization factor has more than 8 decimals: ' || CAST({sql} AS VARCHAR)) END")


def _keyed(raw: Raw) -> Keyed:
    """Per distinct key: instance type, OS and machine shape (from price details and description),
    then the pool (and a GCP machine type's second, RAM pool) and the pool units one consumed hour
    is (a size's normalization factor, a machine type's cores or GiB; NULL where no commitment
    covers the usage). A row's pool quantity is its ConsumedQuantity times that."""
    description = raw.text("ChargeDescription")
    software = rf"regexp_extract({description}, 'with SQL (?:Server )?(Web|Std|Standard|Ent|Enterprise)', 1)"
    os_name = aws_os("operating_system", f"NULLIF({software}, '')", f"coalesce({description} LIKE '%BYOL%', false)",
                     f"coalesce({description} LIKE '%Dedicated%' OR _tenancy = 'Dedicated', false)")
    one_hour = _usage_hours("k_category", "k_pricing", "k_unit", "1")
    ec2 = ("(k_service IN ('Amazon Elastic Compute Cloud', 'AmazonEC2', 'Amazon EC2') OR (k_service IS NULL "
           "AND instance_type NOT LIKE '%.%.%'))")
    aws_pool, aws_unit = aws_ec2_pool("k_region", "instance_type", "__aws_os", "__aws_hour")
    azure_pool, azure_unit = azure_vm_pool("k_region", "instance_type", "__azure_hour")
    (gcp_pool, gcp_unit), (memory_pool, memory_unit) = gcp_machine_pools(
        "k_region", "_series", "_cores", "_memory_gib", "__gcp_hour")
    return Keyed(
        keys=tuple(k for k in KEYS if raw.has(k)),
        layers=(
            {
                "instance_type": _instance_type(raw),
                "operating_system": _operating_system(raw),
                "_series": _price_detail(raw, "InstanceSeries"),
                "_cores": f"TRY_CAST({_price_detail(raw, 'CoreCount')} AS {DECIMAL})",
                "_memory_gib": f"TRY_CAST({_price_detail(raw, 'MemorySize')} AS {DECIMAL})",
                "_tenancy": _price_detail(raw, "x_Tenancy"),
                "_preemptible": f"coalesce(lower({_price_detail(raw, 'x_Preemptible')}) = 'true', false)",
                "k_provider": raw.text(*PROVIDER),
                "k_service": raw.text("ServiceName"),
                "k_region": raw.text("RegionId", "Region"),
                "k_category": raw.text("ChargeCategory"),
                "k_pricing": raw.text("PricingCategory"),
                "k_unit": raw.text("ConsumedUnit"),
            },
            {
                "__aws_os": f"CASE WHEN k_provider IN {AWS} AND instance_type IS NOT NULL THEN {os_name} END",
                "__aws_hour": f"CASE WHEN k_provider IN {AWS} AND {ec2} THEN {one_hour} END",
                "__azure_hour": f"CASE WHEN k_provider IN {AZURE} AND k_service = 'Virtual Machines' THEN {one_hour} END",
                "__gcp_hour": f"CASE WHEN k_provider IN {GOOGLE} AND k_service = 'Compute Engine' THEN {one_hour} END",
            },
            {
                "__key_pool": f"CASE WHEN k_provider IN {AWS} THEN {aws_pool} WHEN k_provider IN {AZURE} THEN {azure_pool} "
                              f"WHEN k_provider IN {GOOGLE} THEN {gcp_pool} END",
                "__key_unit": _unit(f"CASE WHEN k_provider IN {AWS} THEN {aws_unit} WHEN k_provider IN {AZURE} "
                                    f"THEN {azure_unit} WHEN k_provider IN {GOOGLE} THEN {gcp_unit} END"),
                "__key_pool_2": memory_pool,
                "__key_unit_2": _unit(memory_unit),
            },
        ),
        exposed=("instance_type", "operating_system", "__key_pool", "__key_unit", "__key_pool_2", "__key_unit_2"),
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
def _usage_hours(category: str, pricing: str, unit: str, amount: str) -> str:
    """Hours of usage a commitment could cover: not Spot/Dynamic or preemptible, counted in hours."""
    return (f"CASE WHEN {category} = 'Usage' AND coalesce({pricing}, '') <> 'Dynamic' AND NOT _preemptible "
            f"AND lower(coalesce({unit}, '')) IN ('hours', 'hour', 'hrs') THEN {amount} END")


def _pool(raw: Raw) -> tuple[str, str]:
    """AWS EC2 (size-flexible where it can be), Azure VMs per size, GCP machine types' cores: the
    pool of the row's key, its ConsumedQuantity in the pool's units."""
    return ("CASE WHEN consumed_quantity IS NOT NULL THEN __key_pool END",
            "_consumed * __key_unit")


def _memory_pool(raw: Raw) -> tuple[str, str]:
    """A GCP machine type's RAM: the second pool its hours use."""
    return ("CASE WHEN consumed_quantity IS NOT NULL THEN __key_pool_2 END",
            "_consumed * __key_unit_2")


FOCUS = Format(
    name="focus",
    detect=_detect,
    required=(("BilledCost",), ("ChargePeriodStart",), ("ChargePeriodEnd",), ("ChargeCategory",)),
    numeric=NUMERIC,
    period=Period(start=("ChargePeriodStart",), end=("ChargePeriodEnd",)),
    charges=_charges,
    source_sums=_source_sums,
    pool=_pool,
    second_pool=_memory_pool,
    keyed=_keyed,
)
