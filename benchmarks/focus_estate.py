"""What the generated FOCUS bills of the ingest benchmark contain: regions, families and sizes with
their prices, the kinds of rows and their shares, accounts, tags, and the export's columns."""

from __future__ import annotations

from decimal import Decimal

GENERATOR_VERSION = 2
MONTH_START = "2026-05-01"
HOURS = 31 * 24  # May 2026
PRICE_SCALE = 10**4  # unit prices and quantities: 4 decimals
COST_SCALE = PRICE_SCALE * PRICE_SCALE  # costs: 8 decimals

REGIONS = (  # (AWS region, price multiplier in percent, Azure region of the same area)
    ("us-east-1", 100, "eastus"), ("us-east-2", 100, "eastus2"), ("us-west-1", 112, "westus"),
    ("us-west-2", 100, "westus2"), ("eu-west-1", 107, "northeurope"), ("eu-west-2", 110, "uksouth"),
    ("eu-central-1", 115, "germanywestcentral"), ("ap-southeast-1", 116, "southeastasia"),
    ("ap-northeast-1", 124, "japaneast"), ("ap-south-1", 95, "centralindia"),
)
FAMILIES = (  # (family, on-demand Linux $/h of its .large, vCPU and GiB of the .large)
    ("m5", "0.096", 2, 8), ("m5a", "0.086", 2, 8), ("m6i", "0.096", 2, 8), ("m6g", "0.077", 2, 8),
    ("m7i", "0.1008", 2, 8), ("m7g", "0.0816", 2, 8), ("c5", "0.085", 2, 4), ("c5a", "0.077", 2, 4),
    ("c6i", "0.085", 2, 4), ("c6g", "0.068", 2, 4), ("c7g", "0.0725", 2, 4), ("c7i", "0.0893", 2, 4),
    ("r5", "0.126", 2, 16), ("r5a", "0.113", 2, 16), ("r6i", "0.126", 2, 16), ("r6g", "0.1008", 2, 16),
    ("r7g", "0.1071", 2, 16), ("t3", "0.0832", 2, 8), ("t3a", "0.0752", 2, 8), ("i3", "0.156", 2, 15),
)
SIZES = (  # (size, normalization factor, share of instances)
    ("medium", 2, 0.10), ("large", 4, 0.35), ("xlarge", 8, 0.25), ("2xlarge", 16, 0.15),
    ("4xlarge", 32, 0.10), ("8xlarge", 64, 0.05),
)
WINDOWS_FAMILIES = (0, 6)  # m5, c5
WINDOWS_SIZES = (1, 2)  # large, xlarge
WINDOWS_PREMIUM = Decimal("0.092")  # $/h per .large-equivalent (m5.large Windows $0.188)
SP_RATE, RI_RATE, SPOT_RATE = 72, 62, 35  # percent of the on-demand rate

# kind of row: (name, share of rows)
KINDS = (
    ("ec2_on_demand", 0.44), ("ec2_savings_plan", 0.16), ("ec2_reserved", 0.12), ("ec2_spot", 0.06),
    ("ec2_windows", 0.03), ("sp_unused", 0.005), ("sp_fee", 0.005), ("s3", 0.07),
    ("data_transfer", 0.05), ("azure_vm", 0.06),
)
K = {name: i for i, (name, _) in enumerate(KINDS)}
POOLED = (K["ec2_on_demand"], K["ec2_savings_plan"], K["ec2_reserved"], K["ec2_windows"])
"""EC2 kinds that use a pool (Spot does not); daily Azure VM rows use one too."""

PAYERS = (("100000000001", "ExampleCorp Main Payer"), ("100000000002", "ExampleCorp Secondary Payer"))
SUB_ACCOUNTS = 20  # linked accounts 2000000000NN, NN = 10..29; account n belongs to payer n % 2
AZURE_ACCOUNT = ("8611537", "ExampleCorp EA")
AZURE_METERS = (  # (VM size, meter, $/h, series, cores, GiB)
    ("Standard_D2s_v3", "D2s v3", "0.096", "Dsv3", 2, 8), ("Standard_D4s_v5", "D4s v5", "0.192", "Dsv5", 4, 16),
    ("Standard_E4s_v5", "E4s v5", "0.252", "Esv5", 4, 32), ("Standard_F8s_v2", "F8s v2", "0.338", "Fsv2", 8, 16),
)
ENVIRONMENTS = ("prod", "staging", "dev", "test")
TEAMS = ("payments", "platform", "search", "data", "web", "ml", "identity", "mobile")

COLUMNS = (
    "ProviderName", "PublisherName", "InvoiceIssuerName", "InvoiceId", "BillingAccountId", "BillingAccountName",
    "BillingAccountType", "SubAccountId", "SubAccountName", "SubAccountType", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "BilledCost", "EffectiveCost", "ListCost", "ContractedCost",
    "ListUnitPrice", "ContractedUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "BillingCurrency", "ConsumedQuantity", "ConsumedUnit", "ServiceName",
    "ServiceCategory", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceId", "SkuPriceDetails",
    "ResourceId", "ResourceName", "ResourceType", "RegionId", "RegionName", "AvailabilityZone",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountCategory", "CommitmentDiscountType",
    "CommitmentDiscountStatus", "CommitmentDiscountQuantity", "CommitmentDiscountUnit", "CapacityReservationId",
    "CapacityReservationStatus", "Tags",
)
"""FOCUS 1.2 columns in the order AWS's FOCUS 1.2 export writes them."""
