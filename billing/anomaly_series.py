"""Daily spend from the ledger, the series the anomaly detector judges.

Spend is ``EffectiveCost`` (amortized: commitment fees spread over the hours they cover) by UTC
day. Hourly rows are summed into their day; a row longer than a day (a daily row that starts at
noon, a monthly fee) is spread over the days it covers in proportion to the time it spends in
each. The unit of the data is a *cell*: one (service, account, region, tracked tag values)
combination; every series judged (a service, an account, a region, a tag value, the total) is a
sum of cells, and cells are what the detector names as the top contributors.

A day on which the ledger holds no charge at all is *missing* (an export gap), not a day of zero
spend: the detector passes over it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from billing.ledger import open_ledger

OWNER_TAG_KEYS = ("owner", "team", "cost_center", "costcenter", "cost-center", "business_unit",
                  "businessunit", "application", "app", "project")
"""Tag keys (compared in lower case, after any ``user:``-style prefix) that name who owns spend, in
order of preference; those present in the ledger are tracked as series when no keys are given,
and the first present is the owner tag."""

CELL_COLUMNS = ("service", "account", "account_name", "region")
NONE = "(none)"


@dataclass
class DailySpend:
    """Spend per cell and day: ``spend[c, t]`` is cell ``c``'s spend on ``days[t]``."""

    days: np.ndarray
    """datetime64[D], every day from the ledger's first to its last (or to ``until``)."""
    present: np.ndarray
    """bool per day: the ledger holds at least one charge that day (else the day is missing)."""
    cells: pd.DataFrame
    """One row per cell: service, account, account_name, region and ``tag:<key>`` per tracked key."""
    spend: np.ndarray
    tag_keys: tuple[str, ...] = ()
    """The tag keys judged as series (the cells also carry the owner key's values)."""
    owner_key: str | None = None

    @property
    def tag_columns(self) -> list[str]:
        return [f"tag:{k}" for k in self.tag_keys]


