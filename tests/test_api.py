"""The HTTP API end to end on SQLite and PostgreSQL (``db_url`` from ``tests/conftest.py``).

The app runs in-process (FastAPI's TestClient) with its real lifespan: migrations, job workers.
Keys are created with :func:`store.create_key`; every state change is checked in the database
and in the audit log.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import store
from api.app import create_app
from api.settings import Settings
from models.readers import read_price_book, read_usage
from scenarios.sample_estate import generate_estate
from solver.planner import plan_for_usage
from store import Plan
from store.models import AuditEntry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
PROBLEM = "application/problem+json"


@dataclass
class Env:
    client: TestClient
    app: object
    sessions: object
    keys: dict[str, str]
    files: dict[str, Path]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}", **extra}

    def upload(self, who: str, kind: str, path: Path, name: str | None = None, **headers: str):
        with path.open("rb") as f:
            return self.client.post("/v1/datasets", headers=self.h(who, **headers), data={"kind": kind},
                                    files={"file": (name or path.name, f, "text/csv")})

    def plan_row(self, plan_id: str) -> tuple:
        with self.sessions() as s:
            return tuple(s.execute(select(Plan.__table__).where(Plan.__table__.c.id == uuid.UUID(plan_id))).one())

    def audit(self, plan_id: str) -> list[AuditEntry]:
        with self.sessions() as s:
            return list(s.scalars(select(AuditEntry).where(AuditEntry.target_id == plan_id).order_by(AuditEntry.seq)))

    def wait(self, plan_id: str, who: str = "alice", timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            body = self.client.get(f"/v1/plans/{plan_id}", headers=self.h(who)).json()
            if body["status"] in ("done", "failed"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"plan {plan_id} still {body['status']} after {timeout} s")


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate_estate(4, 30, seed=1).write(tmp_path_factory.mktemp("estate"))


@pytest.fixture
def env(db_url: str, estate: dict[str, Path]) -> Iterator[Env]:
    app = create_app(Settings(database_url=db_url, max_upload_bytes=1_000_000, job_workers=2, db_pool_size=30))
    with TestClient(app) as client:
        keys = {}
        with app.state.sessions() as s:
            for name, role in [("alice", "procurement"), ("paula", "procurement"), ("fred", "finance"),
                               ("fiona", "finance"), ("adam", "admin"), ("victor", "viewer")]:
                keys[name] = store.create_key(s, name, role)[1]
        yield Env(client, app, app.state.sessions, keys, estate)


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


# --------------------------------------------------------------------------- robustness

def test_problem_json_for_router_and_validation_errors(env: Env) -> None:
    c = env.client
    for r, status in [(c.get("/v1/nothing"), 404), (c.delete("/healthz"), 405),
                      (c.get(f"/v1/plans/{uuid.uuid4()}", headers=env.h("victor")), 404),
                      (c.get("/v1/plans/not-a-uuid", headers=env.h("victor")), 422),
                      (c.post("/v1/plans", headers=env.h("alice"), json={"name": "x"}), 422),
                      (c.get("/v1/plans?limit=0", headers=env.h("victor")), 422),
                      (c.get("/v1/plans"), 401)]:
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
        body = r.json()
        assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == status
        assert "Traceback" not in r.text
    assert c.get("/v1/plans").headers["www-authenticate"].startswith("Bearer")
    r = c.post("/v1/plans", headers=env.h("alice"), json={"name": "x"})
    assert "usage_dataset" in r.json()["detail"] and r.json()["errors"]
    assert c.get("/healthz").json()["status"] == "ok"
    assert "/v1/plans/{plan_id}/approve" in c.get("/v1/openapi.json").json()["paths"]


def test_plan_requests_are_validated(env: Env) -> None:
    usage = env.upload("alice", "usage", env.files["usage"]).json()["id"]
    prices = env.upload("alice", "prices", env.files["prices"]).json()["id"]
    c = env.client
    r = c.post("/v1/plans", headers=env.h("alice"),
               json={"name": "x", "usage_dataset": usage, "prices_dataset": prices, "policy": {"coverage_max": 2}})
    assert r.status_code == 422 and "coverage_max" in r.json()["detail"]
    r = c.post("/v1/plans", headers=env.h("alice"),
               json={"name": "x", "usage_dataset": prices, "prices_dataset": prices})
    assert r.status_code == 422 and "is prices data" in r.json()["detail"]
    r = c.post("/v1/plans", headers=env.h("alice"),
               json={"name": "x", "usage_dataset": str(uuid.uuid4()), "prices_dataset": prices})
    assert r.status_code == 404
    r = c.post("/v1/plans", headers=env.h("victor"),
               json={"name": "x", "usage_dataset": usage, "prices_dataset": prices})
    assert r.status_code == 403
    assert env.upload("victor", "usage", env.files["usage"]).status_code == 403


def test_upload_limits_and_malformed_files(env: Env, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"timestamp,pool,quantity\n" + b"2025-01-01T00:00:00Z,p,1\n" * 60_000)  # 1.5 MB > 1 MB
    r = env.upload("alice", "usage", big)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM  # refused on Content-Length
    just_over = tmp_path / "just_over.csv"
    just_over.write_bytes(b"x" * 1_000_001)  # within the multipart allowance: refused while reading the file
    r = env.upload("alice", "usage", just_over)
    assert r.status_code == 413 and "1,000,000 bytes" in r.json()["detail"]
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,pool,quantity\n2025-01-01T00:00:00Z,p,1\n2025-01-01T01:00:00Z,p,lots\n")
    r = env.upload("alice", "usage", bad)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["file"] == "bad.csv" and body["row"] == 3 and body["column"] == "quantity"
    assert "bad.csv, row 3, column 'quantity'" in body["detail"]
    gz = tmp_path / "usage.csv.gz"
    gz.write_bytes(gzip.compress(env.files["usage"].read_bytes()))
    assert env.upload("alice", "usage", gz).status_code == 201
    assert env.client.get("/v1/datasets", headers=env.h("victor")).json()["total"] == 1


def test_idempotency_key(env: Env, tmp_path: Path) -> None:
    r1 = env.upload("alice", "usage", env.files["usage"], **{"Idempotency-Key": "u-1"})
    r2 = env.upload("alice", "usage", env.files["usage"], **{"Idempotency-Key": "u-1"})
    assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
    assert r2.headers["idempotent-replayed"] == "true"
    assert env.client.get("/v1/datasets", headers=env.h("victor")).json()["total"] == 1
    r3 = env.upload("alice", "prices", env.files["prices"], **{"Idempotency-Key": "u-1"})
    assert r3.status_code == 422 and "different request" in r3.json()["detail"]
    prices = env.upload("alice", "prices", env.files["prices"]).json()["id"]
    body = {"name": "x", "usage_dataset": r1.json()["id"], "prices_dataset": prices}
    p1 = env.client.post("/v1/plans", headers=env.h("alice", **{"Idempotency-Key": "p-1"}), json=body)
    p2 = env.client.post("/v1/plans", headers=env.h("alice", **{"Idempotency-Key": "p-1"}), json=body)
    assert p1.status_code == p2.status_code == 202 and p1.json()["id"] == p2.json()["id"]
    assert env.client.get("/v1/plans", headers=env.h("victor")).json()["total"] == 1
    pid = p1.json()["id"]
    env.wait(pid)
    env.client.post(f"/v1/plans/{pid}/submit", headers=env.h("alice"))
    a1 = env.client.post(f"/v1/plans/{pid}/approve", headers=env.h("fred", **{"Idempotency-Key": "a-1"}))
    a2 = env.client.post(f"/v1/plans/{pid}/approve", headers=env.h("fred", **{"Idempotency-Key": "a-1"}))
    assert a1.status_code == a2.status_code == 200 and a1.json() == a2.json()
    assert sum(e.action == "plan.approve" for e in env.audit(pid)) == 1


def test_huge_offsets_are_422_not_500(env: Env) -> None:
    """Found by tests/test_api_fuzz.py: an offset past 2**63 overflowed the database driver (500)."""
    for path in ("/v1/datasets", "/v1/plans", f"/v1/plans/{uuid.uuid4()}/audit"):
        r = env.client.get(f"{path}?offset={2**64}", headers=env.h("victor"))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text


def test_idempotency_keys_are_shared_by_replicas(db_url: str, estate: dict[str, Path]) -> None:
    """Two app instances on one database (two replicas): a retry on the other one replays, never reapplies."""
    apps = [create_app(Settings(database_url=db_url, job_workers=1, requeue_running=False)) for _ in range(2)]
    with TestClient(apps[0]) as c0, TestClient(apps[1]) as c1:
        with apps[0].state.sessions() as s:
            keys = {n: store.create_key(s, n, r)[1] for n, r in [("alice", "procurement"), ("fred", "finance"),
                                                                  ("victor", "viewer")]}
        a, b = (Env(c, app, app.state.sessions, keys, estate) for c, app in zip((c0, c1), apps, strict=True))
        r1 = a.upload("alice", "usage", estate["usage"], **{"Idempotency-Key": "u-1"})
        r2 = b.upload("alice", "usage", estate["usage"], **{"Idempotency-Key": "u-1"})
        assert r1.status_code == r2.status_code == 201 and r1.json() == r2.json()
        assert "idempotent-replayed" not in r1.headers and r2.headers["idempotent-replayed"] == "true"
        r3 = b.upload("alice", "prices", estate["prices"], **{"Idempotency-Key": "u-1"})
        assert r3.status_code == 422 and r3.headers["content-type"] == PROBLEM and "different request" in r3.text
        assert b.upload("victor", "usage", estate["usage"], **{"Idempotency-Key": "v-1"}).status_code == 403
        assert a.upload("victor", "usage", estate["usage"], **{"Idempotency-Key": "v-1"}).status_code == 403
        prices = a.upload("alice", "prices", estate["prices"]).json()["id"]
        body = {"name": "x", "usage_dataset": r1.json()["id"], "prices_dataset": prices}

        def create(env: Env) -> object:
            return env.client.post("/v1/plans", headers=env.h("alice", **{"Idempotency-Key": "p-1"}), json=body)

        out: list = []
        threads = [threading.Thread(target=lambda e=e: out.append(create(e))) for e in (a, b) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.status_code for r in out) == [202] * 8, [r.text for r in out]
        assert len({r.json()["id"] for r in out}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in out) == 7
        assert a.client.get("/v1/plans", headers=a.h("victor")).json()["total"] == 1
        pid = out[0].json()["id"]
        assert a.wait(pid)["status"] == "done"  # queued once, after its commit
        assert b.client.post(f"/v1/plans/{pid}/submit", headers=b.h("alice")).status_code == 200
        d1 = a.client.post(f"/v1/plans/{pid}/approve", headers=a.h("fred", **{"Idempotency-Key": "d-1"}))
        d2 = b.client.post(f"/v1/plans/{pid}/approve", headers=b.h("fred", **{"Idempotency-Key": "d-1"}))
        assert d1.status_code == d2.status_code == 200 and d1.json() == d2.json()
        assert d2.headers["idempotent-replayed"] == "true"
        assert sum(e.action == "plan.create" and e.outcome == "ok" for e in
                   a.audit(pid)) == 1 and sum(e.action == "plan.approve" for e in a.audit(pid)) == 1
        with a.sessions() as s:
            assert store.verify(s).ok
            assert s.scalar(select(func.count()).select_from(store.IdempotencyKey)) == 3  # refusals are not kept


def test_plans_left_running_are_requeued_on_startup(db_url: str, estate: dict[str, Path]) -> None:
    from api.jobs import WORKER

    sessions = store.connect(db_url)
    with sessions() as s:
        actor = store.Actor("alice", store.Role.PROCUREMENT)
        usage = store.add_dataset(s, actor, "usage", "u.csv", estate["usage"].read_bytes()).value
        prices = store.add_dataset(s, actor, "prices", "p.csv", estate["prices"].read_bytes()).value
        pid = store.create_plan(s, actor, "crashed", usage.id, prices.id).value.id
        assert store.claim_run(s, pid, WORKER).ok  # the process "dies" here
    sessions.kw["bind"].dispose()
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as client:
        with app.state.sessions() as s:
            token = store.create_key(s, "victor", "viewer")[1]
        env = Env(client, app, app.state.sessions, {"victor": token}, estate)
        assert env.wait(str(pid), "victor")["status"] == "done"
        assert [e.action for e in env.audit(str(pid))][-3:] == ["plan.requeue", "plan.start", "plan.finish"]


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
