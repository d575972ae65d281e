"""Showback/chargeback: every cent of the ledger's cost in a period assigned to an owner.

Where each charge goes (rules: :mod:`billing.allocation_rules`; cost is EffectiveCost, or BilledCost
with ``cost: billed``):

* **covered usage** (CommitmentDiscountStatus ``Used``): to its owner, the *user* (``commitment_used``);
  its savings, ListCost − EffectiveCost, are reported beside it (not part of the total).
* **unused commitment** (``Unused``): to the commitment's *buyer*, or with ``unused: spread`` over the
  commitment's users in the period in proportion to their covered EffectiveCost (to the buyer if it
  covered nothing) (``commitment_unused``).
* **commitment purchase** (ChargeCategory ``Purchase`` with a CommitmentDiscountId): to the buyer
  (``commitment_purchase``). Amortized, such rows cost 0 (the fee sits on the Used/Unused rows);
  billed, they carry the fee and covered/unused rows cost 0. A row that is both (CUR's RIFee) is
  unused in the amortized view and a purchase in the billed view.
* **any other charge**: split by the first matching ``shared`` rule (``shared``), else to its owner
  (``direct``). Charges nobody claims go to the fallback owner: the unallocated share.

The buyer is ``commitments.buyer`` (default: ``owner_from``) applied to the commitment's first purchase
row anywhere in the ledger (else its first unused row). A month is a billing period (invoice month;
the charge period start where a bill has none).

Money is exact: the ledger's DECIMAL(38, 12) values become integers of 1e-12 and every split gives
whole units by largest remainder (each shared rule's and each commitment's unused total is split
once; with ``detail=True`` each charge is, and the table is the sum of those pieces), so the exact
owner × category table sums to the ledger total with nothing lost or counted twice. That table is
then rounded to cents by controlled rounding (largest remainder generalized to two ways, an integral
transportation LP): each cell, owner total and category total is its exact value rounded up or down
(to the nearer cent where the margins allow), and the grand total is the ledger total rounded
half-up, so the rounded report foots to the cent.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import lcm
from pathlib import Path

import duckdb

from billing.allocation_rules import Rules, SharedRule, owner_of
from billing.ledger import open_ledger
from billing.money import half_up_cents, money, round_table, split, units
from models.errors import InputError

CATEGORIES = ("direct", "shared", "commitment_used", "commitment_unused", "commitment_purchase")
_BASE = ("tags", "sub_account_id", "sub_account_name")  # what owner_from reads besides named columns


@dataclass(frozen=True)
class OwnerLine:
    """One owner's cost by category, in cents; the savings are beside the total, not in it."""

    owner: str
    direct: Decimal = Decimal(0)
    shared: Decimal = Decimal(0)
    commitment_used: Decimal = Decimal(0)
    commitment_unused: Decimal = Decimal(0)
    commitment_purchase: Decimal = Decimal(0)
    commitment_savings: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return sum((getattr(self, c) for c in CATEGORIES), Decimal(0))

    def to_dict(self) -> dict:
        return {"owner": self.owner, **{c: float(getattr(self, c)) for c in CATEGORIES}, "total": float(self.total),
                "commitment_savings": float(self.commitment_savings)}


@dataclass(frozen=True)
class Piece:
    """Part of one charge (the ledger's ``ingest_id``, ``source_row``), exact to 1e-12."""

    ingest_id: int
    source_row: int
    owner: str
    category: str
    amount: Decimal


@dataclass(frozen=True)
class CommitmentLine:
    """One commitment in the period (cents): buyer, cost by kind of row, users, where its idle cost went."""

    commitment_id: str
    buyer: str
    purchase: Decimal
    used: Decimal
    unused: Decimal
    savings: Decimal
    """ListCost − EffectiveCost of the usage it covered."""
    users: dict[str, Decimal]
    """Covered cost per user, footing to ``used``."""
    unused_to: dict[str, Decimal]
    """Unused cost per owner charged, footing to ``unused``."""


