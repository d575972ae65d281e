"""Billing exports into the ledger: every shared bill ties to the cent against sums computed here
with Python's csv and Decimal (not DuckDB); rejected rows are reported; re-ingest is a no-op."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from billing.ingest import ingest
from billing.ledger import open_ledger, sources_dir
from models.errors import InputError


@pytest.fixture(autouse=True, params=["mapped-into-table", "kept-as-file"])
def storage(request, monkeypatch) -> str:
    """Every test here runs on both ways a ledger holds a file's rows (``billing.ingest.KEEP_ROWS_FROM``)."""
    if request.param == "kept-as-file":
        monkeypatch.setattr("billing.ingest.KEEP_ROWS_FROM", 0)
    return request.param


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.exists():  # a clean clone sits beside shared/ too; CI runs from /tmp clones
    DATA = Path("/work/shared/data")
FOCUS_SAMPLE = DATA / "focus-sample-data" / "FOCUS-1.0" / "focus_sample.csv"
SPEC = DATA / "focus-spec" / "specification" / "data"
CUR_LEGACY = DATA / "focus-converters" / "focus_converter_base" / "tests" / "provider_config_tests" / "aws" / "sample-anonymous-aws-export-dataset.csv"
AZURE_EA = DATA / "focus-converters" / "focus_converter_base" / "tests" / "provider_config_tests" / "azure" / "sample-anonymous-ea-export-dataset.csv"
AZURE_AMORTIZED = DATA / "microsoft-finops-toolkit" / "src" / "powershell" / "Tests" / "assets" / "EA_AmortizedCost_Small.csv"
AZURE_ACTUAL = DATA / "microsoft-finops-toolkit" / "src" / "powershell" / "Tests" / "assets" / "EA_ActualCost_Small.csv"
GCP_SAMPLE = Path(__file__).parent / "data" / "gcp" / "billing_export_sample.csv"
NULLS = {"", "NULL", "null"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        return [r for r in csv.DictReader(stream) if any(v for v in r.values())]


def number(text: str | None) -> Decimal:
    if text is None or text.strip() in NULLS:
        return Decimal(0)
    return Decimal(text.strip())


def column_sum(rows: list[dict[str, str]], column: str) -> Decimal:
    return sum((number(r.get(column)) for r in rows), Decimal(0))


def assert_cents(loaded: Decimal, expected: Decimal) -> None:
    assert abs(loaded - expected) < Decimal("0.000001"), (loaded, expected)
    assert round(loaded, 2) == round(expected, 2)


def ledger_state(path: Path) -> tuple:
    """What a refused load must leave as it was: the charges, the tables, the stored copies."""
    connection = open_ledger(path, read_only=True)
    folder = sources_dir(path)
    try:
        return (
            connection.execute("SELECT count(*), sum(billed_cost), sum(effective_cost), sum(list_cost) FROM charges").fetchall(),
            connection.execute("SELECT ingest_id, file, sha256, stored_file FROM ingests ORDER BY 1").fetchall(),
            connection.execute("SELECT count(*) FROM rejected_rows").fetchall(),
            connection.execute("SELECT * FROM ingest_spans ORDER BY ALL").fetchall(),
            connection.execute("SELECT count(*), sum(quantity) FROM pool_hour_totals").fetchall(),
            sorted(p.name for p in folder.iterdir()) if folder.exists() else None,
        )
    finally:
        connection.close()


FOCUS_FILES = [FOCUS_SAMPLE] + sorted(SPEC.glob("*/*.csv"))


@pytest.mark.parametrize("path", FOCUS_FILES, ids=lambda p: p.name[:50])
def test_focus_files_tie_to_the_cent(tmp_path, path):
    rows = rows_of(path)
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert report.format == "focus" and report.rows_read == len(rows)
    for measure in ("BilledCost", "EffectiveCost", "ListCost"):
        expected = column_sum(rows, measure)
        assert_cents(report.loaded[measure] + report.rejected_sums[measure], expected)
        rejected_rows = {r.row for r in report.rejected}
        kept = [r for i, r in enumerate(rows, start=2) if i not in rejected_rows]
        assert_cents(report.loaded[measure], column_sum(kept, measure))


def test_spec_invalid_timestamps_are_rejected_with_file_row_column(tmp_path):
    path = SPEC / "commitment_discount_scenarios" / "commitment_discount_purchase_scenario_2.csv"
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert [(r.row, r.column, r.value) for r in report.rejected] == [(4, "ChargePeriodEnd", "2023-02-01T30:00:00Z")]
    assert "not a timestamp" in report.rejected[0].reason
    assert report.rows_loaded == 2
    assert report.rejected_sums["BilledCost"] == Decimal("1")


def test_cur_legacy_ties_unblended_and_public_on_demand(tmp_path):
    rows = rows_of(CUR_LEGACY)
    report = ingest([CUR_LEGACY], tmp_path / "l.duckdb")[0]
    assert report.format == "aws-cur" and report.rows_loaded == len(rows) == 1281
    assert_cents(report.loaded["BilledCost"], column_sum(rows, "lineItem/UnblendedCost"))
    assert_cents(report.loaded["ListCost"], column_sum(rows, "pricing/publicOnDemandCost"))
    # no reservation or savings-plan lines in this bill: effective cost is the unblended cost
    assert_cents(report.loaded["EffectiveCost"], column_sum(rows, "lineItem/UnblendedCost"))
    assert [p.provider for p in report.periods] == ["AWS"]


def test_cur2_amortizes_commitments_by_line_item_type(tmp_path):
    header = ["line_item_line_item_type", "line_item_usage_start_date", "line_item_usage_end_date",
              "line_item_unblended_cost", "reservation_effective_cost", "savings_plan_savings_plan_effective_cost",
              "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
              "savings_plan_total_commitment_to_date", "savings_plan_used_commitment", "line_item_currency_code",
              "bill_payer_account_id", "bill_billing_period_start_date"]
    lines = [
        ["Usage", "10.00", "", "", "", "", "", ""],
        ["DiscountedUsage", "0", "0.70", "", "", "", "", ""],
        ["SavingsPlanCoveredUsage", "0.50", "", "0.30", "", "", "", ""],
        ["SavingsPlanNegation", "-0.50", "", "", "", "", "", ""],
        ["RIFee", "5.00", "", "", "1.25", "0.75", "", ""],
        ["SavingsPlanRecurringFee", "1.00", "", "", "", "", "1.00", "0.30"],
        ["Tax", "0.40", "", "", "", "", "", ""],
    ]
    path = tmp_path / "cur2.csv"
    with path.open("w", newline="") as stream:
        w = csv.writer(stream)
        w.writerow(header)
        for kind, unblended, ri, sp, unused_up, unused_rec, total, used in lines:
            w.writerow([kind, "2025-01-01T00:00:00Z", "2025-01-01T01:00:00Z", unblended, ri, sp, unused_up,
                        unused_rec, total, used, "USD", "111122223333", "2025-01-01T00:00:00Z"])
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert report.loaded["BilledCost"] == Decimal("16.40")
    # usage 10 + RI-covered 0.70 + SP-covered 0.30 + negation 0 + RI unused 2.00 + SP unused 0.70 + tax 0.40
    assert report.loaded["EffectiveCost"] == Decimal("14.10")


@pytest.mark.parametrize("path, view", [(AZURE_AMORTIZED, "EffectiveCost"), (AZURE_ACTUAL, "BilledCost"),
                                        (AZURE_EA, "BilledCost")], ids=["amortized", "actual", "ea-export"])
def test_azure_exports_tie_their_cost_column(tmp_path, path, view):
    rows = rows_of(path)
    cost_column = "CostInBillingCurrency" if "CostInBillingCurrency" in rows[0] else "Cost"
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert report.format == "azure-cost-details" and report.rows_loaded == len(rows)
    assert_cents(report.loaded[view], column_sum(rows, cost_column))
    if path is AZURE_ACTUAL:  # the reservation purchase is billed, and amortized elsewhere
        purchase = sum((number(r["Cost"]) for r in rows if r["ChargeType"] == "Purchase"), Decimal(0))
        assert purchase > 0
        assert_cents(report.loaded["EffectiveCost"], column_sum(rows, "Cost") - purchase)
    if path is AZURE_AMORTIZED:  # covered usage is paid by the purchase: not billed again
        covered = sum((number(r["Cost"]) for r in rows if r["PricingModel"] in ("Reservation", "SavingsPlan")), Decimal(0))
        assert covered > 0
        assert_cents(report.loaded["BilledCost"], column_sum(rows, "Cost") - covered)


def test_gcp_export_ties_cost_plus_credits(tmp_path):
    import json

    rows = rows_of(GCP_SAMPLE)
    net = sum((number(r["cost"]) + sum((Decimal(str(c["amount"])) for c in json.loads(r["credits"])), Decimal(0))
               for r in rows), Decimal(0))
    report = ingest([GCP_SAMPLE], tmp_path / "l.duckdb")[0]
    assert report.format == "gcp-billing-export"
    assert_cents(report.loaded["BilledCost"], net)
    assert_cents(report.loaded["ListCost"], column_sum(rows, "cost_at_list"))
    assert [p.provider for p in report.periods] == ["Google Cloud"]


def test_parquet_loads_like_csv(tmp_path):
    parquet = tmp_path / "focus.parquet"
    connection = duckdb.connect()
    connection.execute(
        f"COPY (SELECT * FROM read_csv('{FOCUS_SAMPLE}', all_varchar = true, nullstr = ['NULL'])) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    connection.close()
    from_csv = ingest([FOCUS_SAMPLE], tmp_path / "a.duckdb")[0]
    from_parquet = ingest([parquet], tmp_path / "b.duckdb")[0]
    assert from_parquet.rows_loaded == from_csv.rows_loaded == 1000
    assert from_parquet.loaded == from_csv.loaded
    assert [(p.provider, p.rows) for p in from_parquet.periods] == [(p.provider, p.rows) for p in from_csv.periods]


def test_reingesting_the_same_file_changes_nothing(tmp_path):
    ledger = tmp_path / "l.duckdb"
    first = ingest([FOCUS_SAMPLE], ledger)[0]
    before = ledger_state(ledger)
    again = ingest([FOCUS_SAMPLE], ledger)[0]
    assert first.status == "loaded" and again.status == "unchanged" and again.ingest_id == first.ingest_id
    assert ledger_state(ledger) == before


def test_sums_are_exact_where_floats_would_drift(tmp_path):
    path = tmp_path / "tiny.csv"
    header = "BilledCost,EffectiveCost,ListCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency,ProviderName\n"
    body = "".join(f"0.1,0.2,0.3,2025-01-01T{h % 24:02d}:00:00Z,2025-01-01T{h % 24:02d}:59:59Z,Usage,USD,AWS\n"
                   for h in range(1000))
    path.write_text(header + body)
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert report.loaded == {"BilledCost": Decimal("100"), "EffectiveCost": Decimal("200"), "ListCost": Decimal("300")}



def test_focus_1_3_service_provider_name_is_the_provider(tmp_path):
    path = tmp_path / "focus13.csv"
    path.write_text(
        "ServiceProviderName,HostProviderName,BilledCost,EffectiveCost,ListCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency\n"
        "AWS,AWS,1.50,1.25,2.00,2025-01-01T00:00:00Z,2025-01-01T01:00:00Z,Usage,USD\n"
    )
    report = ingest([path], tmp_path / "l.duckdb")[0]
    assert [(p.provider, p.rows) for p in report.periods] == [("AWS", 1)]


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_focus_export_reads_back_to_the_same_sums(tmp_path, file_format):
    from billing.focus_export import export_focus

    first = ingest([FOCUS_SAMPLE], tmp_path / "a.duckdb")[0]
    out = tmp_path / f"export.{file_format}"
    result = export_focus(tmp_path / "a.duckdb", out, file_format)
    assert result.rows == 1000 and "BilledCost" in result.columns
    assert "ContractedCost" in result.columns and not result.left_out.keys() & {"ContractedCost", "BilledCost"}
    again = ingest([out], tmp_path / "b.duckdb")[0]
    assert again.loaded == first.loaded
    assert [(p.provider, p.billing_period_start, p.rows, p.sums) for p in again.periods] == \
        [(p.provider, p.billing_period_start, p.rows, p.sums) for p in first.periods]


def test_export_fills_contracted_cost_from_list_cost_where_the_source_has_none(tmp_path):
    from billing.focus_export import export_focus

    ingest([FOCUS_SAMPLE], tmp_path / "a.duckdb")
    out = tmp_path / "export.csv"
    export_focus(tmp_path / "a.duckdb", out, "csv")
    source = {r["Id"] if "Id" in r else i: r for i, r in enumerate(rows_of(FOCUS_SAMPLE))}
    exported = rows_of(out)
    assert len(exported) == len(source)
    for before, after in zip(rows_of(FOCUS_SAMPLE), exported):
        expected = before["ContractedCost"] if before["ContractedCost"] not in NULLS else before["ListCost"]
        assert number(after["ContractedCost"]) == number(expected)


def test_source_row_is_the_file_row_beyond_one_row_group(tmp_path):
    """Row numbers come from the insertion order on the fast path (no row_number() scan): every
    loaded charge still points at its own line, across DuckDB's 122,880-row groups and threads."""
    rows = 130_000
    path = tmp_path / "big.csv"
    with path.open("w") as stream:
        stream.write("BilledCost,EffectiveCost,ListCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,ResourceId\n")
        for i in range(rows):
            hour = i % 24
            stream.write(f"1,1,1,2025-01-01T{hour:02d}:00:00Z,2025-01-01T{hour:02d}:30:00Z,Usage,r{i + 2}\n")
    ledger = tmp_path / "l.duckdb"
    report = ingest([path], ledger)[0]
    assert report.rows_loaded == rows and report.loaded["BilledCost"] == rows
    connection = open_ledger(ledger, read_only=True)
    mismatched = connection.execute(
        "SELECT count(*) FROM charges WHERE resource_id <> 'r' || source_row").fetchall()[0][0]
    connection.close()
    assert mismatched == 0


def test_a_ledger_keeps_copies_of_its_files_and_moves_with_them(tmp_path, storage):
    """The rows live in the ledger's own copies: the export may go, the ledger (with its folder) may
    move; without the folder it says what is missing."""
    export = tmp_path / "bill.csv"
    export.write_bytes(FOCUS_SAMPLE.read_bytes())
    ledger = tmp_path / "here" / "ledger.duckdb"
    ledger.parent.mkdir()
    ingest([export], ledger, keep_rows_from=0)
    before = ledger_state(ledger)
    export.unlink()
    moved = tmp_path / "there" / "renamed.duckdb"
    moved.parent.mkdir()
    ledger.rename(moved)
    sources_dir(ledger).rename(sources_dir(moved))
    assert ledger_state(moved)[:5] == before[:5]
    shutil.rmtree(sources_dir(moved))
    with pytest.raises(InputError) as missing:
        open_ledger(moved, read_only=True)
    assert missing.value.file == str(moved) and "renamed.duckdb.sources" in missing.value.message


def test_a_ledger_of_the_earlier_layout_is_refused_in_words(tmp_path):
    ledger = tmp_path / "old.duckdb"
    connection = duckdb.connect(str(ledger))
    connection.execute("CREATE TABLE charges (ingest_id INTEGER)")
    connection.close()
    with pytest.raises(InputError, match="earlier commitplan"):
        open_ledger(ledger, read_only=True)


def test_keys_sharing_a_hash_are_told_apart(tmp_path, monkeypatch):
    """Per-key values are joined on a 64-bit hash of the key; were two keys of a file to share one,
    their rows would repeat: the load counts the mapped rows and maps again by the key columns."""
    ingest([FOCUS_SAMPLE], tmp_path / "plain.duckdb")
    monkeypatch.setattr("billing.charge_mapping.KEY_HASH", "(hash({}) % 2)")  # every key on two hashes
    report = ingest([FOCUS_SAMPLE], tmp_path / "colliding.duckdb")[0]
    assert report.rows_loaded == 1000
    plain, colliding = ledger_state(tmp_path / "plain.duckdb"), ledger_state(tmp_path / "colliding.duckdb")
    assert colliding[0] == plain[0] and colliding[3:5] == plain[3:5]
    connection = open_ledger(tmp_path / "colliding.duckdb", read_only=True)
    pools = connection.execute("SELECT pool, sum(hourly_quantity) FROM charges GROUP BY 1 ORDER BY 1").fetchall()
    connection.close()
    connection = open_ledger(tmp_path / "plain.duckdb", read_only=True)
    assert pools == connection.execute("SELECT pool, sum(hourly_quantity) FROM charges GROUP BY 1 ORDER BY 1").fetchall()
    connection.close()
