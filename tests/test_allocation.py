"""Allocation (``billing.allocation``): sample bills against hand computations (csv + Decimal, not
DuckDB), exact splits, rules-file errors, and a property test over random ledgers and rules: every
charge is assigned exactly once and the rounded report foots to the ledger total, to the cent."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.allocation import CATEGORIES, Allocation, OwnerLine, allocate
from billing.allocation_rules import load_rules, parse_rules
from billing.ingest import ingest
from billing.money import round_table as _round_table
from models.errors import InputError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.exists():
    DATA = Path("/work/shared/data")
FOCUS10 = DATA / "focus-sample-data" / "FOCUS-1.0" / "focus_sample.csv"
FOCUS12 = [Path(__file__).parent / "data" / "focus12" / f"focus12_{p}.csv" for p in ("aws", "azure", "gcp")]
GCP = Path(__file__).parent / "data" / "gcp" / "billing_export_sample.csv"
EXAMPLES = Path(__file__).resolve().parents[1] / "scenarios" / "examples" / "allocation"
NULLS = {"", "NULL", "null"}
CENT = Decimal("0.01")
COST = {"effective": "EffectiveCost", "billed": "BilledCost"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        return [{k: ("" if v in NULLS else v) for k, v in r.items()} for r in csv.DictReader(stream)]


def dec(text: str) -> Decimal:
    """A CSV amount as the ledger keeps it: 12 decimals, half away from zero (as DuckDB casts)."""
    return Decimal(text).quantize(Decimal("1e-12"), ROUND_HALF_UP) if text else Decimal(0)


def tag(row: dict, key: str, column: str = "Tags") -> str | None:
    tags = json.loads(row[column]) if row[column] else {}
    if isinstance(tags, list):
        tags = {t["key"]: t["value"] for t in tags}
    return next((str(v) for k, v in tags.items() if k.lower() == key.lower() and str(v).strip()), None)


def kind(row: dict, view: str) -> str:
    status, cid = row.get("CommitmentDiscountStatus", ""), row.get("CommitmentDiscountId", "")
    category = row["ChargeCategory"]
    purchase = category == "Purchase" and bool(cid)
    if status == "Unused" and not (view == "billed" and purchase):
        return "unused"
    if purchase:
        return "purchase"
    return "used" if status == "Used" or (not status and cid and category == "Usage") else "other"


def cells_of(allocation: Allocation) -> dict[tuple[str, str], Decimal]:
    """The exact owner x category table, summed from the per-charge pieces."""
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for piece in allocation.detail:
        out[piece.owner, piece.category] += piece.amount
    return out


def lines_of(allocation: Allocation) -> dict[str, OwnerLine]:
    return {x.owner: x for x in [*allocation.owners, allocation.unallocated]}


def check_foots(allocation: Allocation, exact_total: Decimal) -> None:
    """The rounded report: owners + unallocated = categories = ledger total rounded half-up; every
    rounded figure within a cent of the exact one (from the pieces)."""
    lines = lines_of(allocation)
    assert allocation.ledger_total == exact_total.quantize(CENT, ROUND_HALF_UP)
    assert sum(x.total for x in lines.values()) == allocation.ledger_total == allocation.totals.total
    assert sum(x.total for x in allocation.owners) + allocation.unallocated.total == allocation.ledger_total
    for c in CATEGORIES:
        assert sum(getattr(x, c) for x in lines.values()) == getattr(allocation.totals, c)
    if allocation.detail is not None:
        exact = cells_of(allocation)
        assert sum(exact.values()) == exact_total
        for c in CATEGORIES:
            assert abs(getattr(allocation.totals, c) - sum(v for (_, k), v in exact.items() if k == c)) < CENT
        for owner in set(lines) | {o for o, _ in exact}:  # owners not shown have 0.00 everywhere
            line = lines.get(owner, OwnerLine(owner))
            assert abs(line.total - sum(v for (o, _), v in exact.items() if o == owner)) < CENT
            for c in CATEGORIES:
                assert abs(getattr(line, c) - exact.get((owner, c), 0)) < CENT


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("allocation")
    paths = {"focus10": [FOCUS10], "focus12": FOCUS12, "gcp": [GCP]}
    for name, files in paths.items():
        ingest(files, out / f"{name}.duckdb")
    return {name: out / f"{name}.duckdb" for name in paths}


# --- real bills against hand computations -----------------------------------------------------

FOCUS12_RULES = """
owner_from: [{tag: owner}]
commitments: {unused: %s}
cost: %s
"""


def focus12_expected(view: str, unused: str) -> dict[tuple[str, str], Fraction]:
    """Owner x category by hand: users pay their covered usage, buyers (the Owner tag of the purchase
    row) the purchases and, by policy, the unused cost, or its users in proportion to covered cost."""
    rows = [r for path in FOCUS12 for r in rows_of(path)]
    owner = [tag(r, "owner") or "unallocated" for r in rows]
    buyer: dict[str, str] = {}  # first purchase row, else first unused row (stable sort: file order)
    for i in sorted(range(len(rows)), key=lambda i: (rows[i]["ChargeCategory"] != "Purchase",
                                                     rows[i]["ChargePeriodStart"])):
        r = rows[i]
        names_buyer = r["ChargeCategory"] == "Purchase" or r["CommitmentDiscountStatus"] == "Unused"
        if r["CommitmentDiscountId"] and names_buyer:
            buyer.setdefault(r["CommitmentDiscountId"], owner[i])
    covered: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r, o in zip(rows, owner):
        if kind(r, view) == "used":
            covered[r["CommitmentDiscountId"]][o] += dec(r["EffectiveCost"])
    out: dict[tuple[str, str], Fraction] = defaultdict(Fraction)
    for r, o in zip(rows, owner):
        cost, k, cid = Fraction(dec(r[COST[view]])), kind(r, view), r["CommitmentDiscountId"]
        if k == "other":
            out[o, "direct"] += cost
        elif k == "used":
            out[o, "commitment_used"] += cost
        elif k == "purchase":
            out[buyer[cid], "commitment_purchase"] += cost
        elif unused == "spread" and sum(covered[cid].values()) > 0:
            for user, weight in covered[cid].items():
                out[user, "commitment_unused"] += cost * Fraction(weight) / Fraction(sum(covered[cid].values()))
        else:
            out[buyer[cid], "commitment_unused"] += cost
    return out


@pytest.mark.parametrize("view, unused", [("effective", "buyer"), ("effective", "spread"), ("billed", "buyer")])
def test_focus12_commitments_go_to_users_and_unused_by_policy(ledgers, view, unused):
    allocation = allocate(ledgers["focus12"], parse_rules(FOCUS12_RULES % (unused, view)), month="2026-05", detail=True)
    expected, got = focus12_expected(view, unused), cells_of(allocation)
    assert {k for k, v in expected.items() if v} == {k for k, v in got.items() if v}
    for key, value in expected.items():  # spread splits at 1e-12: a few units off the exact fraction
        assert abs(Fraction(got[key]) - value) <= (Fraction(1, 10**9) if unused == "spread" else 0), key
    check_foots(allocation, sum((dec(r[COST[view]]) for p in FOCUS12 for r in rows_of(p)), Decimal(0)))
    # buyer vs user: some commitment is bought by one team and used by others
    mixed = [c for c in allocation.commitments if c.users and set(c.users) != {c.buyer}]
    assert mixed and all(c.purchase + c.used + c.unused >= 0 for c in allocation.commitments)
    if view == "effective" and unused == "buyer":
        assert all(set(c.unused_to) <= {c.buyer} for c in allocation.commitments)
        savings = defaultdict(Decimal)
        for p in FOCUS12:
            for r in rows_of(p):
                if kind(r, view) == "used":
                    savings[tag(r, "owner")] += dec(r["ListCost"]) - dec(r["EffectiveCost"])
        for owner, line in lines_of(allocation).items():
            assert abs(line.commitment_savings - savings.get(owner, 0)) < CENT


@pytest.mark.parametrize("view", ["effective", "billed"])
def test_focus10_sample_owners_from_tags_with_mapping_and_fallback(ledgers, view):
    rules = parse_rules(f"""
