"""What every billing-export format declares, and the SQL pieces its mapping is written with.

A format maps the raw columns of one export (read as text) onto the ledger's charge columns
(``billing.ledger_schema``) with one SQL expression per column. Numbers and timestamps are
checked before the mapping runs (``billing.ingest``), so the expressions may cast freely.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

DECIMAL = "DECIMAL(38, 12)"
NULL = "NULL"


def trimmed(column_sql: str) -> str:
    """``NULLIF(TRIM(x), '')``, without TRIM's copy for the usual cell with nothing to trim (TRIM strips
    spaces, ASCII or not; strlen <> length spots any non-ASCII character): 3x cheaper per cell."""
    return (f"CASE WHEN {column_sql} LIKE ' %' OR {column_sql} LIKE '% ' OR strlen({column_sql}) <> length({column_sql}) "
            f"THEN NULLIF(TRIM({column_sql}), '') ELSE NULLIF({column_sql}, '') END")


def q(column: str) -> str:
    """A raw column name quoted as an SQL identifier."""
    return '"' + column.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """``text`` (a file's path, say) as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


NUMBER_TYPES = ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "HUGEINT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT",
                "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
TIME_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE")


def is_number_type(sql_type: str) -> bool:
    return sql_type.split("(")[0] in NUMBER_TYPES


def is_time_type(sql_type: str) -> bool:
    return sql_type in TIME_TYPES


class Raw:
    """The raw columns of one file: builds expressions that are NULL for absent columns.

    Columns are text (CSV) unless ``types`` says otherwise: a Parquet file's numbers and timestamps
    are used as they are typed, not printed to text and parsed back (5-10x cheaper per cell)."""

    def __init__(self, columns: Collection[str]):
        self.columns = list(columns)
        self._present = set(columns)
        self.types: dict[str, str] = {}
        """Raw column → its SQL type, where it is not VARCHAR."""
        self.context: dict[str, str] = {}
        """What the format's ``inspect`` found out about the whole file (e.g. Azure's cost view)."""

    def type_of(self, column: str) -> str:
        return self.types.get(column, "VARCHAR")

    def has(self, column: str) -> bool:
        return column in self._present

    def first(self, *columns: str) -> str | None:
        """The first of ``columns`` the file has (for renamed columns), or None."""
        return next((c for c in columns if c in self._present), None)

    def text(self, *columns: str) -> str:
        name = self.first(*columns)
        if not name:
            return NULL
        return trimmed(q(name)) if self.is_text(name) else f"CAST({q(name)} AS VARCHAR)"

    def num(self, *columns: str) -> str:
        name = self.first(*columns)
        if not name:
            return NULL
        if is_number_type(self.type_of(name)):
            return f"CAST({q(name)} AS {DECIMAL})"
        return f"CAST({trimmed(q(name))} AS {DECIMAL})"

    def small_num(self, *columns: str) -> str:
        """A number to multiply: a Parquet DECIMAL of up to 18 digits as typed (exact, and 15x
        cheaper to multiply than a DECIMAL(38, 12)), anything else as ``num``."""
        name = self.first(*columns)
        width = re.fullmatch(r"DECIMAL\((\d+),\s*\d+\)", self.type_of(name)) if name else None
        return q(name) if width and int(width.group(1)) <= 18 else self.num(*columns)

    def ts(self, *columns: str) -> str:
        name = self.first(*columns)
        if not name:
            return NULL
        sql_type = self.type_of(name)
        if sql_type == "TIMESTAMP WITH TIME ZONE":  # its UTC instant, as naive UTC: 20x cheaper than a CAST
            return f"make_timestamp(epoch_us({q(name)}))"
        if is_time_type(sql_type):
            return f"CAST({q(name)} AS TIMESTAMP)"
        return f"parse_ts({q(name)})"

    def is_text(self, column: str) -> bool:
        """Whether the file's column holds text, so that a bad number or timestamp can be in it."""
        return self.type_of(column) == "VARCHAR"


@dataclass(frozen=True)
class Period:
    """Where a row's charge period comes from: start and end columns, or a day column."""

    start: tuple[str, ...]
    end: tuple[str, ...] = ()
    """Empty: the period is the day that starts at ``start``."""


@dataclass(frozen=True)
class Keyed:
    """Values computed per distinct ``keys`` tuple, not per row. A bill repeats its descriptions,
    price details, services and units millions of times: parsing each once makes JSON, regular
    expressions and the pool rules nearly free, and a joined value is not re-evaluated wherever
    later layers use it (DuckDB inlines a subquery's expressions into each use)."""

    keys: tuple[str, ...]
    """Raw columns the values depend on (those the file has)."""
    layers: tuple[dict[str, str], ...]
    """Name → SQL; the first layer over the key columns, each next one also over the names before."""
    exposed: tuple[str, ...]
    """The names the rows get (charge columns, or values the pool rules read)."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("per-key values need at least one key column")


@dataclass(frozen=True)
class Format:
    name: str
    detect: Callable[[set[str]], bool]
    required: tuple[tuple[str, ...], ...]
    """Each entry is a column, given as its accepted spellings (any one of them will do)."""
    numeric: tuple[str, ...]
    """Raw columns that must hold numbers wherever they are not empty."""
    period: Period
    charges: Callable[[Raw], dict[str, str]]
    """Ledger column → SQL expression over the raw columns (columns left out are NULL; keys
    starting with ``_`` are helper values the pool rule may read, not stored)."""
    source_sums: Callable[[Raw], dict[str, str]]
    """BilledCost/EffectiveCost/ListCost → SQL over the raw rows the loaded sums must tie to."""
    pool: Callable[[Raw], tuple[str, str]]
    """(pool id, usage quantity in the pool's unit) as SQL over the ledger columns (and helper
    values) that ``charges`` gives and the names ``keyed`` exposes; a NULL pool where no commitment
    covers the row."""
    second_pool: Callable[[Raw], tuple[str, str]] | None = None
    """Optional: a second (pool, quantity) the same charge uses (a GCP machine type's RAM)."""
    keyed: Callable[[Raw], Keyed] | None = None
    """Optional: columns that depend only on a few raw text columns with few distinct values (JSON
    price details, descriptions): computed once per distinct value and joined back to the rows."""
    inspect: Callable[[object, Raw], dict[str, str]] | None = None
    """Optional: file-level facts read with one query over ``raw_rows`` before mapping."""
    raw: Callable[[Collection[str]], Raw] = Raw
    """How the format addresses the file's columns (CUR reads legacy names as CUR 2.0 ones)."""


PARSE_TS_MACRO = """
CREATE OR REPLACE TEMP MACRO parse_ts(s) AS coalesce(
    CAST(TRY_CAST(TRIM(s) AS TIMESTAMPTZ) AS TIMESTAMP),
    try_strptime(TRIM(s), ['%m/%d/%Y', '%m/%d/%Y %H:%M:%S', '%m/%d/%Y %H:%M', '%Y-%m-%dT%H:%MZ'])
)
"""
"""Timestamps as exports write them: ISO 8601 with or without offset, US dates (Azure EA)."""
