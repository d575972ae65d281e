"""The savings pipeline: a plan's purchases tracked until the bill proves they save.

Stages, in this order only: ``opportunity`` (a purchase of an approved plan) → ``accepted`` (the
team will buy it) → ``purchased`` (bought; linked to the bill's CommitmentDiscountId) →
``verified`` (the bill shows it saving). Items live in the ledger (tables ``savings_pipeline`` and
``savings_pipeline_events``, the audit trail of every transition), so the evidence and the claim
sit in one file.

Verification rule (``verify``), with the baseline stated per item (``on_demand_equivalent``):
a day is a UTC calendar day that ended by ``as_of``. The day *shows savings* when

1. the commitment's Used/Unused rows cover all 24 hours of the day (the bill is complete for it);
2. every Used row has a ListCost (the baseline is known);
3. savings = Σ ListCost(Used rows) − Σ EffectiveCost(Used + Unused rows and its purchase rows),
   i.e. on-demand equivalent of the usage it covered minus what it cost amortized, is > 0.

(money by the day of ChargePeriodStart; a day the commitment is billed for only part of, such as
the day it was bought at noon, does not count). An item is verified once 14 consecutive days show
savings; ``verified_from``/``verified_to`` name the first such run and ``verified_savings`` its sum.
Items are matched to the bill only through the commitment id given to ``mark_purchased``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from billing.ledger import open_ledger
from billing.plan_vs_actual import plan_purchase_commitments
from billing.savings import ZERO, aggregate
from models.readers import read_purchases_from_plan

STAGES = ("opportunity", "accepted", "purchased", "verified")
VERIFY_DAYS = 14
BASELINE = "on_demand_equivalent"
DDL = (
    "CREATE SEQUENCE IF NOT EXISTS savings_pipeline_ids START 1",
    """CREATE TABLE IF NOT EXISTS savings_pipeline (
        item_id INTEGER PRIMARY KEY, plan_sha256 VARCHAR, purchase_index INTEGER, offering VARCHAR NOT NULL,
        quantity DOUBLE NOT NULL, start TIMESTAMP, expected_hourly_savings DOUBLE, stage VARCHAR NOT NULL,
        stage_at TIMESTAMP NOT NULL, commitment_id VARCHAR, baseline VARCHAR NOT NULL,
        verified_from DATE, verified_to DATE, verified_savings DECIMAL(38, 12),
        UNIQUE (plan_sha256, purchase_index))""",
    "CREATE TABLE IF NOT EXISTS savings_pipeline_events (item_id INTEGER, stage VARCHAR, happened_at TIMESTAMP, note VARCHAR)",
)


class PipelineError(ValueError):
    """An illegal transition or an unknown item; the message says what to do instead."""


@dataclass
class PipelineItem:
    item_id: int
    plan_sha256: str | None
    purchase_index: int | None
    offering: str
    quantity: float
    start: datetime | None
    expected_hourly_savings: float | None
    stage: str
    stage_at: datetime
    commitment_id: str | None
    baseline: str
    verified_from: date | None
    verified_to: date | None
    verified_savings: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return _json_of(self)


@dataclass
class Verification:
    item_id: int
    commitment_id: str
    stage: str
    days_in_a_row: int
    """Longest run of consecutive days showing savings so far (capped at the 14 needed)."""
    first_day: date | None
    last_day: date | None
    savings: Decimal
    reason: str

    def to_json(self) -> dict[str, Any]:
        return _json_of(self)


def _json_of(item: Any) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, (date, datetime)) else v)
            for k, v in asdict(item).items()}


def _now(at: datetime | None) -> datetime:
    at = at or datetime.now(timezone.utc)
    return at.astimezone(timezone.utc).replace(tzinfo=None) if at.tzinfo else at


def _connect(ledger: Path | str) -> duckdb.DuckDBPyConnection:
    connection = open_ledger(ledger)
    for statement in DDL:
        connection.execute(statement)
    return connection


def _items(connection: duckdb.DuckDBPyConnection, where: str = "true", params: list | None = None) -> list[PipelineItem]:
    rows = connection.execute(f"SELECT * FROM savings_pipeline WHERE {where} ORDER BY item_id", params or []).fetchall()
    return [PipelineItem(*r) for r in rows]


def _set_stage(connection, item: PipelineItem, stage: str, at: datetime, note: str = "", **values: Any) -> None:
    sets = ", ".join(["stage = ?", "stage_at = ?"] + [f"{k} = ?" for k in values])
    connection.execute(f"UPDATE savings_pipeline SET {sets} WHERE item_id = ?",
                       [stage, at, *values.values(), item.item_id])
    connection.execute("INSERT INTO savings_pipeline_events VALUES (?, ?, ?, ?)", [item.item_id, stage, at, note])


def pipeline_items(ledger: Path | str) -> list[PipelineItem]:
    connection = _connect(ledger)
    try:
        return _items(connection)
    finally:
        connection.close()


def add_opportunities_from_plan(ledger: Path | str, plan_json: Path | str, at: datetime | None = None) -> list[PipelineItem]:
    """One opportunity per purchase of quantity > 0; adding the same plan file again changes nothing."""
    purchases = read_purchases_from_plan(plan_json)  # checks every purchase, errors name file and row
    text = Path(plan_json).read_bytes()
    plan, digest = json.loads(text), hashlib.sha256(text).hexdigest()
    at, held = _now(at), plan_purchase_commitments(plan)
    connection = _connect(ledger)
    try:
        connection.execute("BEGIN TRANSACTION")
        for k, p in enumerate(purchases):
            known = connection.execute("SELECT 1 FROM savings_pipeline WHERE plan_sha256 = ? AND purchase_index = ?",
                                       [digest, k]).fetchone()
            if known or not p.quantity > 0:
                continue
            commitment, expected = held[k]
            hours = commitment["active_hours"] if commitment else 0
            hourly = expected / hours if expected is not None and hours else None
            item_id = connection.execute("SELECT nextval('savings_pipeline_ids')").fetchone()[0]
            connection.execute(
                "INSERT INTO savings_pipeline VALUES (?, ?, ?, ?, ?, ?, ?, 'opportunity', ?, NULL, ?, NULL, NULL, NULL)",
                [item_id, digest, k, p.offering, p.quantity, _now(p.start), hourly, at, BASELINE])
            connection.execute("INSERT INTO savings_pipeline_events VALUES (?, 'opportunity', ?, ?)",
                               [item_id, at, f"from plan {Path(plan_json).name} purchase {k + 1}"])
        connection.execute("COMMIT")
        return _items(connection, "plan_sha256 = ?", [digest])
    finally:
        connection.close()


def _advance(ledger: Path | str, item_id: int, need: str, stage: str, at: datetime | None, hint: str,
             **values: Any) -> PipelineItem:
    connection = _connect(ledger)
    try:
        found = _items(connection, "item_id = ?", [item_id])
        if not found:
            raise PipelineError(f"no savings pipeline item {item_id} (list them with pipeline_items)")
        item = found[0]
        if item.stage != need:
            raise PipelineError(f"item {item_id} is '{item.stage}'; only an '{need}' item can become '{stage}'{hint}")
        _set_stage(connection, item, stage, _now(at), **values)
        return _items(connection, "item_id = ?", [item_id])[0]
    finally:
        connection.close()


def accept(ledger: Path | str, item_id: int, at: datetime | None = None) -> PipelineItem:
    return _advance(ledger, item_id, "opportunity", "accepted", at, "")


def mark_purchased(ledger: Path | str, item_id: int, commitment_id: str, at: datetime | None = None) -> PipelineItem:
    """Link the item to the CommitmentDiscountId the bill will carry for what was bought."""
    if not commitment_id or not commitment_id.strip():
        raise PipelineError("mark_purchased needs the commitment id the bill shows (CommitmentDiscountId)")
    connection = _connect(ledger)
    try:
        other = connection.execute("SELECT item_id FROM savings_pipeline WHERE commitment_id = ? AND item_id <> ?",
                                   [commitment_id.strip(), item_id]).fetchone()
    finally:
        connection.close()
    if other:
        raise PipelineError(f"commitment {commitment_id} is already linked to item {other[0]}")
    return _advance(ledger, item_id, "accepted", "purchased", at, " (accept it first)",
                    commitment_id=commitment_id.strip())


DAY = "CAST(date_trunc('day', charge_period_start) AS DATE)"
HOURS_SQL = """
SELECT CAST(date_trunc('day', h) AS DATE), count(DISTINCT h) FROM (
    SELECT unnest(range(date_trunc('hour', charge_period_start), charge_period_end, INTERVAL 1 HOUR)) AS h
    FROM charges WHERE commitment_discount_id = ? AND charge_category = 'Usage'
      AND commitment_discount_status IN ('Used', 'Unused') AND charge_period_start < ?
) GROUP BY 1"""


def daily_savings(connection: duckdb.DuckDBPyConnection, commitment_id: str,
                  as_of: datetime) -> list[tuple[date, Decimal | None, bool]]:
    """(day, savings or None when the baseline is unknown, complete?) per day that ended by ``as_of``."""
    hours = dict(connection.execute(HOURS_SQL, [commitment_id, as_of]).fetchall())
    rows = aggregate(connection, {"day": DAY}, "commitment_discount_id = ? AND charge_period_start < ?",
                     [commitment_id, as_of])
    out = []
    for r in rows:
        if datetime.combine(r["day"], datetime.min.time()) + timedelta(days=1) > as_of:
            continue
        savings = r["covered_ode"] - r["commitment_cost"] if r["missing_list"] == 0 else None
        out.append((r["day"], savings, hours.get(r["day"], 0) == 24))
    return out


def _first_run(days: list[tuple[date, Decimal | None, bool]]) -> tuple[int, date | None, date | None, Decimal]:
    """The first run of VERIFY_DAYS consecutive days showing savings, else the longest run so far."""
    best: tuple[int, date | None, date | None, Decimal] = (0, None, None, ZERO)
    run: list[tuple[date, Decimal]] = []
    for day, savings, complete in days:
        if not (complete and savings is not None and savings > 0):
            run = []
            continue
        if run and run[-1][0] + timedelta(days=1) != day:
            run = []
        run.append((day, savings))
        if len(run) > best[0]:
            best = (len(run), run[0][0], day, sum((s for _, s in run), ZERO))
        if len(run) == VERIFY_DAYS:
            break
    return best


def verify(ledger: Path | str, as_of: datetime | None = None) -> list[Verification]:
    """Check every purchased item against the bill (module docstring); verified ones move on."""
    as_of = _now(as_of)
    connection = _connect(ledger)
    out = []
    try:
        for item in _items(connection, "stage = 'purchased'"):
            days = daily_savings(connection, item.commitment_id, as_of)
            n, first, last, total = _first_run(days)
            if n >= VERIFY_DAYS:
                _set_stage(connection, item, "verified", as_of, f"{n} days showing savings {first}..{last}",
                           verified_from=first, verified_to=last, verified_savings=total)
                reason = f"savings shown {first} to {last} against the {item.baseline} baseline"
            elif not days:
                reason = f"the bill shows no complete day of {item.commitment_id} before {as_of:%Y-%m-%d %H:%M}"
            else:
                reason = f"{n} consecutive days showing savings so far; {VERIFY_DAYS} needed"
            stage = "verified" if n >= VERIFY_DAYS else item.stage
            out.append(Verification(item.item_id, item.commitment_id, stage, n, first, last, total, reason))
        return out
    finally:
        connection.close()
