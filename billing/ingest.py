"""Loading billing exports into the ledger, all or nothing, tied to the source to the cent.

One command loads its files in one transaction: a bad file leaves the ledger as it was. Each file
is read twice by DuckDB (streamed, so files larger than memory load): a checking pass (numbers,
currencies, charge periods, the source's own sums) and the loading pass. A file already loaded
(same SHA-256) changes nothing; a different file that covers charges already loaded (same
provider, billing account, billing period and charge category, overlapping charge periods) is
refused unless ``replace`` is set, which removes the earlier file's charges first.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from billing.formats.base import DECIMAL, Format, Raw, q
from billing.ledger import open_ledger
from billing.ledger_schema import CHARGE_COLUMNS
from billing.reading import (
    ROW,
    check_required,
    columns_of,
    first_line,
    recognize,
    sha256_of,
    text_relation,
    unnumbered_relation,
)
from models.errors import InputError

MEASURES = ("BilledCost", "EffectiveCost", "ListCost")
_BARE_CAST = re.compile(r"(?<![A-Z_])CAST\(")
_LEDGER_MEASURE = {"BilledCost": "billed_cost", "EffectiveCost": "effective_cost", "ListCost": "list_cost"}


@dataclass(frozen=True)
class Rejection:
    file: str
    row: int
    column: str
    value: str | None
    reason: str


@dataclass(frozen=True)
class PeriodTotals:
    provider: str
    billing_period_start: str
    rows: int
    sums: dict[str, Decimal]


@dataclass
class FileReport:
    file: str
    format: str
    status: str
    """'loaded', or 'unchanged' when this very file was loaded before."""
    ingest_id: int
    rows_read: int
    rows_loaded: int
    source: dict[str, Decimal] = field(default_factory=dict)
    loaded: dict[str, Decimal] = field(default_factory=dict)
    rejected_sums: dict[str, Decimal] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    periods: list[PeriodTotals] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)


def ingest(paths: Sequence[Path | str], ledger: Path | str, replace: bool = False,
           progress: Callable[[str], None] | None = None) -> list[FileReport]:
    """Load every file or none: any error rolls the whole command back."""
    connection = open_ledger(ledger)
    if progress is not None and sys.stdout.isatty():
        connection.execute("SET enable_progress_bar = true")  # DuckDB draws it for passes over ~2 s
    try:
        connection.execute("BEGIN TRANSACTION")
        reports = []
        for path in paths:
            if progress:
                progress(f"reading {path}")
            reports.append(_ingest_file(connection, Path(path), replace))
        connection.execute("COMMIT")
        return reports
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def _ingest_file(connection: duckdb.DuckDBPyConnection, path: Path, replace: bool) -> FileReport:
    if not path.is_file():
        raise InputError(str(path), "no such file")
    digest = sha256_of(path)
    known = connection.execute(
        "SELECT ingest_id, format, rows_read, rows_loaded FROM ingests WHERE sha256 = ?", [digest]
    ).fetchone()
    if known:
        return FileReport(str(path), known[1], "unchanged", known[0], known[2], known[3])
    columns = columns_of(connection, path)
    fmt = recognize(path, columns)
    check_required(path, fmt, columns)
    raw = fmt.raw(columns)
    numbered = text_relation(path, columns)
    fast = unnumbered_relation(path)
    connection.execute(f"CREATE OR REPLACE TEMP VIEW raw_rows AS {fast or numbered}")
    try:
        return _load(connection, path, fmt, raw, digest, replace, numbered if fast else None)
    except duckdb.Error as error:
        raise InputError(str(path), f"cannot be read: {first_line(error)}") from None


def _period(fmt: Format, raw: Raw) -> tuple[str, str, str, str]:
    """(start SQL, end SQL, raw start column, raw end column)."""
    start_column = raw.first(*fmt.period.start) or fmt.period.start[0]
    start = raw.ts(*fmt.period.start)
    if fmt.period.end:
        end_column = raw.first(*fmt.period.end) or fmt.period.end[0]
        return start, raw.ts(*fmt.period.end), start_column, end_column
    return start, f"({start} + INTERVAL 1 DAY)", start_column, start_column


def _load(connection, path: Path, fmt: Format, raw: Raw, digest: str, replace: bool,
          numbered: str | None) -> FileReport:
    """``numbered``: the relation with row numbers, when ``raw_rows`` is a faster one without them;
    it replaces ``raw_rows`` as soon as a row must be named (a bad cell, a rejected row)."""
    if fmt.inspect is not None:
        _check_numbers(connection, path, fmt, raw)
        raw.context = fmt.inspect(connection, raw)
    start, end, start_column, end_column = _period(fmt, raw)
    charges = fmt.charges(raw)
    valid = f"({start}) IS NOT NULL AND ({end}) IS NOT NULL AND ({end}) > ({start})"
    source_sums = fmt.source_sums(raw)
    rows_read, sums, bad_numbers, currencies, bad_periods = _one_pass_checks(
        connection, fmt, raw, source_sums, charges["billing_currency"], valid)
    if numbered and (bad_numbers or currencies > 1 or bad_periods):
        connection.execute(f"CREATE OR REPLACE TEMP VIEW raw_rows AS {numbered}")
        numbered = None
    if bad_numbers:
        _check_numbers(connection, path, fmt, raw)  # raises, naming the first bad cell
    if currencies > 1:
        _check_currency(connection, path, charges["billing_currency"])  # raises, naming the row
    source = dict(zip(source_sums, (v or Decimal(0) for v in sums)))

    ingest_id = connection.execute("SELECT nextval('ingest_ids')").fetchone()[0]
    rejected = _rejections(connection, path, charges, start, end, start_column, end_column, valid) if bad_periods else []
    _insert_charges(connection, ingest_id, fmt, raw, charges, start, end, valid, by_insertion_order=bool(numbered))
    replaced = _resolve_overlaps(connection, path, ingest_id, replace)
    rows_loaded = rows_read - len(rejected)
    connection.execute(
        "INSERT INTO ingests VALUES (?, ?, ?, ?, now(), ?, ?, ?)",
        [ingest_id, str(path), digest, fmt.name, rows_read, rows_loaded, len(rejected)],
    )
    for r in rejected:
        connection.execute(
            "INSERT INTO rejected_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [ingest_id, r.row, r.column, r.value, r.reason, None, None, None],
        )
    report = FileReport(str(path), fmt.name, "loaded", ingest_id, rows_read, rows_loaded,
                        source=source, rejected=rejected, replaced=replaced)
    report.loaded, report.periods = _loaded_sums(connection, ingest_id)
    report.rejected_sums = (_rejected_sums(connection, charges, valid) if bad_periods
                            else {m: Decimal(0) for m in MEASURES})
    _check_ties(path, report, source_sums)
    return report


def _one_pass_checks(connection, fmt: Format, raw: Raw, source_sums: dict[str, str], currency: str, valid: str):
    """The checking pass in one scan: rows, the source's own sums (TRY_CAST, so that a bad number
    is reported by ``_check_numbers`` rather than aborting the scan), bad numbers, currencies and
    rows with an unreadable charge period."""
    present = [raw.first(c) for c in fmt.numeric if raw.has(c)]
    bad = " + ".join(
        f"count(*) FILTER (WHERE NULLIF(TRIM({q(c)}), '') IS NOT NULL AND TRY_CAST(TRIM({q(c)}) AS {DECIMAL}) IS NULL)"
        for c in present
    ) or "0"
    lenient = [_BARE_CAST.sub("TRY_CAST(", sql) for sql in source_sums.values()]
    sums = [f"CAST({sql} AS {DECIMAL})" for sql in lenient]
    currencies = f"count(DISTINCT {currency})" if currency != "NULL" else "0"
    row = connection.execute(
        "SELECT " + ", ".join(["count(*)", *sums, bad, currencies, f"count(*) FILTER (WHERE NOT ({valid}))"])
        + " FROM raw_rows"
    ).fetchall()[0]
    return row[0], row[1:1 + len(sums)], row[-3], row[-2], row[-1]


def _check_numbers(connection, path: Path, fmt: Format, raw: Raw) -> None:
    present = [raw.first(c) for c in fmt.numeric if raw.has(c)]
    if not present:
        return
    bad = [
        f"min({ROW}) FILTER (WHERE NULLIF(TRIM({q(c)}), '') IS NOT NULL "
        f"AND TRY_CAST(TRIM({q(c)}) AS {DECIMAL}) IS NULL)"
        for c in present
    ]
    first_bad = connection.execute(f"SELECT {', '.join(bad)} FROM raw_rows").fetchone()
    found = [(row, column) for row, column in zip(first_bad, present) if row is not None]
    if found:
        row, column = min(found)
        value = connection.execute(f"SELECT {q(column)} FROM raw_rows WHERE {ROW} = ?", [row]).fetchone()[0]
        raise InputError(str(path), f"'{value}' is not a number", row=row, column=column)


def _check_currency(connection, path: Path, currency: str) -> None:
    if currency == "NULL":
        return
    first = connection.execute(
        f"SELECT {currency}, min({ROW}) FROM raw_rows WHERE {currency} IS NOT NULL GROUP BY 1 ORDER BY 2 LIMIT 2"
    ).fetchall()
    if len(first) > 1:
        (one, _), (other, row) = first
        raise InputError(
            str(path),
            f"mixes currencies: {one} from the first row, {other} here; load one currency per ledger "
            "(split the export by BillingCurrency)",
            row=row,
        )


def _rejections(connection, path, charges, start, end, start_column, end_column, valid) -> list[Rejection]:
    rows = connection.execute(
        f"SELECT {ROW}, {q(start_column)}, {q(end_column)}, ({start}) IS NULL, ({end}) IS NULL "
        f"FROM raw_rows WHERE NOT ({valid}) ORDER BY {ROW}"
    ).fetchall()
    out = []
    for row, start_text, end_text, start_bad, end_bad in rows:
        if start_bad:
            column, value = start_column, start_text
            reason = "missing charge period start" if start_text is None else f"'{start_text}' is not a timestamp"
        elif end_bad:
            column, value = end_column, end_text
            reason = "missing charge period end" if end_text is None else f"'{end_text}' is not a timestamp"
        else:
            column, value = end_column, end_text
            reason = f"charge period ends ({end_text}) before it starts ({start_text})"
        out.append(Rejection(str(path), row, column, value, reason))
    return out


def _insert_charges(connection, ingest_id, fmt, raw, charges, start, end, valid,
                    by_insertion_order: bool = False) -> None:
    """``by_insertion_order``: ``raw_rows`` has no row numbers and every row is valid, so the rows go
    in in file order (DuckDB preserves insertion order) and ``source_row`` follows from ``rowid``."""
    names = [c.name for c in CHARGE_COLUMNS]
    inner = dict(charges)
    inner["charge_period_start"] = start
    inner["charge_period_end"] = end
    select = ", ".join(f"{sql} AS {name}" for name, sql in inner.items())
    stored = ", ".join(n if n in inner else f"NULL AS {n}" for n in names)
    def per_hour(quantity_sql: str) -> str:
        # DECIMAL / INTEGER is DOUBLE in DuckDB: keep one-hour rows exact, spread longer ones
        return f"CASE WHEN {hours} = 1 THEN {quantity_sql} ELSE CAST({quantity_sql} / {hours} AS {DECIMAL}) END"

    helpers = fmt.pool_helpers(raw) if fmt.pool_helpers else {}
    helpers_open = ("SELECT *, " + ", ".join(f"{sql} AS {name}" for name, sql in helpers.items()) + " FROM (") if helpers else ""
    helpers_close = ")" if helpers else ""
    pool, quantity = fmt.pool(raw)
    pool_2, quantity_2 = fmt.second_pool(raw) if fmt.second_pool else ("NULL", "NULL")
    hours = (
        "(date_diff('hour', date_trunc('hour', charge_period_start), "
        "date_trunc('hour', charge_period_end - INTERVAL 1 MICROSECOND)) + 1)"
    )
    granularity = (
        "CASE WHEN charge_period_end - charge_period_start = INTERVAL 1 HOUR THEN 'hour' "
        "WHEN charge_period_end - charge_period_start = INTERVAL 1 DAY THEN 'day' ELSE 'other' END"
    )
    connection.execute(
        f"INSERT INTO charges SELECT {ingest_id} AS ingest_id, {ROW} AS source_row, {stored}, "
        f"{hours} AS period_hours, {granularity} AS granularity, __pool AS pool, "
        f"{per_hour('__quantity')} AS hourly_quantity, __pool_2 AS pool_2, "
        f"{per_hour('__quantity_2')} AS hourly_quantity_2 FROM ("
        f"  SELECT *, {pool} AS __pool, {quantity} AS __quantity, {pool_2} AS __pool_2, "
        f"  {quantity_2} AS __quantity_2 FROM ({helpers_open}"
        f"    SELECT {ROW}, {select} FROM raw_rows WHERE {'TRUE' if by_insertion_order else valid}){helpers_close})"
    )
    if by_insertion_order:
        connection.execute(
            "UPDATE charges SET source_row = rowid - (SELECT min(rowid) FROM charges WHERE ingest_id = ?) + 2 "
            "WHERE ingest_id = ?", [ingest_id, ingest_id])


def _resolve_overlaps(connection, path: Path, ingest_id: int, replace: bool) -> list[int]:
    spans = (
        "SELECT ingest_id, provider, billing_account_id, billing_period_start, charge_category, "
        "min(charge_period_start) AS first_hour, max(charge_period_end) AS last_hour "
        "FROM charges WHERE {where} GROUP BY ALL"
    )
    clashes = connection.execute(
        f"SELECT DISTINCT old.ingest_id, i.file, new.provider, new.billing_account_id, "
        f"CAST(new.billing_period_start AS VARCHAR) "
        f"FROM ({spans.format(where=f'ingest_id = {ingest_id}')}) new "
        f"JOIN ({spans.format(where=f'ingest_id <> {ingest_id}')}) old "
        "ON new.provider IS NOT DISTINCT FROM old.provider "
        "AND new.billing_account_id IS NOT DISTINCT FROM old.billing_account_id "
        "AND new.billing_period_start IS NOT DISTINCT FROM old.billing_period_start "
        "AND new.charge_category IS NOT DISTINCT FROM old.charge_category "
        "AND new.first_hour < old.last_hour AND old.first_hour < new.last_hour "
        "JOIN ingests i ON i.ingest_id = old.ingest_id ORDER BY 1"
    ).fetchall()
    if not clashes:
        return []
    if not replace:
        old_id, old_file, provider, account, period = clashes[0]
        raise InputError(
            str(path),
            f"overlaps charges already loaded from {old_file} (ingest {old_id}): provider {provider}, "
            f"billing account {account}, billing period from {period}. Loading both would count them "
            "twice; pass --replace to replace the earlier file",
        )
    old_ids = sorted({c[0] for c in clashes})
    for old in old_ids:
        for table in ("charges", "rejected_rows", "ingests"):
            connection.execute(f"DELETE FROM {table} WHERE ingest_id = ?", [old])
    return old_ids


def _loaded_sums(connection, ingest_id: int) -> tuple[dict[str, Decimal], list[PeriodTotals]]:
    measures = ", ".join(f"coalesce(sum({_LEDGER_MEASURE[m]}), 0)" for m in MEASURES)
    rows = connection.execute(
        f"SELECT coalesce(provider, '(no provider)'), coalesce(CAST(billing_period_start AS DATE)::VARCHAR, ''), "
        f"count(*), {measures} FROM charges WHERE ingest_id = ? GROUP BY ALL ORDER BY 1, 2",
        [ingest_id],
    ).fetchall()
    periods = [PeriodTotals(r[0], r[1], r[2], dict(zip(MEASURES, r[3:]))) for r in rows]
    loaded = {m: sum((p.sums[m] for p in periods), Decimal(0)) for m in MEASURES}
    return loaded, periods


def _rejected_sums(connection, charges: dict[str, str], valid: str) -> dict[str, Decimal]:
    sums = ", ".join(f"coalesce(sum({charges[_LEDGER_MEASURE[m]]}), 0)" for m in MEASURES)
    row = connection.execute(f"SELECT {sums} FROM raw_rows WHERE NOT ({valid})").fetchone()
    return dict(zip(MEASURES, (Decimal(v) for v in row)))


def _check_ties(path: Path, report: FileReport, source_sums: dict[str, str]) -> None:
    """Loaded + rejected must equal the source's own sums, exactly; else nothing is loaded."""
    for measure in source_sums:
        total = report.loaded[measure] + report.rejected_sums[measure]
        if total != report.source[measure]:
            raise InputError(
                str(path),
                f"{measure} does not tie: the file sums to {report.source[measure]}, "
                f"loaded {report.loaded[measure]} + rejected {report.rejected_sums[measure]}; nothing was loaded",
            )
