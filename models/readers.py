"""Readers for the input files of DESIGN.md §4: usage, price book, existing commitments, plan JSON.

Every problem is raised as an ``InputError`` naming the file, the row as a spreadsheet shows it
(the header is row 1) and the column. Blank lines are skipped but still counted, so row numbers
match the file (a quoted cell spanning several lines would shift them; none of our formats has one).
Cells are stripped of surrounding whitespace. Checks run column by column, so with several
problems the first one reported is the first bad cell of the first column checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from models.commitments import Commitment, Purchase
from models.csv_cells import (
    HOUR,
    CsvTable,
    category_codes,
    existing_file,
    hour_problem,
    normalized,
    open_csv,
    open_text_csv,
    parse_hours,
    parse_numbers,
    parse_times,
    raise_first,
    require_text,
)
from models.errors import InputError
from models.pricing import DEFAULT_INCREMENT, Offering, OfferingKind, Payment, PriceBook
from models.usage import UsageMatrix

USAGE_COLUMNS = ("timestamp", "pool", "quantity")
PRICE_COLUMNS = ("offering", "kind", "term_months", "payment", "pool", "hourly_rate", "upfront")
EXISTING_COLUMNS = ("offering", "quantity", "start", "end")
PLAN_KEYS = ("offering", "quantity", "start")


# --------------------------------------------------------------------------- usage


def read_usage(path: str | Path, known_pools: Collection[str] | None = None) -> UsageMatrix:
    """Read a canonical usage CSV (``timestamp,pool,quantity``; .csv or .csv.gz) into a dense matrix.

    The window runs from the first hour to the last one given; missing rows are zeros and pools
    are sorted. Vectorized throughout: timestamps and pools are parsed once per distinct value.
    """
    csv = open_csv(
        path,
        USAGE_COLUMNS,
        dtype={"timestamp": "category", "pool": "category"},
        keep_default_na=False,
        na_values={"quantity": [""]},
    )
    t_code, t_text = category_codes(csv, "timestamp")
    p_code, p_text = category_codes(csv, "pool")
    raw_quantity = csv.frame["quantity"]
    fast = pd.api.types.is_float_dtype(raw_quantity)
    q_blank = raw_quantity.isna() if fast else raw_quantity.fillna("").astype(str).str.strip() == ""
    keep = csv.drop_blank((t_text == "")[t_code] & (p_text == "")[p_code] & q_blank.to_numpy())
    t_code, p_code = t_code[keep], p_code[keep]

    raise_first(csv, "pool", (p_text == "")[p_code], lambda i: "pool is empty")
    if known_pools is not None:
        unknown = ~np.isin(p_text, list(known_pools))
        raise_first(
            csv, "pool", unknown[p_code],
            lambda i: f"pool '{p_text[p_code[i]]}' has no on-demand price in the price book",
        )
    times, bad_time = parse_hours(t_text)
    raise_first(csv, "timestamp", bad_time[t_code], lambda i: hour_problem("timestamp", t_text[t_code[i]]))

    quantity = raw_quantity.to_numpy(dtype=float)[keep] if fast else None
    if quantity is None or not (np.isfinite(quantity) & (quantity >= 0)).all():
        quantity = parse_numbers(csv, "quantity", csv.texts("quantity"))

    return _usage_matrix(csv, times, t_code, p_text, p_code, quantity)


def _usage_matrix(
    csv: CsvTable, times: pd.DatetimeIndex, t_code: np.ndarray, p_text: np.ndarray, p_code: np.ndarray, quantity: np.ndarray
) -> UsageMatrix:
    start = times.min()  # NaT only for texts seen on blank rows, which min() skips
    hour_of_text = ((times - start) // HOUR).to_numpy(dtype=np.float64)
    hour = np.nan_to_num(hour_of_text, nan=-1).astype(np.int64)[t_code]
    pools = sorted(p for p in p_text if p)
    rank = {p: k for k, p in enumerate(pools)}
    pool = np.array([rank.get(p, -1) for p in p_text], dtype=np.int64)[p_code]
    hours = int(hour.max()) + 1

    key = hour * len(pools) + pool
    if np.bincount(key, minlength=hours * len(pools)).max() > 1:
        i = int(np.argmax(pd.Series(key).duplicated().to_numpy()))
        first = int(np.argmax(key == key[i]))
        when = (start + int(hour[i]) * HOUR).isoformat()
        raise csv.error(i, None, f"pool '{pools[pool[i]]}' at {when} is given twice, first in row {csv.lines[first]}")

    values = np.zeros((hours, len(pools)))
    values[hour, pool] = quantity
    return UsageMatrix(start=start.to_pydatetime(), pools=tuple(pools), values=values)


# --------------------------------------------------------------------------- price book


def read_price_book(path: str | Path) -> PriceBook:
    """Read a price book CSV (DESIGN.md §4); term, payment and upfront are ignored on on_demand rows."""
    csv, cells = open_text_csv(path, PRICE_COLUMNS, optional=("increment",))
    require_text(csv, "offering", cells["offering"])
    kinds = _kinds(csv, cells["kind"])
    require_text(csv, "pool", cells["pool"])
    commit = np.array([k is not OfferingKind.ON_DEMAND for k in kinds])
    savings = np.array([k is OfferingKind.SAVINGS_PLAN for k in kinds])
    raise_first(
        csv, "offering", commit & (cells["offering"] == "on_demand"),
        lambda i: "the offering id 'on_demand' is reserved for kind on_demand",
    )

    rates = parse_numbers(csv, "hourly_rate", cells["hourly_rate"])
    raise_first(
        csv, "hourly_rate", savings & (rates <= 0),
        lambda i: f"a savings plan rate must be > 0, got {cells['hourly_rate'][i]}",
    )
    terms = parse_numbers(csv, "term_months", cells["term_months"], strict=True, whole=True, rows=commit)
    payments = _payments(csv, cells["payment"], commit)
    upfronts = parse_numbers(csv, "upfront", cells["upfront"], rows=commit)
    increments = _increments(csv, cells, kinds, commit)

    fields = {"term_months": terms, "payment": payments, "upfront": upfronts, "increment": increments}
    on_demand, rows_of = _group_rows(csv, cells, kinds, fields)
    offerings: dict[str, Offering] = {}
    for offering, pool_rows in rows_of.items():
        j = next(iter(pool_rows.values()))
        try:
            offerings[offering] = Offering(
                id=offering,
                kind=kinds[j],
                term_months=int(terms[j]),
                payment=payments[j],
                upfront=float(upfronts[j]),
                increment=float(increments[j]),
                rates={pool: float(rates[i]) for pool, i in pool_rows.items()},
            )
        except ValidationError as exc:  # guarded above; kept so nothing escapes as a raw pydantic error
            raise csv.error(j, None, f"offering '{offering}' is invalid: {exc.errors()[0]['msg']}") from None
    return PriceBook(on_demand={pool: float(rates[i]) for pool, i in on_demand.items()}, offerings=offerings)


def _kinds(csv: CsvTable, texts: np.ndarray) -> list[OfferingKind]:
    known = {k.value: k for k in OfferingKind}
    parsed = [known.get(normalized(t)) for t in texts]
    allowed = ", ".join(known)
    raise_first(
        csv, "kind", np.array([k is None for k in parsed]),
        lambda i: "kind is empty" if texts[i] == "" else f"kind '{texts[i]}' is not one of {allowed}",
    )
    return parsed  # type: ignore[return-value]


def _payments(csv: CsvTable, texts: np.ndarray, rows: np.ndarray) -> list[Payment | None]:
    known = {p.value: p for p in Payment}
    parsed = [known.get(normalized(t)) if row else None for t, row in zip(texts, rows)]
    allowed = ", ".join(known)
    raise_first(
        csv, "payment", rows & np.array([p is None for p in parsed]),
        lambda i: "payment is empty" if texts[i] == "" else f"payment '{texts[i]}' is not one of {allowed}",
    )
    return parsed


def _increments(csv: CsvTable, cells: dict[str, np.ndarray], kinds: list[OfferingKind], commit: np.ndarray) -> np.ndarray:
    """The optional ``increment`` column; an empty cell means the kind's default."""
    defaults = np.array([DEFAULT_INCREMENT.get(k, np.nan) for k in kinds])
    if "increment" not in cells:
        return defaults
    given = commit & (cells["increment"] != "")
    values = parse_numbers(csv, "increment", cells["increment"], strict=True, rows=given)
    return np.where(given, values, defaults)


