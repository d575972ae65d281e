"""The HTTP API end to end on SQLite and PostgreSQL (``db_url`` from ``tests/conftest.py``).

The app runs in-process (FastAPI's TestClient) with its real lifespan: migrations, job workers.
Keys are created with :func:`store.create_key`; every state change is checked in the database
and in the audit log.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import store
from api.app import create_app
from api.settings import Settings
from models.readers import read_price_book, read_usage
from solver.planner import plan_for_usage
from tests.api_env import PROBLEM, Env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _done_plan(env: Env, creator: str = "alice") -> str:
    usage = env.upload(creator, "usage", env.files["usage"]).json()["id"]
    prices = env.upload(creator, "prices", env.files["prices"]).json()["id"]
    r = env.client.post("/v1/plans", headers=env.h(creator),
                        json={"name": "June buy", "usage_dataset": usage, "prices_dataset": prices})
    assert r.status_code == 202, r.text
    assert env.wait(r.json()["id"])["status"] == "done"
    return r.json()["id"]


def _submitted_plan(env: Env) -> str:
    pid = _done_plan(env)
    assert env.client.post(f"/v1/plans/{pid}/submit", headers=env.h("alice")).status_code == 200
    return pid


# --------------------------------------------------------------------------- the workflow end to end

def test_workflow_end_to_end(env: Env) -> None:
    c = env.client
    r = env.upload("alice", "usage", env.files["usage"])
    assert r.status_code == 201, r.text
    usage = r.json()
    assert usage["kind"] == "usage" and usage["size"] == env.files["usage"].stat().st_size
    prices = env.upload("alice", "prices", env.files["prices"]).json()
    assert c.get(f"/v1/datasets/{usage['id']}", headers=env.h("victor")).json() == usage
    assert c.get(f"/v1/datasets/{usage['id']}/content", headers=env.h("victor")).content == \
        env.files["usage"].read_bytes()
    page = c.get("/v1/datasets?limit=1", headers=env.h("victor")).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["next_offset"] == 1
    assert c.get("/v1/datasets?kind=prices", headers=env.h("victor")).json()["items"][0]["id"] == prices["id"]

    r = c.post("/v1/plans", headers=env.h("alice"),
               json={"name": "June buy", "usage_dataset": usage["id"], "prices_dataset": prices["id"]})
    assert r.status_code == 202 and r.json()["status"] == "queued"
    pid = r.json()["id"]
    plan = env.wait(pid)
    assert plan["status"] == "done", plan["error"]
    assert plan["approval"] == "draft" and plan["content_hash"]

    book = read_price_book(env.files["prices"])
    expected = plan_for_usage(read_usage(env.files["usage"], known_pools=set(book.on_demand)), book)
    assert expected.purchases
    assert plan["result"]["purchases"] == [p.model_dump(mode="json") for p in expected.purchases]
    assert plan["result"]["summary"]["expected_cost"] == pytest.approx(expected.summary.expected_cost, rel=1e-9)

    r = c.post(f"/v1/plans/{pid}/submit", headers=env.h("alice"))
    assert r.status_code == 200 and r.json()["approval"] == "submitted" and r.json()["submitted_by"] == "alice"
    r = c.post(f"/v1/plans/{pid}/approve", headers=env.h("fred"), json={"comment": "within budget"})
    assert r.status_code == 200, r.text
    assert r.json()["approval"] == "approved" and r.json()["decided_by"] == "fred"
    assert r.json()["decision_comment"] == "within budget"

    listed = c.get("/v1/plans?approval=approved", headers=env.h("victor")).json()
    assert [p["id"] for p in listed["items"]] == [pid] and listed["items"][0]["result"] is None

    audit = c.get(f"/v1/plans/{pid}/audit", headers=env.h("victor")).json()
    assert [(e["action"], e["outcome"]) for e in audit["items"]] == [
        ("plan.create", "ok"), ("plan.start", "ok"), ("plan.finish", "ok"), ("plan.submit", "ok"),
        ("plan.approve", "ok")]
    v = c.get("/v1/audit/verify", headers=env.h("adam")).json()
    assert v["ok"] and v["approved_plan_problems"] == []
    assert c.get("/v1/audit/verify", headers=env.h("fred")).status_code == 403
    with env.sessions() as s:
        assert store.verify(s).ok

    cmp = c.get(f"/v1/plans/compare?ids={pid},{pid}", headers=env.h("victor")).json()
    assert cmp["plans"][0]["expected_savings"] == pytest.approx(expected.summary.expected_savings)
    assert cmp["best_expected_savings"] == pid


def test_reject_needs_a_comment_and_is_final(env: Env) -> None:
    pid = _submitted_plan(env)
    r = env.client.post(f"/v1/plans/{pid}/reject", headers=env.h("fred"), json={"comment": " "})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    r = env.client.post(f"/v1/plans/{pid}/reject", headers=env.h("fred"), json={"comment": "too much 3-year"})
    assert r.status_code == 200 and r.json()["approval"] == "rejected"
    assert env.client.post(f"/v1/plans/{pid}/approve", headers=env.h("fiona")).status_code == 409


def test_failed_solve_is_reported(env: Env, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"  # parses, but its pool has no price in the book
    other.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,aws:ec2:xx-none-1:z9:linux,1\n")
    usage = env.upload("alice", "usage", other).json()["id"]
    prices = env.upload("alice", "prices", env.files["prices"]).json()["id"]
    pid = env.client.post("/v1/plans", headers=env.h("alice"),
                          json={"name": "x", "usage_dataset": usage, "prices_dataset": prices}).json()["id"]
    plan = env.wait(pid)
    assert plan["status"] == "failed" and f"usage dataset {usage}" in plan["error"] and "column 'pool'" in plan["error"]
    assert env.client.post(f"/v1/plans/{pid}/submit", headers=env.h("alice")).status_code == 409


# --------------------------------------------------------------------------- forbidden transitions

FORBIDDEN = [
    # (name, plan state, who, action, expected status)
    ("procurement approves", "submitted", "paula", "approve", 403),
    ("creator approves", "submitted_by_fred", "fred", "approve", 403),
    ("submitter approves", "submitted_by_fiona", "fiona", "approve", 403),
    ("viewer submits", "done", "victor", "submit", 403),
    ("approve twice", "approved", "fiona", "approve", 409),
    ("approve unsubmitted", "done", "fred", "approve", 409),
    ("reject approved", "approved", "fiona", "reject", 409),
    ("submit twice", "submitted", "alice", "submit", 409),
    ("no key", "submitted", None, "approve", 401),
    ("wrong key", "submitted", "forged", "approve", 401),
]


@pytest.mark.parametrize("case", FORBIDDEN, ids=[c[0] for c in FORBIDDEN])
def test_forbidden_transition_changes_nothing_but_the_audit_log(env: Env, case: tuple) -> None:
    _, state, who, action, status = case
    creator = "fred" if state == "submitted_by_fred" else "alice"
    pid = _done_plan(env, creator)
    if state.startswith("submitted") or state == "approved":
        submitter = "fiona" if state == "submitted_by_fiona" else creator
        assert env.client.post(f"/v1/plans/{pid}/submit", headers=env.h(submitter)).status_code == 200
    if state == "approved":
        assert env.client.post(f"/v1/plans/{pid}/approve", headers=env.h("fred")).status_code == 200
    before_row, before_audit = env.plan_row(pid), env.audit(pid)
    headers = {} if who is None else (
        {"Authorization": "Bearer cp_000000000000_forged"} if who == "forged" else env.h(who))
    r = env.client.post(f"/v1/plans/{pid}/{action}", headers=headers, json={"comment": "no"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status and body["detail"] and body["type"].startswith("urn:commitplan:problem:")
    assert env.plan_row(pid) == before_row
    after = env.audit(pid)
    assert after[:-1] == before_audit or [e.seq for e in after[:-1]] == [e.seq for e in before_audit]
    assert len(after) == len(before_audit) + 1
    assert after[-1].outcome == "refused" and after[-1].action == f"plan.{action}"
    with env.sessions() as s:
        assert store.verify(s).ok


def test_concurrent_decisions_leave_exactly_one(env: Env) -> None:
    pid = _submitted_plan(env)
    clients = [TestClient(env.app) for _ in range(20)]
    barrier, codes = threading.Barrier(20), [0] * 20

    def decide(i: int) -> None:
        who, action = ("fred", "approve") if i % 2 else ("fiona", "reject")
        barrier.wait()
        codes[i] = clients[i].post(f"/v1/plans/{pid}/{action}", headers=env.h(who),
                                   json={"comment": f"call {i}"}).status_code

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [200] + [409] * 19, codes
    decisions = [e for e in env.audit(pid) if e.action in ("plan.approve", "plan.reject")]
    assert len(decisions) == 20 and sum(e.outcome == "ok" for e in decisions) == 1
    row = env.client.get(f"/v1/plans/{pid}", headers=env.h("victor")).json()
    assert row["approval"] in ("approved", "rejected")
    with env.sessions() as s:
        assert store.verify(s).ok


# --------------------------------------------------------------------------- FinOps reads over the ledger

def test_savings_allocation_and_anomalies_read_the_ledger(tmp_path: Path, estate: dict[str, Path]) -> None:
    """The ledger is DuckDB whatever the store's database: one backend is enough here."""
    from billing.allocation import allocate
    from billing.allocation_rules import load_rules
    from billing.ingest import ingest
    from billing.savings import commitment_savings, monthly_savings
    from tests.test_anomalies import HEADER, _row
    from tests.test_ingest import FOCUS_SAMPLE

    focus12 = Path(__file__).parent / "data" / "focus12" / "focus12_aws.csv"
    rules = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "allocation" / "rules.yaml"
    ledger = tmp_path / "ledger.duckdb"
    ingest([focus12], ledger)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'cp.db'}", ledger_path=ledger, allocation_rules=rules)
    app = create_app(settings)
    with TestClient(app) as c:
        with app.state.sessions() as s:
            h = {"Authorization": f"Bearer {store.create_key(s, 'victor', 'viewer')[1]}"}
        body = c.get("/v1/savings", headers=h).json()
        assert body["months"] == [m.to_json() for m in monthly_savings(ledger)]
        assert len(body["commitments"]) == len(commitment_savings(ledger))
        assert c.get(f"/v1/plans/{uuid.uuid4()}/savings", headers=h).status_code == 404
        assert c.get("/v1/allocation?month=2024", headers=h).status_code == 422

    ledger2 = tmp_path / "ledger2.duckdb"
    ingest([FOCUS_SAMPLE], ledger2)
    app = create_app(settings.model_copy(update={"ledger_path": ledger2}))
    with TestClient(app) as c:
        got = c.get("/v1/allocation", headers=h).json()
        assert got == json.loads(allocate(ledger2, load_rules(rules)).to_json())

    lines = [HEADER]
    for d in range(60):
        day = dt.datetime(2024, 3, 1) + dt.timedelta(days=d)
        lines.append(_row(1000.0 + (800.0 if d == 50 else 0.0), day, day + dt.timedelta(days=1), "us-east-1", "EC2",
                          "111", "shop", {"team": "a"}))
    bill = tmp_path / "bill.csv"
    bill.write_text("".join(lines))
    ledger3 = tmp_path / "ledger3.duckdb"
    ingest([bill], ledger3)
    app = create_app(settings.model_copy(update={"ledger_path": ledger3}))
    with TestClient(app) as c:
        found = c.get("/v1/anomalies", headers=h).json()
        assert found and {a["date"] for a in found} == {"2024-04-20"}
        assert c.get("/v1/anomalies?threshold_dollars=1000", headers=h).json() == []

    app = create_app(settings.model_copy(update={"ledger_path": None}))
    with TestClient(app) as c:
        r = c.get("/v1/savings", headers=h)
        assert r.status_code == 404 and "COMMITPLAN_LEDGER" in r.json()["detail"]
