"""Price catalog importers on the real public samples: figures recomputed here from the raw files
(csv module, a line scan of the YAML) by the formulas of DESIGN.md §4, round trips through the
price book reader, the shipped book loads and plans, and bad input names its file, row and column."""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from billing.catalogs import (
    KINDS,
    detect_kind,
    flexibility_groups,
    import_catalog,
    import_catalogs,
    rate_file_urls,
    read_source_label,
    write_price_book,
)
from billing.catalogs.aws_common import normalization_factor, pool_for, size_factor
from billing.catalogs.reference_aws import BOOK, build_reference_book
from models import InputError, Purchase, UsageMatrix
from models.readers import read_price_book

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.exists():  # a clean clone sits beside shared/ too; CI runs from /tmp clones
    DATA = Path("/work/shared/data")
EC2 = DATA / "ec2-priceit" / "examples"
OFFER = EC2 / "3-global-pricing-file-sample.csv"
SP_INDEX = EC2 / "4-currentSavingsPlanIndexUrl-list.json"
SP_RATES = EC2 / "5-ap-east-2-savingsplan-pricing.csv"
GCP = DATA / "gcp-pricing" / "pricing.yml"
FINOPS = DATA / "microsoft-finops-toolkit" / "src"
AZURE_AMORTIZED = FINOPS / "powershell" / "Tests" / "assets" / "EA_AmortizedCost_Small.csv"
AZURE_ACTUAL = FINOPS / "powershell" / "Tests" / "assets" / "EA_ActualCost_Small.csv"
AZURE_RECOMMENDATIONS = FINOPS / "open-data" / "dataset-examples" / "EA-Reservations-Recommendations.csv"
HOURS_PER_MONTH = 730


