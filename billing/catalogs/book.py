"""The price book frame every importer returns, and writing it as the price book CSV (DESIGN.md §4).

A catalog frame has the contract's columns plus ``source`` (where each row's figures come from);
``frame.attrs`` carries ``source`` (one line naming the file and its publication date) and
``notes`` (what was skipped or approximated: size spreads, unknown normalization factors, …).
The reader ignores the extra ``source`` column, so it stays in the CSV for traceability; the
file-level label and notes go to a sidecar ``<name>.source.json`` (a ``#`` comment line would be
read as the header by ``models.readers.read_price_book``).
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.errors import InputError
from models.pricing import HOURS_PER_MONTH

CONTRACT = ("offering", "kind", "term_months", "payment", "pool", "hourly_rate", "upfront", "increment")
COLUMNS = (*CONTRACT, "source")
PAYMENTS = ("no_upfront", "partial_upfront", "all_upfront")
SHORT_PAYMENT = {"no_upfront": "no", "partial_upfront": "partial", "all_upfront": "all"}
SPREAD_TOLERANCE = 1e-6
"""Relative difference between sizes' per-unit rates below which they count as equal."""


@dataclass(frozen=True)
class Rate:
    """One candidate figure for a price book row, before sizes are collapsed into one pool rate."""

    hourly: float
    upfront: float
    factor: float  # units per instance (normalization factor, or 1)
    label: str  # e.g. the instance type, for the spread note
    source: str


def slug(text: str) -> str:
    """Lower case; runs of anything but letters, digits, dots and dashes become one dash (as ingest does)."""
    return re.sub(r"[^a-z0-9.\-]+", "-", text.lower()).strip("-")


def term_label(months: int) -> str:
    return f"{months // 12}y" if months % 12 == 0 else f"{months}m"


def on_demand_row(pool: str, rate: float, source: str) -> dict:
    return {"offering": "on_demand", "kind": "on_demand", "term_months": 0, "payment": "", "pool": pool,
            "hourly_rate": rate, "upfront": 0.0, "increment": math.nan, "source": source}


def offering_row(offering: str, kind: str, months: int, payment: str, pool: str, hourly: float,
                 upfront: float, source: str, increment: float = math.nan) -> dict:
    return {"offering": offering, "kind": kind, "term_months": months, "payment": payment, "pool": pool,
            "hourly_rate": hourly, "upfront": upfront, "increment": increment, "source": source}


def savings_plan_upfront(payment: str, months: int) -> float:
    """Prepaid part of 1 $/h of commitment: none, half (AWS partial upfront SPs) or all of the term."""
    share = {"no_upfront": 0.0, "partial_upfront": 0.5, "all_upfront": 1.0}[payment]
    return share * months * HOURS_PER_MONTH


def collapse(key: str, what: str, rates: list[Rate], notes: list[str], term_hours: float = math.inf,
             by: str = "size") -> Rate:
    """The figures of the smallest size (or first row); a note when the others' amortized per-unit cost differs."""
    rates = sorted(rates, key=lambda r: (r.factor, r.label)) if by == "size" else rates
    best = rates[0]
    per_unit = [((r.hourly + r.upfront / term_hours) / r.factor, r.label) for r in rates]
    low, high = min(per_unit), max(per_unit)
    if low[0] > 0 and (high[0] - low[0]) / low[0] > SPREAD_TOLERANCE:
        notes.append(
            f"{key} {what}: per-unit figures differ by {by}, from {low[0]:.6g} ({low[1]}) to "
            f"{high[0]:.6g} ({high[1]}), spread {100 * (high[0] - low[0]) / low[0]:.2f}%; "
            f"used {'the smallest size' if by == 'size' else 'the first'} ({best.label})"
        )
    return best


