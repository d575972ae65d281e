"""Reading one export file as text columns with row numbers, and recognizing its format."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from billing.formats import FORMATS
from billing.formats.base import Format, q
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


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def raw_relation(path: Path) -> str:
    """SQL for the file's rows, every column as text, plus the row number ``__row``."""
    if is_parquet(path):
        source = f"read_parquet({_literal(path)}, file_row_number = true)"
        return f"SELECT file_row_number + 2 AS {ROW}, * EXCLUDE (file_row_number) FROM {source}"
    return f"SELECT row_number() OVER () + 1 AS {ROW}, * FROM {_csv(path)}"


def _csv(path: Path) -> str:
    return (
        f"read_csv({_literal(path)}, header = true, all_varchar = true, strict_mode = true, "
        "delim = ',', quote = '\"', escape = '\"', nullstr = ['NULL', 'null', ''], "
        "null_padding = false, parallel = true)"
    )


def unnumbered_relation(path: Path) -> str | None:
    """A CSV's rows without row numbers (``__row`` NULL): ``row_number() OVER ()`` makes a scan
    single-threaded, and row numbers are needed only to name a bad row (then the numbered relation
    is used) and for ``source_row`` (then taken from the insertion order). None for Parquet, whose
    row numbers cost nothing."""
    if is_parquet(path):
        return None
    return f"SELECT CAST(NULL AS BIGINT) AS {ROW}, * FROM {_csv(path)}"


def columns_of(connection: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    try:
        described = connection.execute(f"DESCRIBE {raw_relation(path)}").fetchall()
    except duckdb.Error as error:
        raise InputError(str(path), f"cannot be read as a billing export: {first_line(error)}") from None
    return [name for name, *_ in described if name != ROW]


def text_relation(path: Path, names: list[str]) -> str:
    """The raw relation with every column (``names``, from ``columns_of``) cast to text: Parquet
    files arrive typed."""
    if not is_parquet(path):
        return raw_relation(path)
    casts = ", ".join(f"CAST({q(n)} AS VARCHAR) AS {q(n)}" for n in names)
    return f"SELECT {ROW}, {casts} FROM ({raw_relation(path)})"


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
