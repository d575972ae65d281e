"""Readers of the input files: happy paths, a corpus of malformed files, a round-trip property."""

from __future__ import annotations

import gzip
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import InputError, Offering, OfferingKind, Payment, PriceBook
from models.readers import (
    read_existing,
    read_price_book,
    read_purchases_from_plan,
    read_usage,
)

MALFORMED = Path(__file__).parent / "malformed"
UTC = timezone.utc
JAN1 = datetime(2025, 1, 1, tzinfo=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text, newline="")
    return path


def small_price_book() -> PriceBook:
    ri1 = Offering(
        id="ri1", kind=OfferingKind.RESERVATION, term_months=12, payment=Payment.NO_UPFRONT,
        upfront=0, increment=1, rates={"a": 0.6},
    )
    return PriceBook(on_demand={"a": 1.0, "b": 2.0}, offerings={"ri1": ri1})


READERS = {
    "usage": read_usage,
    "usage_known": lambda p: read_usage(p, known_pools={"a", "b"}),
    "prices": read_price_book,
    "existing": read_existing,
    "existing_pb": lambda p: read_existing(p, price_book=small_price_book()),
    "plan": read_purchases_from_plan,
}

# file, reader, row, column, key phrase of the message
CASES = [
    # usage
    ("usage_missing_column.csv", "usage", 1, "quantity", "required column 'quantity' is missing"),
    ("usage_empty.csv", "usage", None, None, "the file is empty"),
    ("usage_header_only.csv", "usage", None, None, "no data rows"),
    ("usage_blank_only.csv", "usage", None, None, "no data rows"),
    ("usage_bad_number.csv", "usage", 3, "quantity", "quantity 'abc' is not a number"),
    ("usage_bad_timestamp.csv", "usage", 3, "timestamp", "'yesterday' is not an ISO 8601 timestamp"),
    ("usage_today_timestamp.csv", "usage", 2, "timestamp", "'today' is not an ISO 8601 timestamp"),
    ("usage_non_hour.csv", "usage", 3, "timestamp", "is not the start of an hour in UTC"),
    ("usage_offset_non_hour.csv", "usage", 2, "timestamp", "is not the start of an hour in UTC"),
    ("usage_negative.csv", "usage", 4, "quantity", "quantity must be >= 0, got -0.5"),
    ("usage_nan.csv", "usage", 2, "quantity", "must be a finite number, got 'NaN'"),
    ("usage_inf.csv", "usage", 3, "quantity", "must be a finite number, got 'inf'"),
    ("usage_empty_quantity.csv", "usage", 3, "quantity", "quantity is empty"),
    ("usage_empty_timestamp.csv", "usage", 3, "timestamp", "timestamp is empty"),
    ("usage_empty_pool.csv", "usage", 3, "pool", "pool is empty"),
    ("usage_duplicate.csv", "usage", 4, None, "pool 'a' at 2025-01-01T00:00:00+00:00 is given twice, first in row 2"),
    ("usage_unknown_pool.csv", "usage_known", 3, "pool", "pool 'zz' has no on-demand price in the price book"),
    ("usage_blank_lines.csv", "usage", 6, "quantity", "must be >= 0"),
    ("usage_crlf_blank_lines.csv", "usage", 4, "quantity", "'x' is not a number"),
    ("usage_unclosed_quote.csv", "usage", 5, None, "a quoted cell is never closed"),
    ("usage_corrupt.csv.gz", "usage", None, None, "could not be read"),
    ("does_not_exist.csv", "usage", None, None, "does not exist"),
    # price book
    ("prices_missing_column.csv", "prices", 1, "hourly_rate", "required column 'hourly_rate' is missing"),
    ("prices_empty.csv", "prices", None, None, "the file is empty"),
    ("prices_header_only.csv", "prices", None, None, "no data rows"),
    ("prices_unknown_kind.csv", "prices", 3, "kind", "kind 'spot' is not one of on_demand, reservation, savings_plan"),
    ("prices_empty_kind.csv", "prices", 2, "kind", "kind is empty"),
    ("prices_sp_pool_without_on_demand.csv", "prices", 4, "pool", "covers pool 'b', which has no on_demand row"),
    ("prices_ri_pool_without_on_demand.csv", "prices", 2, "pool", "covers pool 'b', which has no on_demand row"),
    ("prices_ri_two_pools.csv", "prices", 5, "pool", "reservation offering ri1 spans two pools: a (row 4) and b (row 5)"),
    ("prices_ri_duplicate_row.csv", "prices", 4, "pool", "lists pool 'a' twice, first in row 3"),
    ("prices_zero_term.csv", "prices", 3, "term_months", "term_months must be > 0, got 0"),
    ("prices_negative_term.csv", "prices", 3, "term_months", "term_months must be > 0, got -12"),
    ("prices_fractional_term.csv", "prices", 3, "term_months", "must be a whole number, got 1.5"),
    ("prices_empty_term.csv", "prices", 3, "term_months", "term_months is empty"),
    ("prices_duplicate_on_demand.csv", "prices", 4, "pool", "pool 'a' has a second on_demand price, the first is in row 2"),
    ("prices_on_demand_wrong_offering.csv", "prices", 2, "offering", "must have offering 'on_demand'"),
    ("prices_reserved_offering_id.csv", "prices", 3, "offering", "'on_demand' is reserved"),
    ("prices_sp_inconsistent_term.csv", "prices", 5, "term_months", "has term_months 36 here but 12 in row 4"),
    ("prices_sp_inconsistent_payment.csv", "prices", 5, "payment", "has payment all_upfront here but no_upfront in row 4"),
    ("prices_sp_inconsistent_upfront.csv", "prices", 5, "upfront", "has upfront 4500 here but 4000 in row 4"),
    ("prices_sp_inconsistent_increment.csv", "prices", 5, "increment", "has increment 0.001 here but 0.01 in row 4"),
    ("prices_bad_payment.csv", "prices", 3, "payment", "payment 'half_upfront' is not one of"),
    ("prices_empty_payment.csv", "prices", 3, "payment", "payment is empty"),
    ("prices_negative_upfront.csv", "prices", 3, "upfront", "upfront must be >= 0, got -100"),
    ("prices_zero_sp_rate.csv", "prices", 3, "hourly_rate", "a savings plan rate must be > 0, got 0"),
    ("prices_negative_rate.csv", "prices", 2, "hourly_rate", "hourly_rate must be >= 0, got -1.0"),
    ("prices_bad_rate.csv", "prices", 2, "hourly_rate", "hourly_rate '$1.00' is not a number"),
    ("prices_nan_rate.csv", "prices", 3, "hourly_rate", "must be a finite number, got 'nan'"),
    ("prices_zero_increment.csv", "prices", 3, "increment", "increment must be > 0, got 0"),
    ("prices_offering_two_kinds.csv", "prices", 5, "kind", "offering 'x1' is a savings_plan here but a reservation in row 4"),
    ("prices_empty_pool.csv", "prices", 3, "pool", "pool is empty"),
    ("prices_blank_lines.csv", "prices", 6, "upfront", "upfront must be >= 0, got -1"),
    # existing commitments
    ("existing_missing_column.csv", "existing", 1, "end", "required column 'end' is missing"),
    ("existing_empty.csv", "existing", None, None, "the file is empty"),
    ("existing_header_only.csv", "existing", None, None, "no data rows"),
    ("existing_end_before_start.csv", "existing", 3, "end", "is not after start 2025-06-01T00:00:00Z"),
    ("existing_end_equal_start.csv", "existing", 2, "end", "is not after start"),
    ("existing_unknown_offering.csv", "existing_pb", 3, "offering", "offering 'ri9' is not in the price book"),
    ("existing_zero_quantity.csv", "existing", 2, "quantity", "quantity must be > 0, got 0"),
    ("existing_negative_quantity.csv", "existing", 2, "quantity", "quantity must be > 0, got -2"),
    ("existing_bad_start.csv", "existing", 2, "start", "'01/01/2025' is not an ISO 8601 timestamp"),
    ("existing_non_hour_end.csv", "existing", 2, "end", "is not the start of an hour in UTC"),
    ("existing_empty_offering.csv", "existing", 2, "offering", "offering is empty"),
    # plan JSON: row = line for invalid JSON, purchase number otherwise
    ("plan_invalid.json", "plan", 3, None, "not valid JSON"),
    ("plan_empty.json", "plan", None, None, "the file is empty"),
    ("plan_no_purchases.json", "plan", None, "purchases", "has no 'purchases' list"),
    ("plan_purchases_not_list.json", "plan", None, "purchases", "'purchases' must be a list"),
    ("plan_missing_key.json", "plan", 2, "quantity", "the key 'quantity' is missing"),
    ("plan_bad_quantity.json", "plan", 1, "quantity", "quantity must be a number"),
    ("plan_negative_quantity.json", "plan", 1, "quantity", "must be a finite number >= 0, got -1"),
    ("plan_bad_start.json", "plan", 2, "start", "is not the start of an hour in UTC"),
    ("plan_purchase_not_object.json", "plan", 1, None, "must be an object"),
    ("plan_empty_offering.json", "plan", 1, "offering", "offering must be a non-empty string"),
]


