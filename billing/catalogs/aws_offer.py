"""AWS Price List EC2 offer file (CSV) -> on-demand and Reserved Instance rows of the price book.

The offer file (``AmazonEC2/current/{region}/index.csv``, or the global one) has five preamble
lines, then one row per SKU and term: ``TermType=OnDemand`` rows carry the hourly price,
``TermType=Reserved`` rows come in pairs per ``SKU.OfferTermCode`` — an hourly fee (``Unit=Hrs``)
and an ``Upfront Fee`` (``Unit=Quantity``; absent for No Upfront). Only instance usage actually
running (``CapacityStatus=Used``, shared or dedicated tenancy) is kept; see ``aws_common`` for
the pool rules. Per unit: hourly = hourly fee / NF, upfront = upfront fee / NF (NF = 1 for
instance-type pools); all sizes of a size-flexible pool should agree, and when they do not the
smallest size's figures are used and the spread is noted. A reservation's ``increment`` is the
NF of the smallest size sold, the least a buyer can add to a size-flexible pool.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from billing.catalogs import aws_common as aws
from billing.catalogs.book import (
    Rate,
    collapse,
    make_frame,
    offering_row,
    on_demand_row,
)
from billing.catalogs.tables import find_header, read_table
from models.pricing import HOURS_PER_MONTH

REQUIRED = (
    "SKU", "OfferTermCode", "TermType", "PriceDescription", "Unit", "PricePerUnit", "LeaseContractLength",
    "PurchaseOption", "OfferingClass", "Product Family", "Region Code", "Instance Type", "Tenancy",
    "Operating System", "License Model", "Pre Installed S/W", "CapacityStatus", "usageType",
)
OPTIONAL = ("Currency", "Normalization Size Factor", "operation")
INSTANCE_USAGE = re.compile(r"(?:^|-)(?:BoxUsage|DedicatedUsage):")


def _keep(chunk: pd.DataFrame) -> np.ndarray:
    return np.asarray(
        chunk["TermType"].isin(["OnDemand", "Reserved"])
        & chunk["Product Family"].str.startswith("Compute Instance")
        & (chunk["CapacityStatus"] == "Used")
        & chunk["Tenancy"].isin(["Shared", "Dedicated"])
        & chunk["Unit"].isin(["Hrs", "Quantity"])
        & chunk["usageType"].str.contains(INSTANCE_USAGE),
        dtype=bool,
    )


def import_aws_offer(path: str | Path) -> pd.DataFrame:
    """On-demand and RI rows (1y/3y, every payment option, standard and convertible) of an EC2 offer file."""
    header, preamble = find_header(Path(path), "SKU")
    table = read_table(path, REQUIRED, OPTIONAL, header=header, keep=_keep)
    f = table.frame
    label = f"AWS Price List {preamble.get('OfferCode', 'AmazonEC2')} published {preamble.get('Publication Date', '?')}"
    notes: list[str] = []
    prices = table.numbers("PricePerUnit")
    listed = pd.to_numeric(f.get("Normalization Size Factor", pd.Series("", index=f.index)), errors="coerce")
    for column in ("Instance Type", "Region Code"):
        empty = (f[column] == "").to_numpy()
        if empty.any():
            raise table.error(int(np.argmax(empty)), column, f"{column} is empty")
    largest = aws.family_largest(set(f["Instance Type"]))

    od: dict[str, list[Rate]] = defaultdict(list)
    fees: dict[tuple[str, str], dict] = {}
    unknown_nf: set[str] = set()
    flexible_pools: set[str] = set()
    for i, row in enumerate(f.itertuples(index=False, name=None)):
        r = dict(zip(f.columns, row))
        software = aws.SOFTWARE.get(r["Pre Installed S/W"].lower(), aws.slug(r["Pre Installed S/W"]))
        byol = r["License Model"].lower().startswith("bring your own")
        pool, flexible = aws.pool_for(r["Region Code"], r["Instance Type"], r["Operating System"], software, byol,
                                      r["Tenancy"] == "Dedicated")
        factor = 1.0
        if flexible:
            given = None if math.isnan(listed.iloc[i]) else float(listed.iloc[i])
            nf = aws.normalization_factor(r["Instance Type"], largest, given)
            if nf is None:
                unknown_nf.add(r["Instance Type"])
                continue
            if given is not None and abs(given - nf) > 1e-9:
                notes.append(f"{r['Instance Type']}: the price list gives normalization factor {given:g}, the size "
                             f"name gives {nf:g}; used {nf:g}")
            factor = nf
            flexible_pools.add(pool)
        source = f"{label}, SKU {r['SKU']}.{r['OfferTermCode']} ({r['Instance Type']})"
        if r["TermType"] == "OnDemand":
            if r["Unit"] == "Hrs":
                od[pool].append(Rate(prices[i], 0.0, factor, r["Instance Type"], source))
            continue
        entry = fees.setdefault((r["SKU"], r["OfferTermCode"]), {"pool": pool, "factor": factor, "source": source,
                                                                  "type": r["Instance Type"], "first": i})
        entry["upfront" if r["Unit"] == "Quantity" else "hourly"] = prices[i]
        entry["lease"], entry["option"], entry["class"] = r["LeaseContractLength"], r["PurchaseOption"], r["OfferingClass"]
    if unknown_nf:
        notes.append(f"no normalization factor known for {', '.join(sorted(unknown_nf))} (metal with no other size "
                     "of its family in the file and none listed): their Linux rows are skipped")

    options: dict[tuple[str, int, str, str], list[Rate]] = defaultdict(list)
    for entry in fees.values():
        i = entry["first"]
        months = aws.lease_months(entry["lease"])
        if months is None:
            raise table.error(i, "LeaseContractLength", f"LeaseContractLength '{entry['lease']}' is not 1yr or 3yr")
        payment = aws.PAYMENT.get(entry["option"].lower())
        if payment is None:
            raise table.error(i, "PurchaseOption", f"PurchaseOption '{entry['option']}' is not No/Partial/All Upfront")
        offering_class = entry["class"].lower()
        if offering_class not in ("standard", "convertible"):
            raise table.error(i, "OfferingClass", f"OfferingClass '{entry['class']}' is not standard or convertible")
        if "hourly" not in entry or (payment != "no_upfront" and "upfront" not in entry):
            missing = "hourly fee" if "hourly" not in entry else "Upfront Fee"
            notes.append(f"{entry['option']} reservation {entry['source']} has no {missing} row: skipped")
            continue
        rate = Rate(entry["hourly"], entry.get("upfront", 0.0), entry["factor"], entry["type"], entry["source"])
        options[(entry["pool"], months, payment, offering_class)].append(rate)

    rows = []
    for pool, rates in od.items():
        best = collapse(pool, "on-demand", rates, notes)
        rows.append(on_demand_row(pool, best.hourly / best.factor, best.source))
    for (pool, months, payment, offering_class), rates in options.items():
        best = collapse(pool, f"{months // 12}y {offering_class} {payment}", rates, notes, months * HOURS_PER_MONTH)
        increment = best.factor if pool in flexible_pools else math.nan
        rows.append(offering_row(
            aws.reservation_id(pool, months, offering_class, payment), "reservation", months, payment, pool,
            best.hourly / best.factor, best.upfront / best.factor, best.source, increment,
        ))
    return make_frame(rows, f"{label} ({Path(path).name})", notes)
