"""Opening the ledger: a DuckDB file with the tables of ``billing.ledger_schema``, and beside it the
folder of the large source files it was loaded from.

Copying 57 columns of every row into DuckDB tables costs 2 s per million rows, more than reading and
mapping them. So a large file (``billing.ingest.KEEP_ROWS_FROM``) is kept as Parquet in
``<ledger>.sources/`` (a Parquet export byte for byte, a CSV export as its text cells) with the SQL
that maps its rows to charge rows; what each load must remember (sums, spans, pool-hours) is stored
small. ``charges`` is the view over the small files' mapped rows (``charge_rows``) and the large
files' mappings, defined anew on every connection with the folder's path of the moment, so a
ledger moves with its folder.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from billing.formats.base import PARSE_TS_MACRO, sql_literal
from billing.ledger_schema import ALL_COLUMNS, DDL, POOL_ROWS_SQL
from models.errors import InputError

SOURCE_TOKEN = "'__commitplan_source__'"
"""Where a stored mapping SQL names its source file: replaced by the file's path on each open."""


class LedgerError(InputError):
    """The ledger cannot be opened as it is (its source folder moved away, an older layout)."""


def sources_dir(ledger: Path | str) -> Path:
    """The folder of the ledger's source files: ``L.duckdb`` keeps them in ``L.duckdb.sources``."""
    path = Path(ledger)
    return path.with_name(path.name + ".sources")


def open_ledger(path: Path | str, read_only: bool = False, views: bool = True) -> duckdb.DuckDBPyConnection:
    """Connect to (and if needed create) a ledger; timestamps are read and kept in UTC. ``views``:
    define ``charges`` (binding each large file's mapping takes ~0.1 s; the tables need none)."""
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"{path}: no such ledger (create it with `commitplan ingest`)")
    connection = duckdb.connect(str(path), read_only=read_only)
    try:
        connection.execute("SET TimeZone = 'UTC'")
        _refuse_old_layout(connection, path)
        if not read_only:
            for statement in DDL:
                connection.execute(statement)
        connection.execute(PARSE_TS_MACRO)
        if views:
            define_charge_views(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _refuse_old_layout(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    old = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'charges' AND NOT temporary").fetchone()[0]
    if old:
        raise LedgerError(
            str(path), "this ledger was written by an earlier commitplan, which copied the charges into it; "
            "ingest its files again into a new ledger")


def define_charge_views(connection: duckdb.DuckDBPyConnection, ledger: Path | str) -> None:
    """(Re)define ``charges_<id>`` per loaded file, ``charges`` over them all and ``pool_rows``."""
    folder = sources_dir(ledger).resolve()
    has_ingests = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ingests'").fetchone()[0]
    stored = connection.execute(
        "SELECT ingest_id, stored_file, mapping_sql FROM ingests WHERE mapping_sql IS NOT NULL ORDER BY ingest_id"
    ).fetchall() if has_ingests else []
    parts = ["SELECT * FROM charge_rows"] if has_ingests else []
    for ingest_id, stored_file, mapping_sql in stored:
        file = folder / stored_file
        if not file.is_file():
            raise LedgerError(
                str(ledger), f"the copy of a loaded file is missing: {file} (a ledger keeps its files in the "
                f"folder {folder.name} beside it; move or copy the two together)")
        view = f"charges_{ingest_id}"
        connection.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS "
                           + mapping_sql.replace(SOURCE_TOKEN, sql_literal(str(file))))
        parts.append(f"SELECT * FROM {view}")
    if not parts:
        empty = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {c.name}" for c in ALL_COLUMNS)
        parts.append(f"SELECT {empty} WHERE false")
    connection.execute("CREATE OR REPLACE TEMP VIEW charges AS " + " UNION ALL ".join(parts))
    connection.execute("CREATE OR REPLACE TEMP VIEW pool_rows AS " + POOL_ROWS_SQL.format(charges="charges"))