def raw_rows(path: Path, skip: int = 0) -> list[dict[str, str]]:
    """Rows of a provider CSV read with the csv module, after ``skip`` preamble lines."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        lines = stream.read().splitlines()[skip:]
    return list(csv.DictReader(lines))


def row_of(frame: pd.DataFrame, offering: str, pool: str) -> pd.Series:
    hit = frame[(frame["offering"] == offering) & (frame["pool"] == pool)]
    assert len(hit) == 1, (offering, pool, frame[["offering", "pool"]].to_string())
    return hit.iloc[0]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("path, kind", [
    (OFFER, "aws-offer"), (SP_RATES, "aws-savings-plans"), (GCP, "gcp-pricing-yml"),
    (AZURE_AMORTIZED, "azure-export"), (AZURE_ACTUAL, "azure-export"), (AZURE_RECOMMENDATIONS, "azure-export"),
])
def test_kind_is_told_from_content(path: Path, kind: str) -> None:
    assert detect_kind(path) == kind
    assert kind in KINDS


def test_savings_plans_region_index_says_what_to_download() -> None:
    with pytest.raises(InputError, match="region index"):
        import_catalog(SP_INDEX)
    urls = rate_file_urls(SP_INDEX)
    assert urls["ap-east-2"] == "https://pricing.us-east-1.amazonaws.com/savingsPlan/v1.0/aws/AWSComputeSavingsPlan/" \
        "20250911184447/ap-east-2/index.csv"


# --------------------------------------------------------------------------- AWS offer file


@pytest.fixture(scope="module")
def offer() -> pd.DataFrame:
    return import_catalog(OFFER)


def test_offer_reservation_recomputed_from_raw_rows(offer: pd.DataFrame) -> None:
    rows = raw_rows(OFFER, skip=5)
    terms: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        if r["TermType"] == "Reserved":
            terms.setdefault((r["SKU"], r["OfferTermCode"]), {})["fee" if r["Unit"] == "Quantity" else "hrs"] = r["PricePerUnit"]
            terms[(r["SKU"], r["OfferTermCode"])]["r"] = r  # type: ignore[assignment]
    checked = 0
    for parts in terms.values():
        r = parts["r"]  # type: ignore[assignment]
        if r["Instance Type"] != "c6i.large":
            continue
        # Windows + SQL Web on dedicated tenancy: not size-flexible, so NF = 1 and the pool is the instance type
        pool = "aws:ec2:ap-northeast-1:c6i.large:windows-sql-web-dedicated"
        payment = {"No Upfront": "no", "Partial Upfront": "partial", "All Upfront": "all"}[r["PurchaseOption"]]
        offering = f"aws-ri-c6i.large-ap-northeast-1-windows-sql-web-dedicated-{r['LeaseContractLength'][0]}y-" \
                   f"{r['OfferingClass']}-{payment}"
        got = row_of(offer, offering, pool)
        assert close(got["hourly_rate"], float(parts["hrs"]) / 1)
        assert close(got["upfront"], float(parts.get("fee", "0")) / 1)
        assert got["term_months"] == 12 * int(r["LeaseContractLength"][0])
        checked += 1
    assert checked == 12  # 1y/3y × 3 payments × standard/convertible
    od = row_of(offer, "on_demand", "aws:ec2:ap-northeast-1:c6i.large:windows-sql-web-dedicated")
    assert od["hourly_rate"] == 0.2773
    partial = row_of(offer, "aws-ri-c6i.large-ap-northeast-1-windows-sql-web-dedicated-1y-standard-partial",
                     "aws:ec2:ap-northeast-1:c6i.large:windows-sql-web-dedicated")
    assert partial["hourly_rate"] + partial["upfront"] / 8760 < od["hourly_rate"]


def test_offer_skips_what_it_cannot_price(offer: pd.DataFrame) -> None:
    # capacity reservations and dedicated hosts have no pool; an excerpt's partial RI without its fee row is noted
    assert not offer["pool"].str.contains("i4i|g5.48xlarge|c6g.4xlarge|m7i.16xlarge").any()
    assert any("has no Upfront Fee row" in n and "m6id.2xlarge" in n for n in offer.attrs["notes"])
    assert offer.attrs["source"].startswith("AWS Price List AmazonEC2 published 2025-09-12")


def test_offer_round_trip_through_the_reader(offer: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="without an on-demand price"):
        write_price_book(offer, tmp_path / "strict.csv")
    path = write_price_book(offer, tmp_path / "book.csv", allow_incomplete=True)
    book = read_price_book(path)
    priced = offer[offer["pool"].isin(book.on_demand)]
    for _, r in priced[priced["kind"] == "reservation"].iterrows():
        got = book.offerings[r["offering"]]
        assert got.rates == {r["pool"]: r["hourly_rate"]} and got.upfront == r["upfront"]
        assert got.term_months == r["term_months"] and got.payment.value == r["payment"]
    assert read_source_label(path)["source"] == offer.attrs["source"]


def test_size_flexible_rows_divide_by_normalization_factor(tmp_path: Path) -> None:
    """Offer-file rows (the sample's own header and preamble) for Linux m5 in three sizes and metal."""
    lines = OFFER.read_text(encoding="utf-8").splitlines()
    header = next(csv.reader([lines[5]]))
    template = dict(zip(header, next(csv.reader([lines[6]]))))

    def row(instance_type: str, term: str, unit: str, price: str, **more: str) -> str:
        r = {**template, "SKU": f"SKU-{instance_type}", "OfferTermCode": term, "TermType": more.get("tt", "Reserved"),
             "Unit": unit, "PricePerUnit": price, "Instance Type": instance_type, "Tenancy": "Shared",
             "Operating System": "Linux", "Pre Installed S/W": "NA", "Region Code": "us-east-1",
             "usageType": f"BoxUsage:{instance_type}", "operation": "RunInstances", "LeaseContractLength": "1yr",
             "PurchaseOption": "Partial Upfront", "OfferingClass": "standard", "PriceDescription": more.get("d", "")}
        return ",".join(f'"{r[c]}"' for c in header)

    body = [row("m5.large", "OD", "Hrs", "0.096", tt="OnDemand"), row("m5.2xlarge", "OD", "Hrs", "0.385", tt="OnDemand"),
            row("m5.24xlarge", "OD", "Hrs", "4.608", tt="OnDemand"), row("m5.metal", "OD", "Hrs", "4.608", tt="OnDemand"),
            row("m5.large", "RI", "Hrs", "0.029"), row("m5.large", "RI", "Quantity", "251", d="Upfront Fee"),
            row("m5.xlarge", "RI", "Hrs", "0.058"), row("m5.xlarge", "RI", "Quantity", "502", d="Upfront Fee")]
    path = tmp_path / "offer.csv"
    path.write_text("\n".join(lines[:6] + body) + "\n", encoding="utf-8")
    frame = import_catalog(path)
    pool = "aws:ec2:us-east-1:m5:linux"
    assert row_of(frame, "on_demand", pool)["hourly_rate"] == 0.096 / 4  # the smallest size's rate
    assert any("m5:linux on-demand" in n and "m5.2xlarge" in n for n in frame.attrs["notes"])  # 0.385/16 differs
    ri = row_of(frame, "aws-ri-m5-us-east-1-linux-1y-standard-partial", pool)
    assert close(ri["hourly_rate"], 0.029 / 4) and close(ri["upfront"], 251 / 4) and ri["increment"] == 4
    assert normalization_factor("m5.metal", {"m5": 192.0}) == 192.0  # metal = the largest size of the family


def test_normalization_factors_and_pool_rules() -> None:
    assert [size_factor(s) for s in ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge", "12xlarge",
                                     "metal-24xl")] == [0.25, 0.5, 1, 2, 4, 8, 16, 96, 192]
    assert size_factor("metal") is None and size_factor("bogus") is None
    assert pool_for("us-east-1", "m5.large", "Linux", "", False, False) == ("aws:ec2:us-east-1:m5:linux", True)
    assert pool_for("us-east-1", "m5.large", "RHEL", "", False, False) == ("aws:ec2:us-east-1:m5.large:rhel", False)
    assert pool_for("us-east-1", "g5.xlarge", "Linux", "", False, False)[1] is False  # excluded from size flexibility
    assert pool_for("eu-west-1", "c5.large", "Linux", "", False, True)[0] == "aws:ec2:eu-west-1:c5.large:linux-dedicated"