@pytest.mark.parametrize(("name", "reader", "row", "column", "phrase"), CASES, ids=[c[0] for c in CASES])
def test_malformed_file_is_rejected_with_a_precise_error(name, reader, row, column, phrase):
    path = MALFORMED / name
    with pytest.raises(InputError) as caught:
        READERS[reader](path)
    error = caught.value
    assert Path(error.file).name == name
    assert (error.row, error.column) == (row, column), str(error)
    assert phrase in error.message
    assert "\n" not in error.message
    assert str(error).startswith(str(path))


def test_corpus_is_covered_by_the_table():
    listed = {c[0] for c in CASES}
    on_disk = {p.name for p in MALFORMED.iterdir()}
    assert on_disk <= listed
    assert len(on_disk) >= 35


# --------------------------------------------------------------------------- usage


USAGE = """\
timestamp,pool,quantity,note
2025-01-01T00:00:00Z,aws:ec2:us-east-1:m5:linux,4,first

2025-01-01T00:00:00Z, aws:ec2:us-east-1:c5:linux ,1.5,
2025-01-01T02:00:00+00:00,aws:ec2:us-east-1:m5:linux,6,
2025-01-01 03:00:00,aws:ec2:us-east-1:c5:linux,0,naive means UTC
2025-01-01T05:00:00+01:00,aws:ec2:us-east-1:c5:linux,2.25,offset converted
"""


