"""Loading billing exports into the ledger, all or nothing, tied to the source to the cent.

One command loads its files in one transaction: a bad file leaves the ledger as it was (its tables,
and no file left in its sources folder). Each file is copied into the ledger's sources folder (a
CSV as Parquet of its text cells) and read from there by DuckDB, streamed, so files larger than
memory load: a checking pass (numbers, currencies, charge periods, the source's own sums), then the
mapped rows' spans and sums and their pool-hours, which the ledger keeps; the rows themselves stay
in the copy (``billing.ledger``). A file already loaded
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

from billing.charge_mapping import charge_rows_sql, period, valid_period
from billing.formats.base import DECIMAL, Format, Raw, q, sql_literal
from billing.ledger import SOURCE_TOKEN, open_ledger, sources_dir
from billing.pool_hours import HOUR_RANGE_SQL, POOL_HOURS_SQL, calendar
from billing.reading import (
    ROW,
    check_required,
    column_types,
    first_line,
    keep_copy,
    kept_type,
    parquet_relation,
    recognize,
    sha256_of,
)
from models.errors import InputError

MEASURES = ("BilledCost", "EffectiveCost", "ListCost")
KEEP_ROWS_FROM = 1_000_000
"""A file with at least this many rows is kept as its copy and read through its mapping; a smaller
one is mapped once into ``charge_rows``, whose queries need no mapping (planning the mapping costs
~0.1 s a query, reading a million mapped rows from a table less)."""
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
           progress: Callable[[str], None] | None = None, keep_rows_from: int | None = None) -> list[FileReport]:
    """Load every file or none: any error rolls the whole command back. ``keep_rows_from``: see
    ``KEEP_ROWS_FROM`` (0 keeps every file's rows in its copy)."""
    keep_rows_from = KEEP_ROWS_FROM if keep_rows_from is None else keep_rows_from
    connection = open_ledger(ledger, views=False)  # a load reads its own file, never ``charges``
    if progress is not None and sys.stdout.isatty():
        connection.execute("SET enable_progress_bar = true")  # DuckDB draws it for passes over ~2 s
    files = _Files(sources_dir(ledger))
    try:
        connection.execute("BEGIN TRANSACTION")
        reports = []
        for path in paths:
            if progress:
                progress(f"reading {path}")
            reports.append(_ingest_file(connection, Path(path), replace, files, keep_rows_from))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        files.undo()
        raise
    finally:
        connection.close()
    files.retire()
    return reports


class _Files:
    """The source copies one command adds (removed if it fails) and replaces (removed once it commits)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.made_folder = False
        self.added: list[Path] = []
        self.retired: list[Path] = []

    def new(self, name: str) -> Path:
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True)
            self.made_folder = True
        path = self.folder / name
        self.added.append(path)
        return path

    def undo(self) -> None:
        for path in self.added:
            path.unlink(missing_ok=True)
        if self.made_folder and not any(self.folder.iterdir()):
            self.folder.rmdir()

    def retire(self) -> None:
        for path in self.retired:
            path.unlink(missing_ok=True)
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def _ingest_file(connection: duckdb.DuckDBPyConnection, path: Path, replace: bool, files: _Files,
                 keep_rows_from: int) -> FileReport:
    if not path.is_file():
        raise InputError(str(path), "no such file")
    digest = sha256_of(path)
    known = connection.execute(
        "SELECT ingest_id, format, rows_read, rows_loaded FROM ingests WHERE sha256 = ?", [digest]
    ).fetchone()
    if known:
        return FileReport(str(path), known[1], "unchanged", known[0], known[2], known[3])
    types = column_types(connection, path)
    columns = list(types)
    fmt = recognize(path, columns)
    check_required(path, fmt, columns)
    ingest_id = connection.execute("SELECT nextval('ingest_ids')").fetchone()[0]
    stored = files.new(f"{ingest_id}-{digest[:16]}.parquet")
    try:
        keep_copy(connection, path, stored)
        raw = fmt.raw(columns)
        raw.types = {n: kept_type(t) for n, t in types.items() if kept_type(t) != "VARCHAR"}
        relation = parquet_relation(SOURCE_TOKEN, types)  # the stored copy's rows, the path left to fill in
        connection.execute("CREATE OR REPLACE TEMP VIEW raw_rows AS "
                           + relation.replace(SOURCE_TOKEN, sql_literal(str(stored))))
        return _load(connection, path, fmt, raw, relation, digest, ingest_id, stored, replace, files, keep_rows_from)
    except duckdb.Error as error:
        raise InputError(str(path), f"cannot be read: {first_line(error)}") from None


def _load(connection, path: Path, fmt: Format, raw: Raw, relation: str, digest: str, ingest_id: int,
          stored: Path, replace: bool, files: _Files, keep_rows_from: int) -> FileReport:
    """``relation``: the stored copy's raw rows, its path as ``SOURCE_TOKEN``."""
    if fmt.inspect is not None:
        _check_numbers(connection, path, fmt, raw)
        raw.context = fmt.inspect(connection, raw)
    start, end, start_column, end_column = period(fmt, raw)
    charges = fmt.charges(raw)
    valid = valid_period(fmt, raw)
    source_sums = fmt.source_sums(raw)
    rows_read, sums, bad_numbers, currencies, bad_periods = _one_pass_checks(
        connection, fmt, raw, source_sums, charges["billing_currency"], valid)
    if bad_numbers:
        _check_numbers(connection, path, fmt, raw)  # raises, naming the first bad cell
    if currencies > 1:
        _check_currency(connection, path, charges["billing_currency"])  # raises, naming the row
    source = dict(zip(source_sums, (v or Decimal(0) for v in sums)))

    rejected = _rejections(connection, path, charges, start, end, start_column, end_column, valid) if bad_periods else []
    rows_loaded = rows_read - len(rejected)
    kept = rows_read >= keep_rows_from
    literal = sql_literal(str(stored))
    for by_hash in (True, False):
        mapping = charge_rows_sql(ingest_id, fmt, raw, relation, by_hash)
        on_file = mapping.replace(SOURCE_TOKEN, literal)
        if kept:
            connection.execute(f"CREATE OR REPLACE TEMP VIEW charges_{ingest_id} AS {on_file}")
            source_rows = f"charges_{ingest_id}"
            span_rows = f"({charge_rows_sql(ingest_id, fmt, raw, relation, with_keyed=False).replace(SOURCE_TOKEN, literal)})"
        else:  # mapped once into the table
            connection.execute(f"INSERT INTO charge_rows {on_file}")
            source_rows = span_rows = f"(SELECT * FROM charge_rows WHERE ingest_id = {ingest_id})"
        if _keep_spans_and_pool_hours(connection, ingest_id, source_rows, span_rows) == rows_loaded:
            break
        for table in ("charge_rows", "ingest_spans", "pool_hour_totals"):  # two keys shared a hash
            connection.execute(f"DELETE FROM {table} WHERE ingest_id = ?", [ingest_id])
    if not kept:
        files.retired.append(stored)  # the copy goes when the command commits
    connection.execute(
        "INSERT INTO ingests VALUES (?, ?, ?, ?, now(), ?, ?, ?, ?, ?)",
        [ingest_id, str(path), digest, fmt.name, rows_read, rows_loaded, len(rejected),
         stored.name if kept else None, mapping if kept else None],
    )
    for r in rejected:
        connection.execute(
            "INSERT INTO rejected_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [ingest_id, r.row, r.column, r.value, r.reason, None, None, None],
        )
    replaced = _resolve_overlaps(connection, path, ingest_id, replace, files)
    report = FileReport(str(path), fmt.name, "loaded", ingest_id, rows_read, rows_loaded,
                        source=source, rejected=rejected, replaced=replaced)
    report.loaded, report.periods = _loaded_sums(connection, ingest_id)
    report.rejected_sums = (_rejected_sums(connection, charges, valid) if bad_periods
                            else {m: Decimal(0) for m in MEASURES})
    _check_ties(path, report, source_sums)
    return report


def _keep_spans_and_pool_hours(connection, ingest_id: int, source_rows: str, span_rows: str) -> int:
    """What the ledger remembers of a file besides its rows (``source_rows``; ``span_rows``: the same
    rows, pools left out): per provider, billing account, period and charge category the rows, span
    and sums; and its pool-hours. Returns how many rows ``source_rows`` has."""
    connection.execute(
        f"INSERT INTO ingest_spans SELECT ingest_id, provider, billing_account_id, billing_period_start, "
        f"charge_category, min(charge_period_start), max(charge_period_end), count(*), sum(billed_cost), "
        f"sum(effective_cost), sum(list_cost) FROM {span_rows} GROUP BY ALL")
    # the pool rows (first and second pool) added up per pool and charge period in one pass: a small
    # temporary table the pool-hours aggregation reads 4 times; their pool-hours are those of the
    # rows, to the digit, as the sum per (pool, hour) is linear in hourly_quantity (spread per row)
    charge = "charge_period_start, charge_period_end, period_hours"
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE new_groups AS SELECT pool, pool_2, {charge}, GROUPING_ID(pool) AS by_pool_2, "
        "count(*) AS rows, sum(hourly_quantity) AS hourly_quantity, sum(hourly_quantity_2) AS hourly_quantity_2 "
        f"FROM {source_rows} GROUP BY GROUPING SETS ((pool, {charge}), (pool_2, {charge}))")
    mapped = connection.execute("SELECT coalesce(sum(rows), 0) FROM new_groups WHERE by_pool_2 = 0").fetchone()[0]
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE new_pool_rows AS SELECT pool, {charge}, hourly_quantity FROM new_groups "
        f"WHERE by_pool_2 = 0 AND pool IS NOT NULL UNION ALL SELECT pool_2 AS pool, {charge}, "
        "hourly_quantity_2 AS hourly_quantity FROM new_groups WHERE by_pool_2 = 1 AND pool_2 IS NOT NULL")
    connection.execute("DROP TABLE new_groups")
    first, end = connection.execute(HOUR_RANGE_SQL.format(charges="new_pool_rows")).fetchall()[0]
    connection.register("calendar_hours", calendar(first, end))
    try:
        connection.execute(
            f"INSERT INTO pool_hour_totals SELECT {ingest_id}, pool, hour, quantity, spread_quantity FROM ("
            + POOL_HOURS_SQL.format(charges="new_pool_rows", hours="calendar_hours") + ")")
    finally:
        connection.unregister("calendar_hours")
        connection.execute("DROP TABLE new_pool_rows")
    return mapped