@dataclass(frozen=True)
class Allocation:
    cost: str
    month: str | None
    currency: str | None
    owners: list[OwnerLine]
    """Every owner but the fallback with a figure other than 0.00, largest total first."""
    unallocated: OwnerLine
    totals: OwnerLine
    """Category totals; ``totals.total == ledger_total``."""
    ledger_total: Decimal
    """The ledger's total in the period, rounded half-up to the cent."""
    ledger_total_exact: Decimal
    commitments: list[CommitmentLine]
    detail: list[Piece] | None = None

    @property
    def unallocated_share(self) -> float | None:
        return float(self.unallocated.total / self.ledger_total) if self.ledger_total else None

    def to_dict(self) -> dict:
        out = {"cost": self.cost, "month": self.month, "currency": self.currency,
               "ledger_total": float(self.ledger_total), "ledger_total_exact": str(self.ledger_total_exact),
               "allocated": float(self.ledger_total - self.unallocated.total),
               "unallocated": self.unallocated.to_dict(), "unallocated_share": self.unallocated_share,
               "categories": {k: v for k, v in self.totals.to_dict().items() if k != "owner"},
               "owners": [o.to_dict() for o in self.owners],
               "commitments": [json.loads(json.dumps(asdict(c), default=float)) for c in self.commitments]}
        if self.detail is not None:
            out["detail"] = [{**asdict(p), "amount": str(p.amount)} for p in self.detail]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def allocate(ledger: duckdb.DuckDBPyConnection | Path | str, rules: Rules, month: str | None = None,
             currency: str | None = None, detail: bool = False) -> Allocation:
    """Allocate the ledger's cost in ``month`` ('YYYY-MM' billing period; all of it if None) by ``rules``.

    ``ledger`` is a path (opened read-only) or an open connection. ``currency`` keeps one
    BillingCurrency (needed when the period mixes several). ``detail=True`` also returns every
    charge's pieces."""
    own = not isinstance(ledger, duckdb.DuckDBPyConnection)
    connection = open_ledger(ledger, read_only=True) if own else ledger
    try:
        scope, params = _scope(month, currency)
        currencies = [r[0] for r in connection.execute(
            f"SELECT DISTINCT billing_currency FROM charges WHERE {scope} AND billing_currency IS NOT NULL "
            "ORDER BY 1", params).fetchall()]
        if len(currencies) > 1:
            raise InputError(str(ledger) if own else "<ledger>", f"the period mixes currencies {currencies}: "
                             "allocate one at a time (--currency)", column="billing_currency")
        cost = "billed_cost" if rules.cost == "billed" else "effective_cost"
        scoped = f"(SELECT *, {_kind_sql(rules.cost)} AS kind FROM charges WHERE {scope})"
        names = [*_BASE, *_extra_columns(rules)]
        context = ", ".join(f"CAST({c} AS VARCHAR)" for c in names)
        used = "CASE WHEN kind = 'used' THEN coalesce({}, 0) ELSE 0 END"
        groups = connection.execute(
            f"SELECT kind, CASE WHEN kind <> 'other' THEN commitment_discount_id END, "
            f"{'ingest_id, source_row' if detail else 'NULL, NULL'}, sum(coalesce({cost}, 0)), "
            f"sum({used.format('effective_cost')}), sum({used.format('list_cost - effective_cost')}), {context} "
            f"FROM {scoped} GROUP BY ALL ORDER BY ALL", params).fetchall()
        total = connection.execute(f"SELECT sum(coalesce({cost}, 0)) FROM charges WHERE {scope}", params).fetchone()[0]
        buyers = connection.execute(  # the row naming each commitment's buyer: first purchase, else first unused
            f"SELECT commitment_discount_id, {context} FROM charges WHERE commitment_discount_id IN "
            f"(SELECT commitment_discount_id FROM {scoped} WHERE kind <> 'other') "
            "AND (charge_category = 'Purchase' OR commitment_discount_status = 'Unused') "
            "QUALIFY row_number() OVER (PARTITION BY commitment_discount_id ORDER BY charge_category = 'Purchase' "
            "DESC, charge_period_start, ingest_id, source_row) = 1", params).fetchall()
    finally:
        if own:
            connection.close()
    book = _Book(rules, {r[0]: dict(zip(names, r[1:])) for r in buyers}, detail)
    for row in groups:
        book.add(row[0], row[1], (row[2], row[3]) if detail else None, *map(units, row[4:7]),
                 dict(zip(names, row[7:])))
    return book.finish(units(total or 0), month, currencies[0] if currencies else currency)


