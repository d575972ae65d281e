"""Allocation conserves money: random ledgers and random rules, every charge assigned exactly once,
allocated + unallocated = the ledger to the cent (the helpers are test_allocation's)."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.allocation import CATEGORIES, OwnerLine, allocate
from billing.allocation_rules import parse_rules
from billing.ingest import ingest
from tests.test_allocation import (
    ACCOUNTS,
    CENT,
    COST,
    KINDS,
    OWNERS,
    SERVICES,
    cells_of,
    charge_row,
    check_foots,
    dec,
    kind,
    lines_of,
    money,
    tag_texts,
    write_focus,
)


@st.composite
def charges(draw) -> dict[str, str]:
    kind_ = draw(st.sampled_from(sorted(KINDS)))
    x, y = draw(money), draw(money)
    commitment = draw(st.sampled_from(["ri-1", "ri-2", "sp-1"])) if kind_ in ("used", "unused", "purchase", "fee") \
        else ""
    upfront = draw(st.sampled_from([0, y]))  # a purchase's EffectiveCost: 0, or an unamortized upfront fee
    billed, effective, listed = {
        "usage": (x, x, x + y), "used": (0, x, x + y), "unused": (0, x, x), "purchase": (x, upfront, x),
        "fee": (x + y, y, x + y), "tax": (x, x, x), "credit": (-x, -x, -x)}[kind_]
    return charge_row(kind_, draw(st.sampled_from(["2025-01", "2025-02"])), draw(st.integers(0, 47)), draw(tag_texts),
                      draw(st.sampled_from(ACCOUNTS)), draw(st.sampled_from(SERVICES)), commitment,
                      Decimal(billed), Decimal(effective), Decimal(listed))


owner_names = st.sampled_from(OWNERS + ["z"])
matchers = st.one_of(
    st.builds(lambda k, m: {"tag": k, "map": m}, st.sampled_from(["team", "bu", "nope"]),
              st.dictionaries(st.sampled_from(OWNERS), owner_names, max_size=2)),
    st.builds(lambda m: {"account": m},
              st.dictionaries(st.sampled_from(["111", "acc-two", "333"]), owner_names, min_size=1, max_size=2)),
    st.builds(lambda m: {"column": "service_name", "map": m},
              st.dictionaries(st.sampled_from(SERVICES), owner_names, max_size=2)),
    st.builds(lambda o: {"owner": o}, owner_names),
)


@st.composite
def shared_rules(draw) -> dict:
    match = draw(st.sampled_from([{"service_name": "*Support*"}, {"owner": "shared"}, {"owner": ["unallocated", "z"]},
                                  {"charge_category": "Tax", "sub_account_id": "[12]*"}, {"service_name": "N?twork"}]))
    split = draw(st.sampled_from(["evenly", "proportional", "fixed"]))
    if split == "fixed":
        owners = draw(st.lists(owner_names, min_size=1, max_size=3, unique=True))
        cuts = sorted(draw(st.lists(st.integers(1, 999), min_size=len(owners) - 1, max_size=len(owners) - 1,
                                    unique=True)))
        parts = [b - a for a, b in zip([0, *cuts], [*cuts, 1000])]  # thousandths summing to exactly 1
        return {"match": match, "split": "fixed", "shares": {o: p / 1000 for o, p in zip(owners, parts)}}
    among = draw(st.one_of(st.none(), st.lists(owner_names, min_size=1, max_size=3, unique=True)))
    return {"match": match, "split": split, **({"among": among} if among else {})}


rule_sets = st.builds(
    lambda cost, owner_from, shared, buyer, unused: {
        "cost": cost, "owner_from": owner_from, "shared": shared,
        "commitments": {"unused": unused, **({"buyer": buyer} if buyer is not None else {})}},
    st.sampled_from(["effective", "billed"]), st.lists(matchers, max_size=3), st.lists(shared_rules(), max_size=2),
    st.one_of(st.none(), owner_names, matchers), st.sampled_from(["buyer", "spread"]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(charges(), min_size=1, max_size=40), rule_sets, st.sampled_from([None, "2025-01", "2025-02"]))
def test_allocation_conserves_money(rows, rule_set, month):
    rules = parse_rules(yaml.safe_dump(rule_set), "random.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        write_focus(Path(tmp) / "bill.csv", rows)
        [report] = ingest([Path(tmp) / "bill.csv"], Path(tmp) / "ledger.duckdb")
        assert report.rows_loaded == len(rows)
        allocation = allocate(Path(tmp) / "ledger.duckdb", rules, month=month, detail=True)
        summary = allocate(Path(tmp) / "ledger.duckdb", rules, month=month)
    view = COST[rules.cost]
    in_scope = {i + 2: r for i, r in enumerate(rows) if month is None or r["BillingPeriodStart"].startswith(month)}
    pieces: dict[int, list] = defaultdict(list)
    for piece in allocation.detail:
        pieces[piece.source_row].append(piece)
    assert set(pieces) == set(in_scope)  # every charge of the period, and nothing else
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    for row_number, row in in_scope.items():  # each charge assigned exactly once, whole
        k, parts = kind(row, rules.cost), pieces[row_number]
        assert sum(p.amount for p in parts) == dec(row[view])
        assert len({p.owner for p in parts}) == len(parts)
        allowed = {"other": {"direct", "shared"}, "used": {"commitment_used"}, "unused": {"commitment_unused"},
                   "purchase": {"commitment_purchase"}}[k]
        assert {p.category for p in parts} <= allowed and (len(parts) == 1 or k in ("other", "unused"))
        if parts[0].category == "direct" or (k == "unused" and rules.commitments.unused == "buyer"):
            assert len(parts) == 1
        by_kind[k] += dec(row[view])
    exact = cells_of(allocation)
    for k in ("used", "unused", "purchase"):
        assert sum(v for (_, c), v in exact.items() if c == f"commitment_{k}") == by_kind[k]
    assert sum(v for (_, c), v in exact.items() if c in ("direct", "shared")) == by_kind["other"]
    check_foots(allocation, sum(by_kind.values(), Decimal(0)))
    check_foots(summary, sum(by_kind.values(), Decimal(0)))
    lines = lines_of(summary)
    for owner in set(lines) | {o for o, _ in exact}:  # without detail: the same figures within the cent
        for c in CATEGORIES:
            assert abs(getattr(lines.get(owner, OwnerLine(owner)), c) - exact.get((owner, c), 0)) < CENT