def _group_rows(
    csv: CsvTable, cells: dict[str, np.ndarray], kinds: list[OfferingKind], fields: dict[str, Any]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Check how rows combine; returns on-demand row per pool and, per offering, row per pool."""

    def line(i: int) -> int:
        return int(csv.lines[i])

    on_demand: dict[str, int] = {}
    rows_of: dict[str, dict[str, int]] = {}
    for i, (offering, pool, kind) in enumerate(zip(cells["offering"], cells["pool"], kinds)):
        if kind is OfferingKind.ON_DEMAND:
            if offering != "on_demand":
                raise csv.error(i, "offering", f"an on_demand row must have offering 'on_demand', not '{offering}'")
            if pool in on_demand:
                first = line(on_demand[pool])
                raise csv.error(i, "pool", f"pool '{pool}' has a second on_demand price, the first is in row {first}")
            on_demand[pool] = i
            continue
        seen = rows_of.setdefault(offering, {})
        j = next(iter(seen.values()), i)
        if kinds[j] is not kind:
            message = f"offering '{offering}' is a {kind.value} here but a {kinds[j].value} in row {line(j)}"
            raise csv.error(i, "kind", message)
        if pool in seen:
            message = f"offering '{offering}' lists pool '{pool}' twice, first in row {line(seen[pool])}"
            raise csv.error(i, "pool", message)
        if kind is OfferingKind.RESERVATION and seen:
            other = next(iter(seen))
            message = (
                f"reservation offering {offering} spans two pools: {other} (row {line(j)}) and {pool} (row {line(i)})"
            )
            raise csv.error(i, "pool", message)
        for column, values in fields.items():
            if values[i] != values[j]:
                here, there = _show(values[i]), _show(values[j])
                message = f"savings plan '{offering}' has {column} {here} here but {there} in row {line(j)}"
                raise csv.error(i, column, message)
        seen[pool] = i

    for offering, pool_rows in rows_of.items():
        for pool, i in pool_rows.items():
            if pool not in on_demand:
                raise csv.error(i, "pool", f"offering '{offering}' covers pool '{pool}', which has no on_demand row")
    return on_demand, rows_of


def _show(value: Any) -> str:
    if isinstance(value, Payment):
        return value.value
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


# --------------------------------------------------------------------------- existing commitments


def read_existing(path: str | Path, price_book: PriceBook | None = None) -> list[Commitment]:
    """Read the existing commitments CSV (``offering,quantity,start,end``), active on [start, end)."""
    csv, cells = open_text_csv(path, EXISTING_COLUMNS)
    offerings = cells["offering"]
    require_text(csv, "offering", offerings)
    if price_book is not None:
        unknown = np.array([o not in price_book.offerings for o in offerings])
        raise_first(csv, "offering", unknown, lambda i: f"offering '{offerings[i]}' is not in the price book")
    quantity = parse_numbers(csv, "quantity", cells["quantity"], strict=True)
    start = parse_times(csv, "start", cells["start"])
    end = parse_times(csv, "end", cells["end"])
    raise_first(
        csv, "end", np.asarray(end <= start),
        lambda i: f"end {cells['end'][i]} is not after start {cells['start'][i]}",
    )
    return [
        Commitment(offering=o, quantity=float(q), start=s.to_pydatetime(), end=e.to_pydatetime())
        for o, q, s, e in zip(offerings, quantity, start, end)
    ]


# --------------------------------------------------------------------------- plan JSON


def read_purchases_from_plan(path: str | Path) -> list[Purchase]:
    """The purchases of a plan JSON; errors use row = purchase number (1-based), column = key."""
    file = existing_file(path)
    name = str(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise InputError(name, "the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        message = f"the file is not valid JSON ({exc.msg} at column {exc.colno})"
        raise InputError(name, message, row=exc.lineno) from None
    if not isinstance(data, dict) or "purchases" not in data:
        raise InputError(name, "the plan has no 'purchases' list", column="purchases")
    if not isinstance(data["purchases"], list):
        raise InputError(name, "'purchases' must be a list", column="purchases")
    return [_purchase(name, k + 1, item) for k, item in enumerate(data["purchases"])]


def _purchase(file: str, row: int, item: Any) -> Purchase:
    def fail(column: str | None, message: str) -> InputError:
        return InputError(file, f"purchase {row}: {message}", row=row, column=column)

    if not isinstance(item, dict):
        raise fail(None, "a purchase must be an object with offering, quantity and start")
    for key in PLAN_KEYS:
        if key not in item:
            raise fail(key, f"the key '{key}' is missing")
    offering, quantity, start = (item[k] for k in PLAN_KEYS)
    if not isinstance(offering, str) or not offering.strip():
        raise fail("offering", "offering must be a non-empty string")
    if isinstance(quantity, bool) or not isinstance(quantity, (int, float)):
        raise fail("quantity", f"quantity must be a number, got {quantity!r}")
    value = float(quantity) if abs(quantity) < 1e300 else math.inf  # huge JSON ints do not fit a float
    if not math.isfinite(value) or value < 0:
        raise fail("quantity", f"quantity must be a finite number >= 0, got {quantity!r}")
    if not isinstance(start, str):
        raise fail("start", f"start must be an ISO 8601 timestamp string, got {start!r}")
    times, bad = parse_hours(np.array([start.strip()], dtype=object))
    if bad[0]:
        raise fail("start", hour_problem("start", start.strip()))
    return Purchase(offering=offering.strip(), quantity=value, start=times[0].to_pydatetime())