# --------------------------------------------------------------------------- AWS Savings Plans


def test_savings_plan_rates_recomputed_from_raw_rows() -> None:
    frame = import_catalog(SP_RATES)
    rows = raw_rows(SP_RATES, skip=5)
    linux = {r["DiscountedInstanceType"]: float(r["DiscountedRate"]) for r in rows
             if r["DiscountedUsageType"] == "APE2-BoxUsage:" + r["DiscountedInstanceType"]
             and r["DiscountedOperation"] == "RunInstances"}
    assert set(linux) == {"r7g.2xlarge", "r7g.12xlarge"}
    offering = "aws-sp-ec2-r7g-ap-east-2-3y-partial"
    got = row_of(frame, offering, "aws:ec2:ap-east-2:r7g:linux")
    assert close(got["hourly_rate"], linux["r7g.2xlarge"] / 16)  # smallest size's rate per normalized unit
    assert got["upfront"] == 0.5 * 36 * HOURS_PER_MONTH and got["payment"] == "partial_upfront"
    assert any("r7g:linux" in n and "spread" in n for n in frame.attrs["notes"])
    rhel = [float(r["DiscountedRate"]) for r in rows if r["DiscountedUsageType"] == "APE2-BoxUsage:r7g.12xlarge"
            and r["DiscountedOperation"] == "RunInstances:0010"]
    assert row_of(frame, offering, "aws:ec2:ap-east-2:r7g.12xlarge:rhel")["hourly_rate"] == rhel[0]
    unused = sum(1 for r in rows if "Unused" in r["DiscountedUsageType"])
    assert any(f"skipped {unused}" in n or "Unused" in n for n in frame.attrs["notes"])
    assert not frame["pool"].str.contains("unused", case=False).any()
    assert (frame["kind"] == "savings_plan").all() and (frame["hourly_rate"] > 0).all()


