"""The HTTP service's robustness: problem+json for every error, request validation, upload limits,
idempotency (one replica and two), huge offsets, plans re-queued after a crash."""

from __future__ import annotations

import gzip
import threading
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

import store
from api.app import create_app
from api.settings import Settings
from tests.api_env import PROBLEM, Env


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
