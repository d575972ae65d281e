"""Realized savings against the plan that was approved: the plan's figures prorated to the months
the ledger bills (see ``plan_vs_actual``), and per purchase (its expected savings)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from billing.ledger import open_ledger
from billing.savings import (
    MEASURES,
    MONTH,
    USAGE,
    ZERO,
    CommitmentSavings,
    Figures,
    _json,
    aggregate,
    commitment_rows,
)
from models.errors import InputError

PRORATION = ("the plan's figures are for its window [window_start, window_start + window_hours); a month "
             "expects them × (its hours inside the window and inside the span the ledger bills) ÷ window_hours "
             "($ figures; rates — ESR, coverage, utilization — as planned); a commitment expects its window cost "
             "× its billed active hours ÷ its active hours. Realized: the ledger's rows whose ChargePeriodStart "
             "lies in the window.")


def plan_purchase_commitments(plan: dict[str, Any]) -> list[tuple[dict | None, float | None]]:
    """Per purchase: its ``commitments`` entry (same offering, start, quantity) and expected window
    savings = cost × (utilization ÷ break-even − 1). Break-even is amortized cost ÷ on-demand value
    per unit of capacity used, so utilization × cost ÷ break-even is the on-demand value covered."""
    free = [c for c in plan.get("commitments", []) if c.get("source") == "purchase"]
    out = []
    for p in plan.get("purchases", []):
        key = (p["offering"], _naive(p["start"]), p["quantity"])
        k = next((k for k, c in enumerate(free) if (c["offering"], _naive(c["start"]), c["quantity"]) == key), None)
        c = free.pop(k) if k is not None else None
        be = p.get("break_even_utilization")
        out.append((c, c["cost"] * (c["utilization"] / be - 1.0) if c and be else None))
    return out


def plan_expected_savings(plan: dict[str, Any]) -> list[float | None]:
    return [saving for _, saving in plan_purchase_commitments(plan)]


def _naive(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _hours(a: datetime, b: datetime) -> int:
    return max(0, int((b - a).total_seconds() // 3600))


@dataclass
class PlanFigures:
    on_demand_equivalent: float | None
    cost: float | None
    savings: float | None
    effective_savings_rate: float | None
    coverage: float | None
    utilization: float | None


@dataclass
class PlanPeriod:
    month: str
    hours: int
    expected: PlanFigures
    realized: PlanFigures


@dataclass
class PlanCommitment:
    offering: str
    source: str
    start: str
    quantity: float
    commitment_ids: list[str]
    matched_by: str | None
    """'pipeline' (``mark_purchased`` linked it), 'name' (CommitmentDiscountName = offering) or None."""
    hours: int
    expected_cost: float
    realized_cost: float | None
    expected_savings: float | None
    realized_savings: float | None
    expected_utilization: float
    realized_utilization: float | None


@dataclass
class PlanVsActual:
    window_start: str
    window_hours: int
    hours_billed: int
    proration: str
    total: PlanPeriod
    months: list[PlanPeriod]
    commitments: list[PlanCommitment]

    def to_json(self) -> dict[str, Any]:
        return _json(asdict(self))


def _realized(m: dict[str, Any]) -> PlanFigures:
    f = Figures.of(m)
    return PlanFigures(_json(f.on_demand_equivalent), float(f.effective_cost), _json(f.savings),
                       f.effective_savings_rate, f.coverage, f.utilization)


def _read_plan(path: Path | str) -> tuple[dict[str, Any], str]:
    text = Path(path).read_bytes()
    try:
        plan = json.loads(text)
        plan["summary"]["expected_cost"], _naive(plan["window_start"]), int(plan["window_hours"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(str(path), f"not a plan JSON with summary, window_start and window_hours ({error})") from None
    return plan, hashlib.sha256(text).hexdigest()


def plan_vs_actual(ledger: Path | str, plan_json: Path | str) -> PlanVsActual:
    """Realized figures of the plan's window against the plan's expected ones, prorated (``PRORATION``)."""
    plan, digest = _read_plan(plan_json)
    s, ws, hours = plan["summary"], _naive(plan["window_start"]), int(plan["window_hours"])
    we = ws + timedelta(hours=hours)
    window, params = "charge_period_start >= ? AND charge_period_start < ?", [ws, we]
    connection = open_ledger(ledger, read_only=True)
    try:
        currencies = connection.execute(f"SELECT DISTINCT billing_currency FROM charges WHERE {window}", params).fetchall()
        if len(currencies) > 1:
            raise ValueError(f"the plan's window holds charges in {len(currencies)} currencies; compare one at a time")
        first, last = connection.execute(
            f"SELECT min(charge_period_start), max(charge_period_end) FROM charges WHERE {USAGE} AND {window}", params
        ).fetchone()
        by_month = {r["month"]: r for r in aggregate(connection, {"month": MONTH}, window, params)}
        total = aggregate(connection, {}, window, params)[0]
        held = {c.id: c for c in commitment_rows(connection, window, params)}
        links = _pipeline_links(connection, digest)
    finally:
        connection.close()
    first, last = max(first or we, ws), min(last or we, we)

    def expected(h: int) -> PlanFigures:
        share = h / hours
        return PlanFigures(s["on_demand_equivalent"] * share, s["expected_cost"] * share,
                           s["expected_savings"] * share, s["effective_savings_rate"], s["coverage"], s["utilization"])

    months, cursor = [], datetime(ws.year, ws.month, 1)
    while cursor < we:
        following = datetime(cursor.year + cursor.month // 12, cursor.month % 12 + 1, 1)
        h, name = _hours(max(cursor, first), min(following, last)), cursor.strftime("%Y-%m")
        if name in by_month or h:
            months.append(PlanPeriod(name, h, expected(h), _realized(by_month.get(name, {k: ZERO for k in MEASURES}))))
        cursor = following
    billed = sum(m.hours for m in months)
    return PlanVsActual(ws.strftime("%Y-%m-%dT%H:%M:%SZ"), hours, billed, PRORATION,
                        PlanPeriod("total", billed, expected(billed), _realized(total)), months,
                        _plan_commitments(plan, held, links, first, last))


def _pipeline_links(connection: duckdb.DuckDBPyConnection, digest: str) -> dict[int, str]:
    """Purchase index → commitment id, from the savings pipeline items of this very plan file."""
    exists = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'savings_pipeline'").fetchone()[0]
    if not exists:
        return {}
    return dict(connection.execute(
        "SELECT purchase_index, commitment_id FROM savings_pipeline WHERE plan_sha256 = ? AND commitment_id IS NOT NULL",
        [digest]).fetchall())


def _plan_commitments(plan: dict[str, Any], held: dict[str, CommitmentSavings], links: dict[int, str],
                      first: datetime, last: datetime) -> list[PlanCommitment]:
    """Each of the plan's commitments against the bill's: linked by the pipeline, else by name (the
    unclaimed commitment named like the offering, preferring one first billed when this one starts)."""
    bought = {id(c): (k, saving) for k, (c, saving) in enumerate(plan_purchase_commitments(plan)) if c is not None}
    claimed, out = set(links.values()), []
    for c in plan.get("commitments", []):
        start, end = _naive(c["start"]), _naive(c["end"])
        k, planned = bought.get(id(c), (None, None))
        ids, how = ([links[k]], "pipeline") if k in links else ([], None)
        if not ids:
            named = sorted((h for h in held.values() if h.name == c["offering"] and h.id not in claimed),
                           key=lambda h: (h.first_hour != max(start, first), h.id))
            ids, how = ([named[0].id], "name") if named else ([], None)
        claimed.update(ids)
        h = _hours(max(start, first), min(end, last))
        share = h / c["active_hours"] if c["active_hours"] else 0.0
        found = [held[i] for i in ids if i in held]
        used = sum((f.used_quantity or ZERO for f in found), ZERO)
        size = used + sum((f.unused_quantity or ZERO for f in found), ZERO)
        out.append(PlanCommitment(
            c["offering"], c["source"], str(c["start"]), c["quantity"], ids, how, h, c["cost"] * share,
            float(sum((f.amortized_cost for f in found), ZERO)) if found else None,
            planned * share if planned is not None else None,
            float(sum((f.savings or ZERO for f in found), ZERO)) if found else None,
            c["utilization"], float(used / size) if size else None,
        ))
    return out