cost: {view}
owner_from:
  - tag: business_unit
    map: {{PeoriaData: data-platform}}
  - tag: application
""")
    allocation = allocate(ledgers["focus10"], rules, detail=True)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows_of(FOCUS10):
        owner = tag(r, "business_unit") or tag(r, "application") or "unallocated"
        expected[{"PeoriaData": "data-platform"}.get(owner, owner)] += dec(r[COST[view]])
    got: dict[str, Decimal] = defaultdict(Decimal)
    for (owner, _), value in cells_of(allocation).items():
        got[owner] += value
    assert got == {k: v for k, v in expected.items() if k in got} and set(got) == set(expected)
    assert "PeoriaData" not in got and got["data-platform"] == expected["data-platform"] != 0
    check_foots(allocation, sum(expected.values(), Decimal(0)))
    assert allocation.unallocated.total == expected["unallocated"].quantize(CENT, ROUND_HALF_UP)


def test_gcp_labels_and_projects_with_a_central_buyer(ledgers):
    allocation = allocate(ledgers["gcp"], load_rules(EXAMPLES / "gcp_labels.yaml"), detail=True)
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows_of(GCP):
        cost = dec(r["cost"]) + sum((Decimal(str(c["amount"])) for c in json.loads(r["credits"] or "[]")), Decimal(0))
        if r["sku.description"].startswith("Commitment"):
            expected["finance", "commitment_purchase"] += cost
        else:
            project = r["project.id"]
            projects = {"shop-prod": "checkout", "data-lake": "analytics"}
            owner = tag(r, "team", "labels") or projects.get(project, project)
            expected[owner, "direct"] += cost
    assert {k: v for k, v in cells_of(allocation).items() if v} == {k: v for k, v in expected.items() if v}
    check_foots(allocation, sum(expected.values(), Decimal(0)))


@pytest.mark.parametrize("example, ledger", [("rules.yaml", "focus10"), ("focus12_spread.yaml", "focus12"),
                                             ("gcp_labels.yaml", "gcp")])
def test_examples_load_and_foot(ledgers, example, ledger):
    allocation = allocate(ledgers[ledger], load_rules(EXAMPLES / example))
    assert allocation.totals.total == allocation.ledger_total
    assert json.loads(allocation.to_json())["categories"]["total"] == float(allocation.ledger_total)


def test_month_currency_and_empty_period(ledgers, tmp_path):
    rules = parse_rules("owner_from: [{tag: owner}]")
    empty = allocate(ledgers["focus12"], rules, month="2026-04")
    assert empty.ledger_total == 0 and not empty.owners and empty.unallocated_share is None
    with pytest.raises(ValueError, match="2026-05"):
        allocate(ledgers["focus12"], rules, month="May 2026")
    for currency, account in (("USD", "1"), ("EUR", "2")):
        row = charge_row("usage", "2025-01", 1, "", ("1", "one"), "S", "", Decimal(1), Decimal(1), Decimal(1))
        write_focus(tmp_path / f"{currency}.csv", [{**row, "BillingCurrency": currency, "BillingAccountId": account}])
    ingest([tmp_path / "USD.csv", tmp_path / "EUR.csv"], tmp_path / "mixed.duckdb")
    with pytest.raises(InputError, match="currencies"):
        allocate(tmp_path / "mixed.duckdb", rules)
    assert allocate(tmp_path / "mixed.duckdb", rules, currency="EUR").currency == "EUR"


# --- exact splits ------------------------------------------------------------------------------

def small_ledger(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """(team tag, service, cost) rows as a FOCUS file, loaded into a new ledger."""
    path = tmp_path / "small.csv"
    write_focus(path, [charge_row("usage", "2025-01", 1, json.dumps({"team": t}) if t else "", ("1", "one"), s, "",
                                  Decimal(c), Decimal(c), Decimal(c)) for t, s, c in rows])
    ingest([path], tmp_path / "small.duckdb")
    return tmp_path / "small.duckdb"


@pytest.mark.parametrize("split, extra, expected", [
    ("proportional", "", {"a": "75.00", "b": "25.00"}),
    ("evenly", "", {"a": "350.00", "b": "150.00"}),
    ("evenly", "among: [a, b, c]", {"a": "333.34", "b": "133.33", "c": "33.33"}),  # a: 1e-12 more
    ("fixed", "shares: {a: 0.6, b: 0.4}", {"a": "360.00", "b": "140.00"}),
])
def test_shared_costs_split_exactly(tmp_path, split, extra, expected):
    ledger = small_ledger(tmp_path, [("a", "Compute", "300"), ("b", "Compute", "100"), ("", "AWS Support", "100")])
    rules = parse_rules(f"owner_from: [{{tag: team}}]\nshared:\n  - match: {{service_name: 'AWS Support*'}}\n"
                        f"    split: {split}\n    {extra}\n")
    allocation = allocate(ledger, rules)
    totals = {o.owner: o.total for o in allocation.owners}
    if split == "proportional":
        totals = {o.owner: o.shared for o in allocation.owners}
    assert totals == {k: Decimal(v) for k, v in expected.items()}
    assert allocation.unallocated.total == 0 and allocation.ledger_total == Decimal("500.00")


@pytest.mark.parametrize("view, unused, fin, a, b", [
    ("effective", "buyer", {"commitment_unused": "2"}, {"commitment_used": "6"}, {"commitment_used": "2"}),
    ("effective", "spread", {}, {"commitment_used": "6", "commitment_unused": "1.5"},
     {"commitment_used": "2", "commitment_unused": "0.5"}),
    ("billed", "buyer", {"commitment_purchase": "10"}, {}, {}),
])
def test_buyer_pays_purchase_and_idle_part_users_pay_what_they_used(tmp_path, view, unused, fin, a, b):
    """Commitment ri-1, bought by team fin (fee 10/period), covers 6 of a's usage and 2 of b's; 2 idle."""
    team = json.dumps
    rows = [charge_row("purchase", "2025-01", 0, team({"team": "fin"}), ACCOUNTS[0], "Compute", "ri-1",
                       Decimal(10), Decimal(0), Decimal(10)),
            charge_row("used", "2025-01", 0, team({"team": "a"}), ACCOUNTS[0], "Compute", "ri-1",
                       Decimal(0), Decimal(6), Decimal(9)),
            charge_row("used", "2025-01", 0, team({"team": "b"}), ACCOUNTS[1], "Compute", "ri-1",
                       Decimal(0), Decimal(2), Decimal(3)),
            charge_row("unused", "2025-01", 0, team({"team": "fin"}), ACCOUNTS[0], "Compute", "ri-1",
                       Decimal(0), Decimal(2), Decimal(2))]
    write_focus(tmp_path / "ri.csv", rows)
    ingest([tmp_path / "ri.csv"], tmp_path / "ri.duckdb")
    rules = parse_rules(f"cost: {view}\nowner_from: [{{tag: team}}]\ncommitments: {{unused: {unused}}}")
    allocation = allocate(tmp_path / "ri.duckdb", rules)
    lines = lines_of(allocation)
    for owner, expected in (("fin", fin), ("a", a), ("b", b)):
        line = lines.get(owner, OwnerLine(owner))
        assert {c: getattr(line, c) for c in CATEGORIES if getattr(line, c)} == \
            {c: Decimal(v) for c, v in expected.items()}, owner
    assert (lines["a"].commitment_savings, lines["b"].commitment_savings) == (Decimal(3), Decimal(1))
    [line] = allocation.commitments
    assert (line.buyer, line.users) == ("fin", {"a": Decimal(6 if view == "effective" else 0),
                                                "b": Decimal(2 if view == "effective" else 0)})
    assert allocation.ledger_total == 10


def test_thirds_foot_and_untagged_cost_is_reported(tmp_path):
    ledger = small_ledger(tmp_path, [("a", "S", "0.01"), ("b", "S", "0.01"), ("c", "S", "0.01"), ("", "X", "1.00"),
                                     ("", "Y", "0.333333333333")])
    rules = parse_rules("owner_from: [{tag: team}]\nshared: [{match: {service_name: X}, split: evenly}]")
    allocation = allocate(ledger, rules, detail=True)
    assert sorted(o.shared for o in allocation.owners) == [Decimal("0.33"), Decimal("0.33"), Decimal("0.34")]
    assert allocation.unallocated.total == Decimal("0.33") and allocation.ledger_total == Decimal("1.36")
    assert round(allocation.unallocated_share, 4) == 0.2426
    check_foots(allocation, Decimal("1.363333333333"))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from("pqrstu"), st.sampled_from("xyzw")), st.integers(-10**13, 10**13),
                       max_size=24))
def test_controlled_rounding_keeps_every_margin_within_a_cent(cells):
    rounded = _round_table(cells)
    assert sum(rounded.values()) == int((Decimal(sum(cells.values())) / 10**10).quantize(1, ROUND_HALF_UP))
    for axis in (0, 1):
        for label in {k[axis] for k in cells}:
            exact = sum(v for k, v in cells.items() if k[axis] == label)
            assert exact // 10**10 <= sum(v for k, v in rounded.items() if k[axis] == label) <= -(-exact // 10**10)
    assert all(cells[k] // 10**10 <= rounded[k] <= -(-cells[k] // 10**10) for k in cells)


# --- rules-file errors -------------------------------------------------------------------------

@pytest.mark.parametrize("text, row, column, message", [
    ("shared:\n  - match: {service_name: x}\n    split: fixed\n    shares: {a: 0.5, b: 0.4}\n", 4, "shared[0].shares",
     "sum to exactly 1"),
    ("owner_from:\n  - tag: team\n    colour: red\n", 3, "owner_from[0].colour", "unknown key 'colour'"),
    ("commitments:\n  unused: nobody\n", 2, "commitments.unused", "'buyer' or 'spread'"),
    ("owner_from:\n  - tag: team\n    account: {1: x}\n", 2, "owner_from[0]", "exactly one of"),
    ("shared:\n  - split: evenly\n", 2, "shared[0].match", "missing key 'match'"),
    ("shared:\n  - match: {colour: red}\n    split: evenly\n", 2, "shared[0].match", "unknown column 'colour'"),
    ("shared:\n  - match: {owner: x}\n    split: evenly\n    shares: {a: 1}\n", 2, "shared[0]", "split: fixed"),
    ("owner_from:\n  - tag: a\n    tag: b\n", 3, None, "duplicate key 'tag'"),
    ("owner_from:\n  - tag: [a\n", 3, None, "not valid YAML"),
    ("fallback: ''\n", 1, "fallback", "must not be empty"),
    ("- tag: team\n", 1, None, "expected a mapping"),
])
def test_bad_rules_name_file_line_and_key(tmp_path, text, row, column, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        load_rules(path)
    assert (caught.value.file, caught.value.row, caught.value.column) == (str(path), row, column)


def test_rules_keep_account_ids_as_written():
    rules = parse_rules("owner_from:\n  - account: {01234567: a, 51738928782: b}\ncommitments: {buyer: finance}\n")
    assert rules.owner_from[0].account == {"01234567": "a", "51738928782": "b"}
    assert rules.commitments.buyer[0].owner == "finance"


# --- random ledgers (written as FOCUS; test_allocation_property draws them) ----------------------------------------------------------

COLUMNS = ["BillingAccountId", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart",
           "ChargePeriodEnd", "ChargeCategory", "ProviderName", "SubAccountId", "SubAccountName", "ServiceName",
           "BilledCost", "EffectiveCost", "ListCost", "CommitmentDiscountId", "CommitmentDiscountStatus", "Tags"]
OWNERS = ["a", "b", "c", "shared"]
ACCOUNTS = [("111", "acc-one"), ("222", "acc-two"), ("333", "acc-three")]
SERVICES = ["Compute", "Storage", "AWS Support (Business)", "Network"]
KINDS = {"usage": ("Usage", ""), "used": ("Usage", "Used"), "unused": ("Usage", "Unused"), "purchase": ("Purchase", ""),
         "fee": ("Purchase", "Unused"), "tax": ("Tax", ""), "credit": ("Credit", "")}


def charge_row(kind_: str, month: str, hour: int, tags: str, account: tuple[str, str], service: str, commitment: str,
               billed: Decimal, effective: Decimal, listed: Decimal) -> dict[str, str]:
    year, mon = map(int, month.split("-"))
    end = f"{year + mon // 12}-{mon % 12 + 1:02d}-01T00:00:00Z"
    category, status = KINDS[kind_]
    start = f"{month}-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z"
    return {"BillingAccountId": "999", "BillingCurrency": "USD", "BillingPeriodStart": f"{month}-01T00:00:00Z",
            "BillingPeriodEnd": end, "ChargePeriodStart": start,
            "ChargePeriodEnd": start[:11] + f"{hour % 24:02d}:59:59Z", "ChargeCategory": category,
            "ProviderName": "AWS", "SubAccountId": account[0], "SubAccountName": account[1], "ServiceName": service,
            "BilledCost": format(billed, "f"), "EffectiveCost": format(effective, "f"), "ListCost": format(listed, "f"),
            "CommitmentDiscountId": commitment, "CommitmentDiscountStatus": status, "Tags": tags}


def write_focus(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


money = st.builds(lambda units, scale: Decimal(units).scaleb(-scale), st.integers(0, 10**12), st.integers(0, 12))
tag_texts = st.one_of(
    st.just(""),
    st.builds(lambda k, v: json.dumps({k: v, "env": "prod"}), st.sampled_from(["team", "Team", "bu"]),
              st.sampled_from(OWNERS + [""])),
    st.builds(lambda v: json.dumps([{"key": "team", "value": v}]), st.sampled_from(OWNERS)),
    st.builds(lambda v: f'"team": "{v}","env": "dev"', st.sampled_from(OWNERS)),  # Azure EA style
)