def check_small_usage(matrix) -> None:
    assert matrix.start == JAN1
    assert matrix.pools == ("aws:ec2:us-east-1:c5:linux", "aws:ec2:us-east-1:m5:linux")
    expected = np.array([[1.5, 4.0], [0, 0], [0, 6.0], [0, 0], [2.25, 0]])
    np.testing.assert_array_equal(matrix.values, expected)
    assert matrix.end == JAN1 + timedelta(hours=5)


def test_usage_reads_a_small_file(tmp_path):
    check_small_usage(read_usage(write(tmp_path / "usage.csv", USAGE)))


def test_usage_reads_a_gzipped_file(tmp_path):
    path = tmp_path / "usage.csv.gz"
    path.write_bytes(gzip.compress(USAGE.encode()))
    check_small_usage(read_usage(path))


def test_usage_accepts_known_pools_and_quoted_cells(tmp_path):
    text = 'timestamp,pool,quantity\n"2025-01-01T00:00:00Z","a",1\n2025-01-01T01:00:00Z,b,"2"\n'
    matrix = read_usage(write(tmp_path / "u.csv", text), known_pools={"a", "b", "c"})
    assert matrix.pools == ("a", "b")
    np.testing.assert_array_equal(matrix.values, [[1, 0], [0, 2]])


