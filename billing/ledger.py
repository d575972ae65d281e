"""Opening the ledger: a DuckDB file with the tables of ``billing.ledger_schema``."""

from __future__ import annotations

from pathlib import Path

import duckdb

from billing.formats.base import PARSE_TS_MACRO
from billing.ledger_schema import DDL


def open_ledger(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Connect to (and if needed create) a ledger; timestamps are read and kept in UTC."""
    path = Path(path)
    if read_only and not path.exists():
        raise FileNotFoundError(f"{path}: no such ledger (create it with `commitplan ingest`)")
    connection = duckdb.connect(str(path), read_only=read_only)
    connection.execute("SET TimeZone = 'UTC'")
    if not read_only:
        for statement in DDL:
            connection.execute(statement)
    connection.execute(PARSE_TS_MACRO)
    return connection