def _scope(month: str | None, currency: str | None) -> tuple[str, list]:
    where, params = ["TRUE"], []
    if month is not None:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise ValueError(f"month must look like 2026-05, got {month!r}")
        year, mon = map(int, month.split("-"))
        period = "coalesce(billing_period_start, charge_period_start)"
        where.append(f"{period} >= ? AND {period} < ?")
        params += [datetime(year, mon, 1), datetime(year + mon // 12, mon % 12 + 1, 1)]
    if currency is not None:
        where.append("billing_currency = ?")
        params.append(currency)
    return " AND ".join(where), params


def _kind_sql(view: str) -> str:
    """What a row is: used | unused | purchase | other (a Purchase that is Unused: by the view)."""
    purchase = ("charge_category = 'Purchase' AND commitment_discount_id IS NOT NULL", "purchase")
    unused = ("commitment_discount_status = 'Unused'", "unused")
    used = ("commitment_discount_status = 'Used' OR (commitment_discount_status IS NULL AND "
            "commitment_discount_id IS NOT NULL AND charge_category = 'Usage')", "used")
    order = (purchase, unused, used) if view == "billed" else (unused, purchase, used)
    return "CASE " + " ".join(f"WHEN {c} THEN '{k}'" for c, k in order) + " ELSE 'other' END"


def _extra_columns(rules: Rules) -> list[str]:
    matchers = [*rules.owner_from, *(rules.commitments.buyer or [])]
    named = {m.column for m in matchers if m.column} | {k for r in rules.shared for k in r.match if k != "owner"}
    return sorted(named - set(_BASE))


def _cents_by_owner(amounts: dict[str, int]) -> dict[str, Decimal]:
    return {o: money(c, 2) for (o, _), c in sorted(round_table({(o, ""): u for o, u in amounts.items()}).items())}


@dataclass
class _Commitment:
    """One commitment's sums while allocating, in units of 1e-12."""

    buyer: str
    sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("purchase", "used", "unused", "savings"), 0))
    users: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spread: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # covered EffectiveCost per user
    unused_to: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def line(self, commitment_id: str) -> CommitmentLine:
        sums = {k: money(half_up_cents(v), 2) for k, v in self.sums.items()}
        return CommitmentLine(commitment_id, self.buyer, **sums, users=_cents_by_owner(self.users),
                              unused_to=_cents_by_owner(self.unused_to))


