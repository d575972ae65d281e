"""Malformed exports: a clear error naming the file, row and column, and the ledger left as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from billing.ingest import ingest
from billing.reading import sha256_of
from models.errors import InputError
from tests.test_ingest import FOCUS_SAMPLE, ledger_state


@pytest.fixture(autouse=True, params=["mapped-into-table", "kept-as-file"])
def storage(request, monkeypatch) -> str:
    """Every test here runs on both ways a ledger holds a file's rows (``billing.ingest.KEEP_ROWS_FROM``)."""
    if request.param == "kept-as-file":
        monkeypatch.setattr("billing.ingest.KEEP_ROWS_FROM", 0)
    return request.param


HEADER = "BillingAccountId,BilledCost,EffectiveCost,ListCost,ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BillingCurrency,ProviderName,BillingPeriodStart\n"


def focus_rows(n: int, start_day: int = 1, currency: str = "USD", cost: str = "1.25") -> str:
    return "".join(
        f"acct-1,{cost},{cost},2.00,2025-01-{start_day:02d}T{h:02d}:00:00Z,2025-01-{start_day:02d}T{h + 1:02d}:00:00Z,"
        f"Usage,{currency},AWS,2025-01-01T00:00:00Z\n"
        for h in range(n)
    )


@pytest.fixture
def loaded_ledger(tmp_path) -> Path:
    ledger = tmp_path / "ledger.duckdb"
    ingest([FOCUS_SAMPLE], ledger)
    return ledger


def refused(ledger: Path, *files: Path, **kwargs) -> InputError:
    before = ledger_state(ledger)
    with pytest.raises(InputError) as caught:
        ingest(list(files), ledger, **kwargs)
    assert ledger_state(ledger) == before
    return caught.value


def test_missing_mandatory_column(tmp_path, loaded_ledger):
    path = tmp_path / "no_cost.csv"
    path.write_text(HEADER.replace("BilledCost,", "") + "".join(
        line.split(",", 2)[0] + "," + line.split(",", 2)[2] for line in focus_rows(3).splitlines(keepends=True)))
    error = refused(loaded_ledger, path)
    assert error.file == str(path) and error.column == "BilledCost" and "missing" in error.message


def test_wrong_type_names_row_and_column(tmp_path, loaded_ledger):
    path = tmp_path / "bad_number.csv"
    lines = focus_rows(5).splitlines(keepends=True)
    lines[3] = lines[3].replace(",2.00,", ",two dollars,")
    path.write_text(HEADER + "".join(lines))
    error = refused(loaded_ledger, path)
    assert (error.row, error.column) == (5, "ListCost")
    assert "'two dollars' is not a number" in str(error) and str(path) in str(error)


def test_mixed_currencies(tmp_path, loaded_ledger):
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + focus_rows(3) + focus_rows(2, start_day=2, currency="EUR"))
    error = refused(loaded_ledger, path)
    assert error.row == 5 and "USD" in error.message and "EUR" in error.message


def test_truncated_file(tmp_path, loaded_ledger):
    path = tmp_path / "truncated.csv"
    text = FOCUS_SAMPLE.read_text()
    path.write_text(text[: len(text) // 2])
    error = refused(loaded_ledger, path)
    assert error.file == str(path) and "cannot be read" in error.message


def test_overlapping_file_is_refused_and_replace_swaps_it(tmp_path, storage):
    ledger = tmp_path / "ledger.duckdb"
    first = tmp_path / "january.csv"
    first.write_text(HEADER + focus_rows(10))
    ingest([first], ledger)
    corrected = tmp_path / "january_corrected.csv"
    corrected.write_text(HEADER + focus_rows(10, cost="1.50"))
    error = refused(ledger, corrected)
    assert "overlaps charges already loaded from" in error.message and "--replace" in error.message
    report = ingest([corrected], ledger, replace=True)[0]
    assert report.replaced == [1] and report.loaded["BilledCost"] == 15
    (count, billed, _, _), = ledger_state(ledger)[0]
    assert count == 10 and billed == 15
    kept = [f"{report.ingest_id}-{sha256_of(corrected)[:16]}.parquet"] if storage == "kept-as-file" else None
    assert ledger_state(ledger)[-1] == kept  # the old copy went (and a small file's own, once mapped)


def test_a_bad_file_in_a_batch_loads_nothing(tmp_path):
    ledger = tmp_path / "ledger.duckdb"
    ingest([FOCUS_SAMPLE], ledger)
    good = tmp_path / "good.csv"
    good.write_text(HEADER + focus_rows(3, start_day=5))
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + focus_rows(3, start_day=6).replace("1.25", "x", 1))
    refused(ledger, good, bad)


def test_unknown_format_lists_its_columns(tmp_path, loaded_ledger):
    path = tmp_path / "usage.csv"
    shutil.copy(Path(__file__).parent.parent / "scenarios" / "examples" / "demo" / "usage.csv", path) \
        if (Path(__file__).parent.parent / "scenarios" / "examples" / "demo" / "usage.csv").exists() \
        else path.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,a,1\n")
    error = refused(loaded_ledger, path)
    assert "is not a billing export" in error.message and "timestamp" in error.message


def test_missing_file(tmp_path, loaded_ledger):
    error = refused(loaded_ledger, tmp_path / "nowhere.csv")
    assert "no such file" in error.message
