"""Commitments the bill shows: what each one is, how big, since when, and how well it is used.

Read the FOCUS way (the spec's commitment examples define it): a commitment's usage rows carry
its id, a status (Used or Unused) and ``CommitmentDiscountQuantity`` — the part of the commitment
each row consumed or left idle, in its unit (normalized hours, hours, or the currency for
spend-based ones). So per hour, Used + Unused is the commitment's size, and

    utilization = Σ quantity(Used) / Σ quantity(Used + Unused)

and its amortized cost is the EffectiveCost of those rows. CUR's reservation and savings-plan
lines are read the same way (``billing.formats.cur``: covered usage is Used, the fee line's unused
part Unused). The term comes from the bill's own start and end (CUR) or from a one-time purchase
row, whose charge period is the term; otherwise the bill only shows the hours it covers
(``end_seen_only``). With a price book, each commitment is matched to the offering that covers
its pool with the same term, so the existing-commitments CSV feeds ``plan --existing``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from billing.ledger import open_ledger
from models.pricing import HOURS_PER_MONTH, OfferingKind, PriceBook

COMMITMENTS_SQL = """
WITH used AS (
    SELECT commitment_discount_id AS id,
        any_value(commitment_discount_type) AS kind,
        any_value(commitment_discount_unit) AS unit,
        min(charge_period_start) AS first_hour, max(charge_period_end) AS last_hour,
        date_diff('hour', min(charge_period_start), max(charge_period_end)) AS hours,
        min(commitment_start) AS term_start_given, max(commitment_end) AS term_end_given,
        coalesce(sum(commitment_discount_quantity) FILTER (WHERE commitment_discount_status = 'Used'), 0) AS used,
        coalesce(sum(commitment_discount_quantity), 0) AS committed,
        coalesce(sum(effective_cost), 0) AS amortized_cost,
        string_agg(DISTINCT concat_ws(' ', pool, pool_2), ' ') FILTER (WHERE pool IS NOT NULL) AS pools,
        any_value(provider) AS provider
    FROM charges
    WHERE commitment_discount_id IS NOT NULL AND commitment_discount_status IN ('Used', 'Unused')
    GROUP BY 1
), bought AS (
    SELECT commitment_discount_id AS id,
        min(charge_period_start) FILTER (WHERE charge_frequency = 'One-Time') AS term_start,
        max(charge_period_end) FILTER (WHERE charge_frequency = 'One-Time') AS term_end,
        coalesce(sum(billed_cost), 0) AS purchase_cost
    FROM charges WHERE commitment_discount_id IS NOT NULL AND charge_category = 'Purchase'
    GROUP BY 1
)
SELECT used.* EXCLUDE (term_start_given, term_end_given),
    coalesce(used.term_start_given, bought.term_start), coalesce(used.term_end_given, bought.term_end),
    coalesce(bought.purchase_cost, 0)
FROM used LEFT JOIN bought USING (id) ORDER BY id
"""


@dataclass(frozen=True)
class BilledCommitment:
    id: str
    kind: str | None
    unit: str | None
    provider: str | None
    pools: tuple[str, ...]
    quantity: Decimal
    """Size per hour in ``unit``: Σ(Used + Unused) over the span of hours the bill shows, per hour."""
    start: datetime
    end: datetime
    end_seen_only: bool
    utilization: float | None
    amortized_cost: Decimal
    purchase_cost: Decimal
    offering: str | None = None


def commitments_in(ledger: Path | str) -> list[BilledCommitment]:
    connection = open_ledger(ledger, read_only=True)
    try:
        rows = connection.execute(COMMITMENTS_SQL).fetchall()
    finally:
        connection.close()
    out = []
    for (cid, kind, unit, first, last, hours, used, committed, cost, pools, provider,
         term_start, term_end, purchase_cost) in rows:
        out.append(BilledCommitment(
            id=cid, kind=kind, unit=unit, provider=provider,
            pools=tuple(sorted(set(pools.split()))) if pools else (),
            quantity=committed / hours if hours else Decimal(0),
            start=_utc(term_start or first), end=_utc(term_end or last),
            end_seen_only=term_end is None,
            utilization=float(used / committed) if committed else None,
            amortized_cost=cost, purchase_cost=purchase_cost,
        ))
    return out


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc)


def match_offerings(commitments: list[BilledCommitment], book: PriceBook) -> list[BilledCommitment]:
    """Name each commitment's offering in ``book``: a reservation of its one pool, or a savings
    plan covering its pools, with the term nearest its own (None when nothing covers it)."""
    matched = []
    for c in commitments:
        months = round((c.end - c.start).total_seconds() / 3600 / HOURS_PER_MONTH) if not c.end_seen_only else None
        candidates = [
            o for o in book.offerings.values()
            if c.pools and set(c.pools) <= set(o.rates)
            and (o.kind is OfferingKind.RESERVATION) == ("savings" not in (c.kind or "").lower())
        ]
        if months is not None:
            candidates.sort(key=lambda o: (abs(o.term_months - months), o.id))
        else:
            candidates.sort(key=lambda o: o.id)
        matched.append(_with_offering(c, candidates[0].id if candidates else None))
    return matched


def _with_offering(c: BilledCommitment, offering: str | None) -> BilledCommitment:
    return BilledCommitment(**{**c.__dict__, "offering": offering})


def write_existing(commitments: list[BilledCommitment], out: Path | str) -> None:
    """The existing-commitments CSV (offering, quantity, start, end) plus what the bill showed.

    Commitments whose size the bill does not give (FOCUS 1.0 has no CommitmentDiscountQuantity)
    are left out: the planner needs a quantity; ``commitments_in`` still lists them."""
    with open(out, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["offering", "quantity", "start", "end", "commitment_id", "kind", "unit", "pools",
                         "utilization", "amortized_cost", "end_seen_only"])
        for c in commitments:
            if c.quantity <= 0:
                continue
            writer.writerow([
                c.offering or c.id, format(c.quantity.normalize(), "f"),
                c.start.strftime("%Y-%m-%dT%H:%M:%SZ"), c.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                c.id, c.kind or "", c.unit or "", " ".join(c.pools),
                "" if c.utilization is None else f"{c.utilization:.6f}",
                format(c.amortized_cost.normalize(), "f"), str(c.end_seen_only).lower(),
            ])