# --------------------------------------------------------------------------- GCP


def yaml_value(text: str, machine: str, *path: str) -> float:
    """A value under ``compute.instance.<machine>`` found by indentation alone (no YAML library)."""
    start = text.index(f"\n    {machine}:\n") + len(machine) + 7
    block = re.match(r"(?:      .*\n)+", text[start:start + 20000]).group(0)
    for depth, key in enumerate(path):
        indent = " " * (6 + 2 * depth)
        match = re.search(rf"^{indent}{re.escape(key)}:(.*)\n((?:{indent}  .*\n)*)", block, re.MULTILINE)
        value, block = match.group(1).strip(), match.group(2)
    return float(value)


@pytest.fixture(scope="module")
def gcp() -> pd.DataFrame:
    return import_catalog(GCP)


@pytest.fixture(scope="module")
def gcp_text() -> str:
    return GCP.read_text(encoding="utf-8")


@pytest.mark.parametrize("machine, region", [
    ("n2-standard-2", "us-central1"), ("n2-highmem-8", "us-central1"), ("e2-standard-4", "europe-west1"),
    ("c3-highcpu-22", "asia-east1"), ("n2d-highcpu-16", "us-east1"),
])
def test_gcp_cud_hourly_is_monthly_over_730(gcp: pd.DataFrame, gcp_text: str, machine: str, region: str) -> None:
    text = gcp_text
    cpu, ram = yaml_value(text, machine, "cpu"), yaml_value(text, machine, "ram")
    series = machine.split("-")[0]
    rate = {(r["offering"], r["pool"]): r["hourly_rate"] for _, r in gcp[gcp["pool"].str.contains(f":{region}:{series}:")].iterrows()}
    vcpu, mem = f"gcp:compute:{region}:{series}:vcpu", f"gcp:compute:{region}:{series}:memory"
    hour = yaml_value(text, machine, "cost", region, "hour")
    assert math.isclose(cpu * rate[("on_demand", vcpu)] + ram * rate[("on_demand", mem)], hour, rel_tol=1e-8)
    for term in ("1y", "3y"):
        monthly = yaml_value(text, machine, "cost", region, f"month_{term}")
        cud = cpu * rate[(f"gcp-cud-{series}-{region}-vcpu-{term}", vcpu)] \
            + ram * rate[(f"gcp-cud-{series}-{region}-memory-{term}", mem)]
        assert math.isclose(cud, monthly / HOURS_PER_MONTH, rel_tol=1e-8)
        assert cud < hour


def test_gcp_says_what_it_cannot_separate(gcp: pd.DataFrame, tmp_path: Path) -> None:
    notes = " ".join(gcp.attrs["notes"])
    assert "c2 hour: not derivable" in notes and "same cpu:ram ratio" in notes  # c2 has only standard shapes
    assert "m4 hour: not derivable" in notes and "not cpu × a + ram × b" in notes
    assert not gcp["pool"].str.contains(":c2:").any()
    reservations = gcp[gcp["kind"] == "reservation"]
    assert (reservations["payment"] == "no_upfront").all() and (reservations["upfront"] == 0).all()
    book = read_price_book(write_price_book(gcp, tmp_path / "gcp.csv"))
    assert len(book.offerings) == len(reservations) and len(book.on_demand) == (gcp["kind"] == "on_demand").sum()
    for offering in book.reservations():
        assert offering.hourly_cost_per_unit() < book.on_demand[offering.pool]


# --------------------------------------------------------------------------- Azure