class _Book:
    """Exact pieces (units of 1e-12) per owner and category, and per commitment."""

    def __init__(self, rules: Rules, buyer_rows: dict[str, dict], detail: bool):
        self.rules, self.buyer_rows = rules, buyer_rows
        self.cells: dict[tuple[str, str], int] = defaultdict(int)
        self.savings: dict[str, int] = defaultdict(int)
        self.usage: dict[str, int] = defaultdict(int)  # own usage cost: the proportional weights
        self.commitments: dict[str, _Commitment] = {}
        self.pending: list[tuple[SharedRule | _Commitment, int, tuple | None]] = []  # split at the end
        self.pieces: list[Piece] | None = [] if detail else None

    def put(self, owner: str, category: str, amount: int, charge: tuple | None) -> None:
        self.cells[owner, category] += amount
        if self.pieces is not None and charge is not None:
            self.pieces.append(Piece(charge[0], charge[1], owner, category, money(amount)))

    def buyer(self, row: dict) -> str:
        return owner_of(self.rules.commitments.buyer or self.rules.owner_from, row) or self.rules.fallback

    def add(self, kind: str, commitment: str | None, charge: tuple | None, cost: int, used: int, saving: int,
            row: dict) -> None:
        owner = owner_of(self.rules.owner_from, row) or self.rules.fallback
        if kind == "other":
            rule = next((r for r in self.rules.shared if r.matches(row, owner)), None)
            if rule is None:
                self.put(owner, "direct", cost, charge)
                self.usage[owner] += cost
            else:
                self.pending.append((rule, cost, charge))
            return
        if commitment is None:  # a commitment row without an id: its own row names the buyer
            known = _Commitment(self.buyer(row))
        elif commitment not in self.commitments:
            known = self.commitments[commitment] = _Commitment(self.buyer(self.buyer_rows.get(commitment, {})))
        else:
            known = self.commitments[commitment]
        known.sums[kind] += cost
        if kind == "used":
            self.put(owner, "commitment_used", cost, charge)
            self.usage[owner] += cost
            self.savings[owner] += saving
            known.sums["savings"] += saving
            known.users[owner] += cost
            known.spread[owner] += used
        elif kind == "unused":
            self.pending.append((known, cost, charge))
        else:
            self.put(known.buyer, "commitment_purchase", cost, charge)

    def receivers(self, rule: SharedRule) -> dict[str, int]:
        if rule.shares is not None:
            fractions = {o: Fraction(s) for o, s in rule.shares.items()}
            common = lcm(*(f.denominator for f in fractions.values()))
            return {o: int(f * common) for o, f in fractions.items()}
        pool = rule.among or [o for o, u in self.usage.items() if u > 0 and o != self.rules.fallback]
        weights = {o: self.usage.get(o, 0) for o in pool if self.usage.get(o, 0) > 0}
        if rule.split == "proportional" and weights:
            return weights
        return dict.fromkeys(pool, 1) or {self.rules.fallback: 1}

    def finish(self, total: int, month: str | None, currency: str | None) -> Allocation:
        pending = self.pending
        if self.pieces is None:  # no per-charge detail: split each rule's and commitment's total once
            merged: dict[int, list] = {}
            for target, cost, _ in pending:
                merged.setdefault(id(target), [target, 0, None])[1] += cost
            pending = [tuple(x) for x in merged.values()]
        for target, cost, charge in pending:
            if isinstance(target, SharedRule):
                for owner, part in split(cost, self.receivers(target)).items():
                    self.put(owner, "shared", part, charge)
                continue
            users = {o: u for o, u in target.spread.items() if u > 0}
            weights = users if self.rules.commitments.unused == "spread" and users else {target.buyer: 1}
            for owner, part in split(cost, weights).items():
                self.put(owner, "commitment_unused", part, charge)
                target.unused_to[owner] += part
        if sum(self.cells.values()) != total:
            raise RuntimeError("allocation lost or duplicated cost: a bug")
        cents, saved = round_table(dict(self.cells)), _cents_by_owner(self.savings)
        owners = {o for o, _ in cents} | set(saved) | {self.rules.fallback}
        table = {o: OwnerLine(o, **{c: money(cents.get((o, c), 0), 2) for c in CATEGORIES},
                              commitment_savings=saved.get(o, Decimal(0))) for o in owners}
        totals = OwnerLine("total", **{c: sum((getattr(x, c) for x in table.values()), Decimal(0))
                                       for c in (*CATEGORIES, "commitment_savings")})
        unallocated = table.pop(self.rules.fallback)
        shown = [x for x in table.values() if any(getattr(x, c) for c in (*CATEGORIES, "commitment_savings"))]
        pieces = None if self.pieces is None else sorted(self.pieces, key=lambda p: (p.ingest_id, p.source_row))
        return Allocation(self.rules.cost, month, currency, sorted(shown, key=lambda x: (-x.total, x.owner)),
                          unallocated, totals, money(half_up_cents(total), 2), money(total),
                          [c.line(k) for k, c in sorted(self.commitments.items())], pieces)
