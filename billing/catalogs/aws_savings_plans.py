"""AWS Savings Plans rate file (CSV) -> savings_plan rows of the price book.

A rate file (``savingsPlan/v1.0/aws/AWSComputeSavingsPlan/{version}/{region}/index.csv``; the
region index ``currentSavingsPlanIndexUrl`` lists them) has five preamble lines, then one row per
plan SKU and covered usage: ``DiscountedRate`` is the commitment consumed by one instance-hour of
``DiscountedInstanceType`` under ``DiscountedOperation`` (the platform) in
``DiscountedRegionCode``. One offering per plan: Compute SPs are ``aws-sp-compute-{1y|3y}-{no|
partial|all}`` over every pool they list; EC2 Instance SPs are bound to a family and region,
``aws-sp-ec2-{family}-{region}-…``. The rate per pool unit is DiscountedRate / NF (see
``aws_common``; the smallest size's rate when sizes disagree, with a note). ``upfront`` per 1 $/h is
0, half the term's hours (AWS partial upfront plans prepay half) or the term's hours. Only EC2
instance usage is kept: Fargate and Lambda rates, dedicated hosts and capacity reservations are
counted in the notes. The file has no on-demand prices: merge it with an offer-file import.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from billing.catalogs import aws_common as aws
from billing.catalogs.aws_offer import INSTANCE_USAGE
from billing.catalogs.book import (
    SHORT_PAYMENT,
    Rate,
    collapse,
    make_frame,
    offering_row,
    savings_plan_upfront,
    term_label,
)
from billing.catalogs.tables import find_header, read_table
from models.errors import InputError

REQUIRED = (
    "SKU", "Unit", "DiscountedRate", "DiscountedServiceCode", "DiscountedUsageType", "DiscountedOperation",
    "PurchaseOption", "LeaseContractLength", "Product Family", "DiscountedRegionCode", "DiscountedInstanceType",
)
OPTIONAL = ("LeaseContractLengthUnit", "Instance Family", "Currency", "Description")
PLAN_KINDS = {"ComputeSavingsPlans": "compute", "EC2InstanceSavingsPlans": "ec2"}
PRICING_HOST = "https://pricing.us-east-1.amazonaws.com"


def rate_file_urls(index_path: str | Path) -> dict[str, str]:
    """Region -> CSV rate file URL, from a Savings Plans region index (``currentSavingsPlanIndexUrl``)."""
    try:
        regions = json.loads(Path(index_path).read_text(encoding="utf-8"))["regions"]
        return {r["regionCode"]: PRICING_HOST + r["versionUrl"].removesuffix(".json") + ".csv" for r in regions}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(str(index_path), f"not a Savings Plans region index ({exc})") from None


def import_aws_savings_plans(path: str | Path) -> pd.DataFrame:
    """Savings plan rows of every EC2 plan in a Savings Plans rate file."""
    header, preamble = find_header(Path(path), "SKU")
    skipped: Counter[str] = Counter()

    def keep(chunk: pd.DataFrame) -> np.ndarray:
        ec2 = chunk["DiscountedServiceCode"] == "AmazonEC2"
        instance = chunk["DiscountedUsageType"].str.contains(INSTANCE_USAGE)
        skipped.update(f"{s} rates" for s in chunk.loc[~ec2, "DiscountedServiceCode"])
        kinds = chunk.loc[ec2 & ~instance, "DiscountedUsageType"].str.replace(r"^[A-Z0-9]+-", "", regex=True)
        skipped.update(f"{k.split(':')[0]} rates" for k in kinds)
        return np.asarray(ec2 & instance & (chunk["Unit"] == "Hrs"), dtype=bool)

    table = read_table(path, REQUIRED, OPTIONAL, header=header, keep=keep)
    f = table.frame
    label = f"AWS Savings Plans rate file {preamble.get('OfferCode', '')} published {preamble.get('Publication Date', '?')}"
    notes = [f"skipped {n} {what}" for what, n in sorted(skipped.items())]
    rates = table.numbers("DiscountedRate")
    largest = aws.family_largest(set(f["DiscountedInstanceType"]))
    by_pool: dict[tuple[str, str], list[Rate]] = defaultdict(list)
    plans: dict[str, tuple[int, str]] = {}
    unknown: Counter[str] = Counter()
    for i, row in enumerate(f.itertuples(index=False, name=None)):
        r = dict(zip(f.columns, row))
        kind = PLAN_KINDS.get(r["Product Family"])
        if kind is None:
            unknown[f"plan type '{r['Product Family']}'"] += 1
            continue
        months = aws.lease_months(r["LeaseContractLength"])
        if months is None or r.get("LeaseContractLengthUnit", "year").lower() not in ("year", "years", ""):
            raise table.error(i, "LeaseContractLength", f"LeaseContractLength '{r['LeaseContractLength']}' "
                              f"{r.get('LeaseContractLengthUnit', '')} is not 1 or 3 years")
        payment = aws.PAYMENT.get(r["PurchaseOption"].lower())
        if payment is None:
            raise table.error(i, "PurchaseOption", f"PurchaseOption '{r['PurchaseOption']}' is not No/Partial/All Upfront")
        platform = aws.OPERATIONS.get(r["DiscountedOperation"])
        if platform is None:
            unknown[f"operation '{r['DiscountedOperation']}'"] += 1
            continue
        if rates[i] <= 0:
            unknown["zero rate"] += 1
            continue
        os_name, software, byol = platform
        instance_type, region = r["DiscountedInstanceType"], r["DiscountedRegionCode"]
        if not instance_type or not region:
            column = "DiscountedInstanceType" if not instance_type else "DiscountedRegionCode"
            raise table.error(i, column, f"{column} is empty")
        dedicated = "DedicatedUsage" in r["DiscountedUsageType"]
        pool, flexible = aws.pool_for(region, instance_type, os_name, software, byol, dedicated)
        factor = 1.0
        if flexible:
            nf = aws.normalization_factor(instance_type, largest)
            if nf is None:
                unknown[f"normalization factor of {instance_type}"] += 1
                continue
            factor = nf
        family = r.get("Instance Family") or aws.split_type(instance_type)[0]
        scope = "compute" if kind == "compute" else f"ec2-{family}-{region}"
        offering = f"aws-sp-{scope}-{term_label(months)}-{SHORT_PAYMENT[payment]}"
        plans[offering] = (months, payment)
        source = f"{label}, SKU {r['SKU']} ({instance_type} {r['DiscountedOperation']})"
        by_pool[(offering, pool)].append(Rate(rates[i], 0.0, factor, instance_type, source))
    notes += [f"skipped {n} rows with unknown {what}" for what, n in sorted(unknown.items())]

    rows = []
    for (offering, pool), candidates in by_pool.items():
        months, payment = plans[offering]
        best = collapse(pool, offering, candidates, notes)
        rows.append(offering_row(offering, "savings_plan", months, payment, pool, best.hourly / best.factor,
                                 savings_plan_upfront(payment, months), best.source))
    return make_frame(rows, f"{label} ({Path(path).name})", notes)