def test_azure_amortized_export_prices(tmp_path: Path) -> None:
    frame = import_catalog(AZURE_AMORTIZED)
    rows = raw_rows(AZURE_AMORTIZED)
    ri = next(r for r in rows if r["PricingModel"] == "Reservation" and r["MeterCategory"] == "Virtual Machines")
    sp = next(r for r in rows if r["PricingModel"] == "SavingsPlan")
    pool = "azure:vm:eastus:d2-v2-ds2-v2"  # as billing.pool_rules names the ingested usage
    assert row_of(frame, "on_demand", pool)["hourly_rate"] == float(ri["UnitPrice"])
    monthly = row_of(frame, "azure-ri-d2-v2-ds2-v2-eastus-1y-no", pool)
    assert monthly["hourly_rate"] == float(ri["EffectivePrice"]) and monthly["term_months"] == int(ri["Term"])
    upfront = row_of(frame, "azure-ri-d2-v2-ds2-v2-eastus-1y-all", pool)
    assert close(upfront["upfront"], float(ri["EffectivePrice"]) * 12 * HOURS_PER_MONTH)
    plan = row_of(frame, "azure-sp-compute-3y-no", "azure:vm:eastus:b2s")
    assert plan["kind"] == "savings_plan" and plan["hourly_rate"] == float(sp["EffectivePrice"])
    book = read_price_book(write_price_book(frame, tmp_path / "azure.csv"))
    assert book.on_demand["azure:vm:eastus:b2s"] == float(sp["UnitPrice"])
    assert book.offerings["azure-ri-d2-v2-ds2-v2-eastus-1y-no"].hourly_cost_per_unit() < book.on_demand[pool]


def test_azure_actual_export_purchase_and_recommendations() -> None:
    frame = import_catalog(AZURE_ACTUAL)
    purchase = next(r for r in raw_rows(AZURE_ACTUAL) if r["ChargeType"] == "Purchase")
    got = row_of(frame, "azure-ri-b1s-uksouth-3y-no", "azure:vm:uksouth:b1s")
    assert close(got["hourly_rate"], float(purchase["Cost"]) / float(purchase["Quantity"]) / HOURS_PER_MONTH)
    with pytest.raises(InputError, match="not unit prices"):
        import_catalog(AZURE_RECOMMENDATIONS)
    groups = flexibility_groups(AZURE_RECOMMENDATIONS)
    b2s = groups[(groups["sku"] == "Standard_B2s") & (groups["region"] == "eastus")].iloc[0]
    assert (b2s["group"], b2s["ratio"], b2s["normalized_size"]) == ("BS Series", 8.0, "Standard_B1ls")


# --------------------------------------------------------------------------- merging


def test_merged_catalogs_keep_the_first_figures(offer: pd.DataFrame) -> None:
    merged = import_catalogs([OFFER, SP_RATES, AZURE_AMORTIZED])
    assert set(merged["offering"]) == set(offer["offering"]) | set(import_catalog(SP_RATES)["offering"]) \
        | set(import_catalog(AZURE_AMORTIZED)["offering"])
    assert not merged.duplicated(["offering", "pool"]).any()


# --------------------------------------------------------------------------- the shipped book


@pytest.fixture(scope="module")
def shipped():
    return read_price_book(BOOK)


def test_shipped_book_loads_and_is_labelled(shipped) -> None:
    label = read_source_label(BOOK)
    assert "2024" in label["source"] and "not verified" in label["source"]
    assert "Source and date" in (BOOK.parent / "README.md").read_text(encoding="utf-8")
    families = {"m5", "c5", "r5", "m6i", "c6i", "r6i", "m7g", "c7g", "t3"}
    for region in ("us-east-1", "us-west-2", "eu-west-1"):
        for family in families:
            pool = f"aws:ec2:{region}:{family}:linux"
            assert pool in shipped.on_demand
            ris = [o for o in shipped.reservations() if o.pool == pool]
            assert {(o.term_months, o.payment.value) for o in ris} == {
                (t, p) for t in (12, 36) for p in ("no_upfront", "partial_upfront", "all_upfront")}
    sps = shipped.savings_plans()
    assert len(sps) == 6 and all(set(o.rates) == set(shipped.on_demand) for o in sps)
    rebuilt = build_reference_book().set_index(["offering", "pool"])  # the file is what the documented tables give
    written = pd.read_csv(BOOK).set_index(["offering", "pool"])
    assert set(rebuilt.index) == set(written.index)
    for column in ("hourly_rate", "upfront"):
        assert np.allclose(written[column].fillna(0), rebuilt.loc[written.index, column], rtol=0, atol=1e-9)