def test_usage_keeps_pool_ids_that_look_like_numbers_or_booleans(tmp_path):
    text = "timestamp,pool,quantity\n2025-01-01T00:00:00Z,007,1\n2025-01-01T00:00:00Z,1.50,2\n2025-01-01T00:00:00Z,true,3\n"
    matrix = read_usage(write(tmp_path / "u.csv", text), known_pools={"007", "1.50", "true"})
    assert matrix.pools == ("007", "1.50", "true")
    np.testing.assert_array_equal(matrix.values, [[1, 2, 3]])


def test_usage_row_numbers_count_blank_lines_even_with_a_header_bom(tmp_path):
    text = "\ufefftimestamp,pool,quantity\n\n\n2025-01-01T00:00:00Z,a,1\n\n2025-01-01T00:00:00Z,a,1\n"
    with pytest.raises(InputError) as caught:
        read_usage(write(tmp_path / "u.csv", text))
    assert caught.value.row == 6
    assert "first in row 4" in caught.value.message


def test_usage_of_30_pools_for_a_year_reads_fast(tmp_path):
    hours, pools = 8760, 30
    stamps = pd.date_range("2025-01-01", periods=hours, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = np.random.default_rng(1)
    quantity = np.round(rng.random(hours * pools) * 100, 3)
    frame = pd.DataFrame(
        {"timestamp": np.repeat(np.asarray(stamps), pools), "pool": np.tile([f"p{k:02d}" for k in range(pools)], hours),
         "quantity": quantity}
    )
    path = tmp_path / "year.csv"
    frame.to_csv(path, index=False)
    began = time.perf_counter()
    matrix = read_usage(path)
    assert time.perf_counter() - began < 2.0
    assert matrix.values.shape == (hours, pools)
    np.testing.assert_array_equal(matrix.values, quantity.reshape(hours, pools))


pool_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:-_.", min_size=1, max_size=12)


@st.composite
def usage_frames(draw):
    pools = draw(st.lists(pool_ids, min_size=1, max_size=4, unique=True))
    hours = draw(st.integers(1, 30))
    cells = [(h, p) for h in range(hours) for p in range(len(pools))]
    present = draw(st.lists(st.sampled_from(cells), min_size=1, max_size=len(cells), unique=True))
    quantities = draw(
        st.lists(st.floats(0, 1e9, allow_nan=False, allow_infinity=False), min_size=len(present), max_size=len(present))
    )
    offset = draw(st.integers(-1000, 1000))
    spelling = draw(st.sampled_from(["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S+00:00", "%Y-%m-%d %H:%M:%S"]))
    return pools, offset, spelling, present, quantities


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(usage_frames())
def test_usage_round_trips_through_csv(tmp_path, case):
    pools, offset, spelling, present, quantities = case
    origin = JAN1 + timedelta(hours=offset)
    frame = pd.DataFrame(
        {
            "timestamp": [(origin + timedelta(hours=h)).strftime(spelling) for h, _ in present],
            "pool": [pools[p] for _, p in present],
            "quantity": quantities,
        }
    )
    path = tmp_path / "usage.csv"
    frame.to_csv(path, index=False)
    matrix = read_usage(path)

    first = min(h for h, _ in present)
    last = max(h for h, _ in present)
    used = sorted({pools[p] for _, p in present})
    expected = np.zeros((last - first + 1, len(used)))
    for (h, p), q in zip(present, quantities):
        expected[h - first, used.index(pools[p])] = q
    assert matrix.start == origin + timedelta(hours=first)
    assert matrix.pools == tuple(used)
    np.testing.assert_array_equal(matrix.values, expected)


# --------------------------------------------------------------------------- price book


PRICES = """\
offering,kind,term_months,payment,pool,hourly_rate,upfront,increment
on_demand,on_demand,,,a,1.00,,
 on_demand , On Demand ,,,b,2.00,,
ri-a-1y,reservation,12,All Upfront,a,0,5000,
ri-b-3y,reservation,36,partial-upfront,b,0.5,8000,0.25

sp-compute,savings_plan,12,No Upfront,a,0.70,0,
sp-compute,savings_plan,12,no_upfront,b,1.30,0,
"""


def test_price_book_reads_all_kinds(tmp_path):
    book = read_price_book(write(tmp_path / "prices.csv", PRICES))
    assert book.on_demand == {"a": 1.0, "b": 2.0}
    assert set(book.offerings) == {"ri-a-1y", "ri-b-3y", "sp-compute"}
    ri = book.offerings["ri-a-1y"]
    assert (ri.kind, ri.term_months, ri.payment, ri.upfront, ri.increment) == (
        OfferingKind.RESERVATION, 12, Payment.ALL_UPFRONT, 5000.0, 1.0,
    )
    assert ri.rates == {"a": 0.0}
    ri3 = book.offerings["ri-b-3y"]
    assert (ri3.payment, ri3.increment, ri3.term_hours) == (Payment.PARTIAL_UPFRONT, 0.25, 36 * 730)
    sp = book.offerings["sp-compute"]
    assert (sp.kind, sp.payment, sp.increment) == (OfferingKind.SAVINGS_PLAN, Payment.NO_UPFRONT, 0.001)
    assert sp.rates == {"a": 0.7, "b": 1.3}


def test_price_book_without_increment_column_uses_defaults(tmp_path):
    text = "\n".join(line.rsplit(",", 1)[0] for line in PRICES.splitlines() if line) + "\n"
    book = read_price_book(write(tmp_path / "prices.csv", text))
    assert book.offerings["ri-b-3y"].increment == 1.0
    assert book.offerings["sp-compute"].increment == 0.001


# --------------------------------------------------------------------------- existing commitments and plans


def test_existing_commitments_are_read(tmp_path):
    text = "offering,quantity,start,end\n ri1 ,3,2024-06-01T00:00:00Z,2025-06-01 00:00:00\n"
    (commitment,) = read_existing(write(tmp_path / "existing.csv", text), price_book=small_price_book())
    assert commitment.offering == "ri1"
    assert commitment.quantity == 3
    assert commitment.start == datetime(2024, 6, 1, tzinfo=UTC)
    assert commitment.end == datetime(2025, 6, 1, tzinfo=UTC)


def test_plan_purchases_are_read(tmp_path):
    text = (
        '{"purchases": [{"offering": "ri1", "quantity": 2, "start": "2025-02-01T00:00:00Z", "why": "base load"},'
        ' {"offering": "sp1", "quantity": 0.125, "start": "2025-03-01T00:00:00"}],'
        ' "summary": {"expected_cost": 1.0}}'
    )
    purchases = read_purchases_from_plan(write(tmp_path / "plan.json", text))
    assert [(p.offering, p.quantity, p.start) for p in purchases] == [
        ("ri1", 2.0, datetime(2025, 2, 1, tzinfo=UTC)),
        ("sp1", 0.125, datetime(2025, 3, 1, tzinfo=UTC)),
    ]


def test_pool_ids_parse_into_their_parts():
    from models import Pool

    pool = Pool.parse("aws:ec2:us-east-1:m5:linux")
    assert (pool.provider, pool.service, pool.region, pool.family, pool.os) == ("aws", "ec2", "us-east-1", "m5", "linux")
    assert Pool.parse("gcp-n2-europe-west1").region == ""
    with pytest.raises(ValueError):
        Pool.parse("  ")
