"""Plans for the future over HTTP: forecast from history, with what-if overlays stored as scenarios.

The plan the service stores must be the plan ``plan_for_history`` gives for the same inputs and the
same YAML (the CLI's ``plan --history --whatif``), and the overlays must change it.
"""

from __future__ import annotations

from pathlib import Path

from models.readers import read_price_book, read_usage
from solver.future_plan import plan_for_history
from tests.api_env import PROBLEM, Env

GROWTH = """overlays:
  - kind: growth
    pools: "*"
    factor: 1.6
"""


def _inputs(env: Env) -> tuple[str, str]:
    usage = env.upload("alice", "usage", env.files["usage"]).json()["id"]
    prices = env.upload("alice", "prices", env.files["prices"]).json()["id"]
    return usage, prices


def test_a_scenario_is_stored_checked_and_listed(env: Env) -> None:
    r = env.client.post("/v1/scenarios", headers=env.h("alice"), json={"name": "growth.yaml", "yaml": GROWTH})
    assert r.status_code == 201, r.text
    sc = r.json()
    assert sc["overlays"] == 1 and sc["yaml"] == GROWTH and r.headers["location"] == f"/v1/scenarios/{sc['id']}"
    listed = env.client.get("/v1/scenarios", headers=env.h("victor")).json()
    assert [x["id"] for x in listed["items"]] == [sc["id"]] and listed["items"][0]["yaml"] is None
    assert env.client.get(f"/v1/scenarios/{sc['id']}", headers=env.h("victor")).json()["yaml"] == GROWTH

    bad = env.client.post("/v1/scenarios", headers=env.h("alice"),
                          json={"name": "bad.yaml", "yaml": "overlays:\n  - kind: growth\n    pools: '*'\n    factor: -2\n"})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["file"] == "bad.yaml" and "factor" in bad.json()["detail"], bad.json()
    refused = env.client.post("/v1/scenarios", headers=env.h("victor"), json={"name": "v.yaml", "yaml": GROWTH})
    assert refused.status_code == 403
    assert env.client.get("/v1/scenarios", headers=env.h("victor")).json()["total"] == 1


def test_plan_with_a_scenario_equals_the_library_plan_for_the_same_yaml(env: Env, tmp_path: Path) -> None:
    usage, prices = _inputs(env)
    sc = env.client.post("/v1/scenarios", headers=env.h("alice"), json={"name": "growth.yaml", "yaml": GROWTH}).json()
    base = {"usage_dataset": usage, "prices_dataset": prices, "horizon_months": 2}
    with_whatif = env.client.post("/v1/plans", headers=env.h("alice"),
                                  json={"name": "growth", **base, "scenario": sc["id"]}).json()["id"]
    without = env.client.post("/v1/plans", headers=env.h("alice"), json={"name": "as is", **base}).json()["id"]
    done = env.wait(with_whatif, timeout=180)
    plain = env.wait(without, timeout=180)
    assert done["status"] == "done" and plain["status"] == "done", (done.get("error"), plain.get("error"))
    assert done["scenario"] == sc["id"] and plain["scenario"] is None

    whatif = tmp_path / "growth.yaml"
    whatif.write_text(GROWTH)
    book = read_price_book(env.files["prices"])
    expected = plan_for_history(read_usage(env.files["usage"], known_pools=set(book.on_demand)), book, 2,
                                whatif=whatif).model_dump(mode="json")

    def bought(plan: dict) -> dict[tuple[str, str], float]:
        return {(p["offering"], p["start"]): p["quantity"] for p in plan["purchases"]}

    assert bought(done["result"]) == bought(expected)
    assert done["result"]["summary"]["expected_cost"] == expected["summary"]["expected_cost"]
    # 60 % more usage everywhere: more is bought and more is spent than without the overlay
    assert sum(bought(done["result"]).values()) > sum(bought(plain["result"]).values())
    assert done["result"]["summary"]["expected_cost"] > plain["result"]["summary"]["expected_cost"]


def test_a_scenario_needs_a_horizon_and_must_exist(env: Env) -> None:
    usage, prices = _inputs(env)
    sc = env.client.post("/v1/scenarios", headers=env.h("alice"), json={"name": "g.yaml", "yaml": GROWTH}).json()
    no_horizon = env.client.post("/v1/plans", headers=env.h("alice"), json={
        "name": "x", "usage_dataset": usage, "prices_dataset": prices, "scenario": sc["id"]})
    assert no_horizon.status_code == 422 and "horizon_months" in no_horizon.json()["detail"]
    missing = env.client.post("/v1/plans", headers=env.h("alice"), json={
        "name": "x", "usage_dataset": usage, "prices_dataset": prices, "horizon_months": 1,
        "scenario": "00000000-0000-4000-8000-000000000000"})
    assert missing.status_code == 404 and "no such scenario" in missing.json()["detail"]