def _key_path(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''")
    return f"'$.\"{escaped}\"'"


def ledger_tag_keys(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Every tag key in the ledger (the ``tags`` column holds FOCUS JSON objects as text)."""
    rows = connection.execute(
        "SELECT DISTINCT unnest(json_keys(TRY_CAST(tags AS JSON))) FROM charges "
        "WHERE tags IS NOT NULL AND json_type(TRY_CAST(tags AS JSON)) = 'OBJECT'"
    ).fetchall()
    return sorted(r[0] for r in rows if r[0] is not None)


def _plain_key(key: str) -> str:
    return key.lower().split(":")[-1]


def owner_like_keys(keys: list[str]) -> list[str]:
    """The keys of ``keys`` that name an owner, in the order of :data:`OWNER_TAG_KEYS`."""
    rank = {k: i for i, k in enumerate(OWNER_TAG_KEYS)}
    found = [k for k in keys if _plain_key(k) in rank]
    return sorted(found, key=lambda k: (rank[_plain_key(k)], k))


def daily_spend_sql(tag_keys: tuple[str, ...], until: dt.date | None = None) -> str:
    tags = "".join(
        f", json_extract_string(TRY_CAST(tags AS JSON), {_key_path(k)}) AS \"tag:{i}\"" for i, k in enumerate(tag_keys)
    )
    dims = "service, account, account_name, region" + "".join(f', "tag:{i}"' for i in range(len(tag_keys)))
    cut = "" if until is None else f" AND charge_period_start < DATE '{until + dt.timedelta(days=1)}'"
    return f"""
    WITH c AS (
        SELECT CAST(effective_cost AS DOUBLE) AS cost, charge_period_start AS s, charge_period_end AS e,
               coalesce(service_name, '{NONE}') AS service,
               coalesce(sub_account_id, sub_account_name, '{NONE}') AS account,
               sub_account_name AS account_name,
               coalesce(region_id, '{NONE}') AS region{tags}
        FROM charges WHERE charge_period_end > charge_period_start{cut}
    ), spread AS (
        SELECT CAST(s AS DATE) AS day, coalesce(cost, 0) AS cost, {dims} FROM c
        WHERE date_trunc('day', s) = date_trunc('day', e - INTERVAL 1 MICROSECOND)
        UNION ALL
        SELECT CAST(d AS DATE) AS day,
               coalesce(cost, 0) * (epoch(least(e, d + INTERVAL 1 DAY)) - epoch(greatest(s, d)))
                   / (epoch(e) - epoch(s)) AS cost, {dims}
        FROM (SELECT *, unnest(range(date_trunc('day', s), e, INTERVAL 1 DAY)) AS d FROM c
              WHERE date_trunc('day', s) < date_trunc('day', e - INTERVAL 1 MICROSECOND))
    )
    SELECT day, {dims}, sum(cost) AS cost FROM spread GROUP BY ALL
    """


def daily_spend(ledger: Path | str | duckdb.DuckDBPyConnection, tag_keys: list[str] | None = None,
                until: dt.date | None = None) -> DailySpend:
    """Daily spend per cell. ``tag_keys``: the tag keys to track (None: the owner-like keys the
    ledger has, :data:`OWNER_TAG_KEYS`); ``until``: ignore charges that start after this day."""
    own = not isinstance(ledger, duckdb.DuckDBPyConnection)
    connection = open_ledger(ledger, read_only=True) if own else ledger
    try:
        present_keys = ledger_tag_keys(connection)
        owners = owner_like_keys(present_keys)
        tracked = tuple(owners if tag_keys is None else tag_keys)
        owner = owners[0] if owners else None
        keys = tracked + ((owner,) if owner is not None and owner not in tracked else ())
        frame = connection.execute(daily_spend_sql(keys, until)).df()
    finally:
        if own:
            connection.close()
    frame = frame.rename(columns={f"tag:{i}": f"tag:{k}" for i, k in enumerate(keys)})
    if until is not None:
        frame = frame[pd.to_datetime(frame["day"]).dt.date <= until]
    return from_frame(frame, tracked, owner)


def from_frame(frame: pd.DataFrame, tag_keys: tuple[str, ...] = (), owner_key: str | None = None) -> DailySpend:
    """Cells × days from rows (day, service, account, account_name, region, tag:<key>…, cost);
    also the way to feed the detector spend that does not come from a ledger."""
    keys = tuple(tag_keys) + ((owner_key,) if owner_key is not None and owner_key not in tag_keys else ())
    columns = list(CELL_COLUMNS) + [f"tag:{k}" for k in keys]
    if frame.empty:
        empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
        return DailySpend(np.array([], dtype="datetime64[D]"), np.array([], dtype=bool), empty,
                          np.zeros((0, 0)), tuple(tag_keys), owner_key)
    frame = frame.copy()
    day = pd.to_datetime(frame["day"]).to_numpy().astype("datetime64[D]")
    for column in columns:
        if column not in frame:
            frame[column] = None
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    keys = frame[columns].map(lambda v: "\0" if v is None else str(v))
    codes, uniques = pd.MultiIndex.from_frame(keys).factorize(sort=True)
    cells = pd.DataFrame(list(uniques), columns=columns).map(lambda v: None if v == "\0" else v)
    first, last = day.min(), day.max()
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype="datetime64[D]")
    index = (day - first).astype(int)
    spend = np.zeros((len(cells), len(days)))
    np.add.at(spend, (codes, index), frame["cost"].to_numpy(dtype=float))
    present = np.zeros(len(days), dtype=bool)
    present[index] = True
    return DailySpend(days, present, cells, spend, tuple(tag_keys), owner_key)


@dataclass
class Series:
    """The series judged: the total, then each value of each dimension; each a sum of cells."""

    dimension: list[str]
    value: list[str]
    name: list[str | None]
    members: list[np.ndarray]
    spend: np.ndarray


def series_of(daily: DailySpend) -> Series:
    """The total, then every value of every dimension, each a sum of cells."""
    cells = daily.cells
    out = Series(["total"], ["all"], [None], [np.arange(len(cells))], None)
    for dimension in ["service", "account", "region"] + daily.tag_columns:
        for value, rows in cells.groupby(dimension, sort=True).indices.items():
            if value is None:
                continue
            names = cells["account_name"].iloc[rows].dropna() if dimension == "account" else pd.Series([])
            out.dimension.append(dimension)
            out.value.append(str(value))
            out.name.append(str(names.mode().iloc[0]) if len(names) else None)
            out.members.append(np.asarray(rows))
    out.spend = np.stack([daily.spend[m].sum(axis=0) for m in out.members])
    return out
