"""Azure cost details exports (EA or MCA; amortized or actual) -> what they reveal of VM prices.

Pools are ``azure:vm:{region}:{meter}`` in instance-hours (region and meter slugged), as
``billing.pool_rules`` names ingested usage: the export names the meter, not the
instance-size-flexibility group, so sizes stay apart (a reservation bought for DS1_v2 that covers
DS2_v2 shows here as a reservation of the DS2_v2 meter at the DS2_v2 rate).

What the rows give, per VM meter and region (prices per hour; ``UnitOfMeasure`` '10 Hours' scales):

- on demand: ``UnitPrice`` of any usage row (the customer's price, EA discounts included;
  ``PayGPrice`` only when UnitPrice is 0);
- reservation: ``EffectivePrice`` of reservation-covered usage in an amortized export (the
  amortized rate of the reservation per hour of this meter), and from an actual export a
  purchase row's cost per unit (``Frequency`` Recurring = monthly payment, / 730 per hour;
  OneTime = upfront). Azure charges the same total for monthly and upfront payment, so each
  reservation is offered both ways (``no_upfront`` and ``all_upfront``);
- savings plan: ``EffectivePrice`` of savings-plan-covered usage (commitment consumed per hour).

What cannot be derived: rates of meters the export never used; the reservation rate of other
sizes of a flexibility group (ratios are not in the export); whether a purchase's monthly amount
covers one instance (it is divided by ``Quantity``); Windows license parts (reservations do not
cover them, so commitment rows of Windows meters are skipped). A reservation recommendations file
gives lookback costs with and without reservations, not unit prices: ``flexibility_groups`` reads
its group and ratio per SKU, and ``import_azure_export`` refuses it with that explanation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from billing.catalogs.book import (
    Rate,
    collapse,
    make_frame,
    offering_row,
    on_demand_row,
    slug,
    term_label,
)
from billing.catalogs.tables import first_lines, read_table
from models.csv_cells import existing_file
from models.errors import InputError
from models.pricing import HOURS_PER_MONTH

REQUIRED = ("MeterCategory", "MeterName", "Quantity", "UnitPrice", "EffectivePrice", "PricingModel",
            "ChargeType", "UnitOfMeasure", "ResourceLocation")
OPTIONAL = ("PayGPrice", "Term", "Frequency", "ProductOrderName", "MeterSubCategory", "Date",
            "CostInBillingCurrency", "Cost")
RECOMMENDATION_COLUMNS = ("SKU", "Location", "InstanceFlexibilityGroup", "InstanceFlexibilityRatio", "NormalizedSize")
HOURS = re.compile(r"^(\d+) hours?$", re.IGNORECASE)


def _columns(path: Path) -> dict[str, str]:
    """Canonical column name -> name as the file writes it (EA uses PascalCase, MCA camelCase)."""
    header = first_lines(path, 1)
    written = {c.strip().lower(): c.strip() for c in (header[0] if header else [])}
    return {c: written[c.lower()] for c in (*REQUIRED, *OPTIONAL, *RECOMMENDATION_COLUMNS) if c.lower() in written}


def flexibility_groups(path: str | Path) -> pd.DataFrame:
    """SKU, region, flexibility group, ratio and normalized size from a reservation recommendations file."""
    file = existing_file(path)
    names = _columns(file)
    table = read_table(file, tuple(names.get(c, c) for c in RECOMMENDATION_COLUMNS))
    frame = table.frame.rename(columns={v: k for k, v in names.items()})
    ratio = table.numbers(names["InstanceFlexibilityRatio"])
    out = pd.DataFrame({"sku": frame["SKU"], "region": frame["Location"].map(slug),
                        "group": frame["InstanceFlexibilityGroup"], "ratio": ratio,
                        "normalized_size": frame["NormalizedSize"]})
    return out.drop_duplicates().reset_index(drop=True)


def import_azure_export(path: str | Path) -> pd.DataFrame:
    """On-demand, reservation and savings plan rows for the VM meters an Azure cost export shows."""
    file = existing_file(path)
    names = _columns(file)
    if "InstanceFlexibilityGroup" in names and "MeterCategory" not in names:
        raise InputError(str(path), "a reservation recommendations file holds lookback costs with and without "
                         "reservations, not unit prices, so no price book rows can be derived from it; "
                         "billing.catalogs.azure.flexibility_groups reads its size-flexibility groups")
    for column in REQUIRED:
        if column not in names:
            raise InputError(str(path), f"the required column '{column}' is missing", row=1, column=column)
    category = names["MeterCategory"]
    table = read_table(file, tuple(names[c] for c in REQUIRED), tuple(names[c] for c in OPTIONAL if c in names),
                       keep=lambda chunk: (chunk[category].str.strip() == "Virtual Machines").to_numpy())
    table.frame = f = table.frame.rename(columns={v: k for k, v in names.items()})
    for column in OPTIONAL:
        if column not in f:
            f[column] = ""
    scale = f["UnitOfMeasure"].str.extract(HOURS, expand=False).astype(float).to_numpy()
    hourly = ~np.isnan(scale) & (f["PricingModel"] != "Spot").to_numpy()
    unit_price = table.numbers("UnitPrice", hourly)
    paygo = pd.to_numeric(f["PayGPrice"], errors="coerce").fillna(0).to_numpy()
    effective = table.numbers("EffectivePrice", hourly)
    quantity = table.numbers("Quantity", hourly)
    cost_column = "CostInBillingCurrency" if (f["CostInBillingCurrency"] != "").any() else "Cost"
    purchase = (f["ChargeType"] == "Purchase").to_numpy() & hourly
    cost = table.numbers(cost_column, purchase) if purchase.any() else np.zeros(len(f))
    label = f"Azure cost export {Path(path).name}"
    notes: list[str] = []
    od: dict[str, list[Rate]] = defaultdict(list)
    commit: dict[tuple[str, str, int], list[Rate]] = defaultdict(list)
    for i in np.flatnonzero(hourly):
        r = f.iloc[i]
        region, meter = slug(r["ResourceLocation"]), slug(r["MeterName"])
        if not region or not meter:
            raise table.error(int(i), "ResourceLocation" if not region else "MeterName", "the cell is empty")
        pool = f"azure:vm:{region}:{meter}"
        source = f"{label}, row {table.lines[i]} ({r['MeterName']}, {r['Date'] or 'no date'})"
        per_hour = 1.0 / scale[i]
        if r["ChargeType"] == "Usage":
            price = unit_price[i] if unit_price[i] > 0 else paygo[i]
            if price > 0:
                od[pool].append(Rate(price * per_hour, 0.0, 1.0, f"row {table.lines[i]}", source))
        model = r["PricingModel"]
        if model not in ("Reservation", "SavingsPlan"):
            continue
        if "windows" in str(r["MeterSubCategory"]).lower():
            notes.append(f"{source}: {model} on a Windows meter skipped (the license part is not covered)")
            continue
        months = pd.to_numeric(r["Term"], errors="coerce")
        if not (months > 0 and months % 12 == 0):
            raise table.error(int(i), "Term", f"Term '{r['Term']}' is not a number of whole years in months")
        kind = "reservation" if model == "Reservation" else "savings_plan"
        if r["ChargeType"] == "Usage" and effective[i] > 0:
            commit[(kind, pool, int(months))].append(Rate(effective[i] * per_hour, 0.0, 1.0, f"row {table.lines[i]}", source))
        elif r["ChargeType"] == "Purchase" and model == "Reservation" and quantity[i] > 0:
            each = cost[i] / quantity[i]
            monthly = str(r["Frequency"]).lower() == "recurring"
            rate = each / HOURS_PER_MONTH if monthly else each / (months * HOURS_PER_MONTH)
            commit[(kind, pool, int(months))].append(
                Rate(rate, 0.0, 1.0, f"row {table.lines[i]}", f"{source}, {r['ProductOrderName']}, {r['Frequency']} purchase"))

    rows = []
    for pool, rates in od.items():
        best = collapse(pool, "on-demand", rates, notes, by="row")
        rows.append(on_demand_row(pool, best.hourly, best.source))
    for (kind, pool, months), rates in commit.items():
        best = collapse(pool, f"{kind} {term_label(months)}", rates, notes, by="row")
        meter, region = pool.split(":")[3], pool.split(":")[2]
        base = f"azure-ri-{meter}-{region}" if kind == "reservation" else "azure-sp-compute"
        term_hours = months * HOURS_PER_MONTH
        for payment, short in (("no_upfront", "no"), ("all_upfront", "all")):
            upfront = 0.0 if payment == "no_upfront" else (best.hourly * term_hours if kind == "reservation" else term_hours)
            hourly = 0.0 if (kind == "reservation" and payment == "all_upfront") else best.hourly
            rows.append(offering_row(f"{base}-{term_label(months)}-{short}", kind, months, payment, pool, hourly,
                                     upfront, best.source))
    return make_frame(rows, label, notes)
