"""Reading one export file as text columns with row numbers, and recognizing its format."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb

from billing.formats import FORMATS
from billing.formats.base import Format, is_number_type, is_time_type, q, sql_literal
from models.errors import InputError

ROW = "__row"
"""The row as a spreadsheet shows it: the header is row 1, the first charge row 2."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_parquet(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == b"PAR1"


def raw_relation(path: Path) -> str:
    """SQL for the file's rows as the file types them (a CSV's as text), plus the row number ``__row``."""
    if is_parquet(path):
        source = f"read_parquet({sql_literal(str(path))}, file_row_number = true)"
        return f"SELECT file_row_number + 2 AS {ROW}, * EXCLUDE (file_row_number) FROM {source}"
    return f"SELECT row_number() OVER () + 1 AS {ROW}, * FROM {_csv(path)}"


def _csv(path: Path) -> str:
    return (
        f"read_csv({sql_literal(str(path))}, header = true, all_varchar = true, strict_mode = true, "
        "delim = ',', quote = '\"', escape = '\"', nullstr = ['NULL', 'null', ''], "
        "null_padding = false, parallel = true)"
    )


def column_types(connection: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """The file's columns in order, each with its SQL type (VARCHAR for every CSV column)."""
    try:
        described = connection.execute(f"DESCRIBE {raw_relation(path)}").fetchall()
    except duckdb.Error as error:
        raise InputError(str(path), f"cannot be read as a billing export: {first_line(error)}") from None
    return {name: sql_type for name, sql_type, *_ in described if name != ROW}


def kept_type(sql_type: str) -> str:
    """The type a column is read as: numbers, timestamps and text as the file types them, anything
    else (a Parquet MAP or STRUCT of tags, say) as its text."""
    return sql_type if is_number_type(sql_type) or is_time_type(sql_type) else "VARCHAR"


def parquet_relation(literal: str, types: dict[str, str]) -> str:
    """A Parquet file's rows (``literal``: its path as SQL) with the row number ``__row``, its columns
    as ``kept_type`` gives them (``types`` from ``column_types``)."""
    columns = ", ".join(
        q(n) if kept_type(t) == t else f"CAST({q(n)} AS VARCHAR) AS {q(n)}" for n, t in types.items()
    )
    return (f"SELECT file_row_number + 2 AS {ROW}, {columns} "
            f"FROM read_parquet({literal}, file_row_number = true)")


def keep_copy(connection: duckdb.DuckDBPyConnection, path: Path, stored: Path) -> None:
    """The ledger's own copy of an export: a Parquet file byte for byte, a CSV as Parquet of its
    text cells in file order (so that its row numbers are the CSV's)."""
    if is_parquet(path):
        shutil.copyfile(path, stored)
    else:
        connection.execute(f"COPY (SELECT * FROM {_csv(path)}) TO {sql_literal(str(stored))} (FORMAT parquet)")


def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def recognize(path: Path, columns: list[str]) -> Format:
    present = set(columns)
    for candidate in FORMATS:
        if candidate.detect(present):
            return candidate
    shown = ", ".join(columns[:8]) + (" …" if len(columns) > 8 else "")
    raise InputError(
        str(path),
        "is not a billing export commitplan reads (FOCUS 1.0-1.3, AWS CUR 2.0 or legacy CUR, "
        f"GCP BigQuery billing export, Azure EA/MCA cost details); its columns are: {shown}",
    )


def check_required(path: Path, fmt: Format, columns: list[str]) -> None:
    present = set(columns)
    for spellings in fmt.required:
        if not present.intersection(spellings):
            raise InputError(
                str(path),
                f"a {fmt.name} export must have this column; it is missing",
                column=" or ".join(spellings),
            )
