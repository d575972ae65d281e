"""What every billing-export format declares, and the SQL pieces its mapping is written with.

A format maps the raw columns of one export (read as text) onto the ledger's charge columns
(``billing.ledger_schema``) with one SQL expression per column. Numbers and timestamps are
checked before the mapping runs (``billing.ingest``), so the expressions may cast freely.
"""

from __future__ import annotations

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


class Raw:
    """The raw columns of one file: builds expressions that are NULL for absent columns."""

    def __init__(self, columns: Collection[str]):
        self.columns = list(columns)
        self._present = set(columns)
        self.context: dict[str, str] = {}
        """What the format's ``inspect`` found out about the whole file (e.g. Azure's cost view)."""

    def has(self, column: str) -> bool:
        return column in self._present

    def first(self, *columns: str) -> str | None:
        """The first of ``columns`` the file has (for renamed columns), or None."""
        return next((c for c in columns if c in self._present), None)

    def text(self, *columns: str) -> str:
        name = self.first(*columns)
        return trimmed(q(name)) if name else NULL

    def num(self, *columns: str) -> str:
        name = self.first(*columns)
        return f"CAST({trimmed(q(name))} AS {DECIMAL})" if name else NULL

    def ts(self, *columns: str) -> str:
        name = self.first(*columns)
        return f"parse_ts({q(name)})" if name else NULL


@dataclass(frozen=True)
class Period:
    """Where a row's charge period comes from: start and end columns, or a day column."""

    start: tuple[str, ...]
    end: tuple[str, ...] = ()
    """Empty: the period is the day that starts at ``start``."""


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
    values) that ``charges`` gives; a NULL pool where no commitment covers the row."""
    pool_helpers: Callable[[Raw], dict[str, str]] | None = None
    """Optional: values the pool rules use several times, computed once per row (in a layer between
    the charge columns and ``pool``, which may then name them)."""
    second_pool: Callable[[Raw], tuple[str, str]] | None = None
    """Optional: a second (pool, quantity) the same charge uses (a GCP machine type's RAM)."""
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