def make_frame(rows: Iterable[dict], source: str, notes: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    frame = frame.astype({"term_months": int, "hourly_rate": float, "upfront": float, "increment": float})
    frame.attrs["source"] = source
    frame.attrs["notes"] = list(dict.fromkeys(notes))
    return sort_frame(frame)


def sort_frame(frame: pd.DataFrame) -> pd.DataFrame:
    order = frame["kind"].map({"on_demand": 0, "reservation": 1, "savings_plan": 2})
    out = frame.assign(_order=order).sort_values(["_order", "offering", "pool"], kind="stable")
    out = out.drop(columns="_order").reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    return out


def merge(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate catalog frames; a pool or offering row given twice keeps its first figures."""
    frames = list(frames)
    joined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    duplicate = joined.duplicated(["offering", "pool"], keep="first")
    notes = [n for f in frames for n in f.attrs.get("notes", [])]
    for _, row in joined[duplicate].iterrows():
        notes.append(f"{row['offering']} / {row['pool']} is given by more than one file; kept the first")
    out = make_frame(joined[~duplicate].to_dict("records"), "; ".join(f.attrs.get("source", "") for f in frames), notes)
    return out


def incomplete(frame: pd.DataFrame) -> pd.Series:
    """Mask of commitment rows whose pool has no on-demand row (the reader refuses them)."""
    priced = set(frame.loc[frame["kind"] == "on_demand", "pool"])
    return (frame["kind"] != "on_demand") & ~frame["pool"].isin(priced)


def drop_incomplete(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop every offering with a pool that has no on-demand price (a savings plan loses all its rows)."""
    bad_offerings = set(frame.loc[incomplete(frame), "offering"])
    out = frame[~frame["offering"].isin(bad_offerings)].reset_index(drop=True)
    out.attrs = dict(frame.attrs)
    if bad_offerings:
        out.attrs["notes"] = [*frame.attrs.get("notes", []),
                              f"dropped {len(bad_offerings)} offerings whose pools have no on-demand price: "
                              + ", ".join(sorted(bad_offerings)[:10]) + (" …" if len(bad_offerings) > 10 else "")]
    return out


def _number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return np.format_float_positional(round(float(value), 10), trim="-")


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".gz").removesuffix(".csv") + ".source.json")


def write_price_book(frame: pd.DataFrame, path: str | Path, *, allow_incomplete: bool = False) -> Path:
    """Write ``frame`` as a price book CSV (plus its ``.source.json`` label) and check it loads.

    Commitment rows whose pool has no on-demand price make the book unreadable: they raise an
    ``InputError`` unless ``allow_incomplete`` (then those offerings are dropped, with a note).
    Merge catalogs first (``import_catalogs``) when the on-demand prices come from another file.
    """
    path = Path(path)
    missing = incomplete(frame)
    if missing.any():
        if not allow_incomplete:
            pools = sorted(set(frame.loc[missing, "pool"]))
            shown = ", ".join(pools[:5]) + (f" and {len(pools) - 5} more" if len(pools) > 5 else "")
            raise InputError(str(path), f"{missing.sum()} commitment rows cover pools without an on-demand price "
                             f"({shown}); import the on-demand catalog with them or allow incomplete output",
                             column="pool")
        frame = drop_incomplete(frame)
    if frame.empty or not (frame["kind"] == "on_demand").any():
        raise InputError(str(path), "the price book would have no on-demand price", column="kind")
    text = sort_frame(frame).assign(
        term_months=lambda f: f["term_months"].map(lambda m: str(int(m)) if m else ""),
        hourly_rate=lambda f: f["hourly_rate"].map(_number),
        upfront=lambda f: f["upfront"].map(_number),
        increment=lambda f: f["increment"].map(_number),
    )[list(COLUMNS)].to_csv(index=False, lineterminator="\n")
    with tempfile.TemporaryDirectory() as scratch:  # check before replacing anything
        trial = Path(scratch) / "book.csv"
        trial.write_text(text, encoding="utf-8")
        from models.readers import read_price_book

        read_price_book(trial)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    label = {"source": frame.attrs.get("source", ""), "notes": frame.attrs.get("notes", []),
             "rows": len(frame), "written_by": "billing.catalogs.write_price_book"}
    sidecar_path(path).write_text(json.dumps(label, indent=2) + "\n", encoding="utf-8")
    return path


def read_source_label(path: str | Path) -> dict:
    """The ``.source.json`` label written next to a price book (empty when there is none)."""
    side = sidecar_path(path)
    return json.loads(side.read_text(encoding="utf-8")) if side.exists() else {}