def test_shipped_commitments_cost_less_than_on_demand(shipped) -> None:
    for offering in shipped.reservations():
        assert offering.hourly_cost_per_unit() < shipped.on_demand[offering.pool], offering.id
    for offering in shipped.savings_plans():
        for pool, rate in offering.rates.items():
            assert 0 < rate < shipped.on_demand[pool], (offering.id, pool)


def test_shipped_book_plans_and_bills(shipped) -> None:
    from solver.planner import plan_for_usage
    from solver.simulator import simulate_bill

    pools = tuple(sorted(shipped.on_demand))
    hours = 24 * 14
    rng = np.random.default_rng(5)
    level = rng.uniform(8, 80, size=len(pools))
    daily = 1 + 0.3 * np.sin(2 * np.pi * np.arange(hours) / 24)[:, None]
    usage = UsageMatrix(start=datetime(2025, 1, 1, tzinfo=UTC), pools=pools,
                        values=np.round(level * daily * rng.uniform(0.9, 1.1, size=(hours, len(pools))), 3))
    plan = plan_for_usage(usage, shipped)
    assert plan.solve.status == "optimal" and plan.purchases
    assert plan.summary.effective_savings_rate > 0.3
    bill = simulate_bill(usage, shipped, [], [Purchase(offering=p.offering, quantity=p.quantity, start=p.start)
                                             for p in plan.purchases])
    assert math.isclose(bill.total_cost, plan.summary.expected_cost, rel_tol=1e-6)


# --------------------------------------------------------------------------- bad input


def corrupt(source: Path, target: Path, line: int, old: str, new: str) -> Path:
    lines = source.read_text(encoding="utf-8-sig").splitlines()
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def test_bad_price_names_file_row_column(tmp_path: Path) -> None:
    bad = corrupt(OFFER, tmp_path / "offer.csv", 12, '"0.2489500000"', '"abc"')
    with pytest.raises(InputError) as err:
        import_catalog(bad)
    assert (err.value.file, err.value.row, err.value.column) == (str(bad), 12, "PricePerUnit")
    assert "'abc' is not a number" in str(err.value)


def test_bad_lease_and_missing_column(tmp_path: Path) -> None:
    bad = corrupt(SP_RATES, tmp_path / "sp.csv", 9, "Partial Upfront,3,year", "Partial Upfront,two,year")
    with pytest.raises(InputError) as err:
        import_catalog(bad, "aws-savings-plans")
    assert (err.value.row, err.value.column) == (9, "LeaseContractLength")
    header = corrupt(OFFER, tmp_path / "header.csv", 6, '"PricePerUnit"', '"Price"')
    with pytest.raises(InputError) as err:
        import_catalog(header, "aws-offer")
    assert (err.value.row, err.value.column) == (6, "PricePerUnit")


def test_bad_azure_price_and_unknown_file(tmp_path: Path) -> None:
    bad = corrupt(AZURE_AMORTIZED, tmp_path / "azure.csv", 2, ",0.146,", ",x,")
    with pytest.raises(InputError) as err:
        import_catalog(bad)
    assert (err.value.row, err.value.column) == (2, "UnitPrice")
    unknown = tmp_path / "notes.csv"
    unknown.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell which price catalog"):
        import_catalog(unknown)


def test_bad_yaml_value_names_its_line_and_key(tmp_path: Path) -> None:
    text = "about:\n  generated: test\ncompute:\n  instance:\n    n2-standard-2:\n      cpu: 2\n      ram: 8\n" \
           "      cost:\n        us-central1:\n          hour: cheap\n"
    bad = tmp_path / "pricing.yml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_catalog(bad)
    assert (err.value.row, err.value.column) == (10, "compute.instance.n2-standard-2.cost.us-central1.hour")
    assert "hour must be a number >= 0, got 'cheap'" in str(err.value)
