"""The SQL that turns one file's raw rows into ledger charge rows: its format's mapping, the pool
rules, the hours each charge spans, and the rows with an unreadable charge period left out.

Written once per file at ingest and kept in the ledger; ``billing.ledger`` runs it as a view over
the file's stored copy. Layers, innermost first: the format's charge columns (joined with the
columns it computes per distinct key, ``Format.keyed``), the pools, then the stored columns in the
ledger's order and types.
"""

from __future__ import annotations

from billing.formats.base import Format, Raw, q
from billing.ledger_schema import ALL_COLUMNS, CHARGE_COLUMNS, DECIMAL
from billing.reading import ROW

HOURS = (
    "(date_diff('hour', date_trunc('hour', charge_period_start), "
    "date_trunc('hour', charge_period_end - INTERVAL 1 MICROSECOND)) + 1)"
)
"""Clock hours a charge touches: what pool-hours spread it over."""

GRANULARITY = (
    "CASE WHEN charge_period_end - charge_period_start = INTERVAL 1 HOUR THEN 'hour' "
    "WHEN charge_period_end - charge_period_start = INTERVAL 1 DAY THEN 'day' ELSE 'other' END"
)


def period(fmt: Format, raw: Raw) -> tuple[str, str, str, str]:
    """(start SQL, end SQL, raw start column, raw end column)."""
    start_column = raw.first(*fmt.period.start) or fmt.period.start[0]
    start = raw.ts(*fmt.period.start)
    if fmt.period.end:
        end_column = raw.first(*fmt.period.end) or fmt.period.end[0]
        return start, raw.ts(*fmt.period.end), start_column, end_column
    return start, f"({start} + INTERVAL 1 DAY)", start_column, start_column


def valid_period(fmt: Format, raw: Raw) -> str:
    start, end, _, _ = period(fmt, raw)
    return f"({start}) IS NOT NULL AND ({end}) IS NOT NULL AND ({end}) > ({start})"


KEY_HASH = "hash({})"
"""The hash the per-key values are joined on (a test makes it collide)."""


def _per_hour(quantity_sql: str) -> str:
    # DECIMAL / INTEGER is DOUBLE in DuckDB: keep one-hour rows exact, spread longer ones
    return f"CASE WHEN {HOURS} = 1 THEN {quantity_sql} ELSE CAST({quantity_sql} / {HOURS} AS {DECIMAL}) END"


def _rows_with_keyed(fmt: Format, raw: Raw, relation: str, by_hash: bool) -> tuple[str, dict[str, str]]:
    """FROM clause over the raw rows joined with the per-key values, and those values' SQL.
    ``by_hash``: join on one 64-bit hash of the key columns (5x faster than comparing 8 strings). Two
    distinct keys of a file sharing a hash would repeat their rows: the caller counts the mapped
    rows and maps again without the hash if they are more than the file's."""
    source = f"({relation}) raw_rows"
    if fmt.keyed is None:
        return source, {}
    keyed = fmt.keyed(raw)
    keys = ", ".join(q(k) for k in keyed.keys)
    first = ", ".join(f"{sql} AS {name}" for name, sql in keyed.layers[0].items())
    looked = f"SELECT {keys}, {first} FROM (SELECT DISTINCT {keys} FROM ({relation}))"
    for layer in keyed.layers[1:]:
        looked = f"SELECT *, {', '.join(f'{sql} AS {name}' for name, sql in layer.items())} FROM ({looked})"
    exposed = ", ".join(keyed.exposed)
    if by_hash:
        looked = f"SELECT {KEY_HASH.format(keys)} AS __key_hash, {exposed} FROM ({looked})"
        on = f"{KEY_HASH.format(', '.join(f'raw_rows.{q(k)}' for k in keyed.keys))} = looked.__key_hash"
    else:
        aliases = ", ".join(f"{q(k)} AS __key_{i}" for i, k in enumerate(keyed.keys))
        looked = f"SELECT {aliases}, {exposed} FROM ({looked})"
        on = " AND ".join(f"raw_rows.{q(k)} IS NOT DISTINCT FROM looked.__key_{i}" for i, k in enumerate(keyed.keys))
    return f"{source} LEFT JOIN ({looked}) looked ON {on}", {n: f"looked.{n}" for n in keyed.exposed}


def charge_rows_sql(ingest_id: int, fmt: Format, raw: Raw, relation: str, by_hash: bool = True,
                    with_keyed: bool = True) -> str:
    """Ledger charge rows of one file, in ``ALL_COLUMNS`` order and types, from ``relation`` (its
    raw rows with the row number ``__row``). ``by_hash``: see ``_rows_with_keyed``. Without
    ``with_keyed`` the per-key columns (and so the pools) are NULL: the rows for what needs none of
    them, read without the join."""
    start, end, _, _ = period(fmt, raw)
    inner = dict(fmt.charges(raw))
    inner["charge_period_start"] = start
    inner["charge_period_end"] = end
    if with_keyed:
        source, keyed = _rows_with_keyed(fmt, raw, relation, by_hash)
    else:
        source, keyed = f"({relation}) raw_rows", {n: "NULL" for n in (fmt.keyed(raw).exposed if fmt.keyed else ())}
    select = ", ".join([f"{sql} AS {name}" for name, sql in inner.items()]
                       + [f"{sql} AS {name}" for name, sql in keyed.items()])
    layers = f"SELECT raw_rows.{ROW} AS {ROW}, {select} FROM {source} WHERE {valid_period(fmt, raw)}"
    pool, quantity = fmt.pool(raw)
    pool_2, quantity_2 = fmt.second_pool(raw) if fmt.second_pool else ("NULL", "NULL")
    layers = (f"SELECT *, {pool} AS __pool, {quantity} AS __quantity, {pool_2} AS __pool_2, "
              f"{quantity_2} AS __quantity_2 FROM ({layers})")
    values = {c.name: c.name if c.name in inner or c.name in keyed else "NULL" for c in CHARGE_COLUMNS}
    values.update({
        "ingest_id": str(ingest_id),
        "source_row": ROW,
        "period_hours": HOURS,
        "granularity": GRANULARITY,
        "pool": "__pool",
        "hourly_quantity": _per_hour("__quantity"),
        "pool_2": "__pool_2",
        "hourly_quantity_2": _per_hour("__quantity_2"),
    })
    columns = ", ".join(f"CAST({values[c.name]} AS {c.sql_type}) AS {c.name}" for c in ALL_COLUMNS)
    return f"SELECT {columns} FROM ({layers})"