def _one_pass_checks(connection, fmt: Format, raw: Raw, source_sums: dict[str, str], currency: str, valid: str):
    """The checking pass in one scan: rows, the source's own sums (TRY_CAST, so that a bad number
    is reported by ``_check_numbers`` rather than aborting the scan), bad numbers, currencies and
    rows with an unreadable charge period."""
    present = [raw.first(c) for c in fmt.numeric if raw.has(c) and raw.is_text(raw.first(c))]
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
    present = [raw.first(c) for c in fmt.numeric if raw.has(c) and raw.is_text(raw.first(c))]
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


def _resolve_overlaps(connection, path: Path, ingest_id: int, replace: bool, files: _Files) -> list[int]:
    clashes = connection.execute(
        "SELECT DISTINCT old.ingest_id, i.file, new.provider, new.billing_account_id, "
        "CAST(new.billing_period_start AS VARCHAR) "
        "FROM ingest_spans new JOIN ingest_spans old "
        "ON new.provider IS NOT DISTINCT FROM old.provider "
        "AND new.billing_account_id IS NOT DISTINCT FROM old.billing_account_id "
        "AND new.billing_period_start IS NOT DISTINCT FROM old.billing_period_start "
        "AND new.charge_category IS NOT DISTINCT FROM old.charge_category "
        "AND new.first_hour < old.last_hour AND old.first_hour < new.last_hour "
        "JOIN ingests i ON i.ingest_id = old.ingest_id "
        "WHERE new.ingest_id = ? AND old.ingest_id <> ? ORDER BY 1", [ingest_id, ingest_id]
    ).fetchall()
    if not clashes:
        return []
    if not replace:
        old_id, old_file, provider, account, period_start = clashes[0]
        raise InputError(
            str(path),
            f"overlaps charges already loaded from {old_file} (ingest {old_id}): provider {provider}, "
            f"billing account {account}, billing period from {period_start}. Loading both would count them "
            "twice; pass --replace to replace the earlier file",
        )
    old_ids = sorted({c[0] for c in clashes})
    for old in old_ids:
        stored = connection.execute("SELECT stored_file FROM ingests WHERE ingest_id = ?", [old]).fetchone()[0]
        if stored:
            files.retired.append(files.folder / stored)
        for table in ("charge_rows", "rejected_rows", "ingest_spans", "pool_hour_totals", "ingests"):
            connection.execute(f"DELETE FROM {table} WHERE ingest_id = ?", [old])
    return old_ids


def _loaded_sums(connection, ingest_id: int) -> tuple[dict[str, Decimal], list[PeriodTotals]]:
    measures = ", ".join(f"coalesce(sum({_LEDGER_MEASURE[m]}), 0)" for m in MEASURES)
    rows = connection.execute(
        f"SELECT coalesce(provider, '(no provider)'), coalesce(CAST(billing_period_start AS DATE)::VARCHAR, ''), "
        f"sum(rows), {measures} FROM ingest_spans WHERE ingest_id = ? GROUP BY ALL ORDER BY 1, 2",
        [ingest_id],
    ).fetchall()
    periods = [PeriodTotals(r[0], r[1], int(r[2]), dict(zip(MEASURES, r[3:]))) for r in rows]
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
