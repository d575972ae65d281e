"""Every UI page under Streamlit's AppTest: a smoke run, an interaction driven by widget keys, real solves.

The pages run against a database of their own (the default SQLite file in a temporary data
directory, then a fresh PostgreSQL schema by ``COMMITPLAN_DATABASE_URL``) and a ledger of their own,
seeded through :mod:`ui.service` with a small generated estate, the sample bills and two API keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")
PAGES = {"data": "Data", "usage": "Usage & coverage", "plan": "Plan", "scenarios": "Scenarios",
         "approvals": "Approvals", "savings": "Savings", "allocation": "Allocation", "anomalies": "Anomalies"}

pytestmark = pytest.mark.xdist_group("ui_pages")  # one worker: the seeded environment is built once


@pytest.fixture(scope="module")
def env(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A data directory with a 4-pool × 30-day estate, the sample bills in the ledger, one solved draft plan,
    one submitted plan, and a procurement and a finance key."""
    import store
    from ui import ledger, service

    data = tmp_path_factory.mktemp("ui-pages")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMMITPLAN_DATA_DIR", str(data))
        for name in ("COMMITPLAN_DATABASE_URL", "COMMITPLAN_LEDGER", "COMMITPLAN_ALLOCATION_RULES"):
            mp.delenv(name, raising=False)
        if module_db_url.startswith("postgresql"):  # SQLite: the default file in the data directory
            mp.setenv("COMMITPLAN_DATABASE_URL", module_db_url)
        assert service.sessions().kw["bind"].dialect.name == module_db_url.split(":")[0].split("+")[0]
        with service.sessions()() as s:
            _, procurement = store.create_key(s, "pat", "procurement")
            _, finance = store.create_key(s, "fiona", "finance")
        pat = service.sign_in(procurement)
        usage, prices = service.use_sample(pat, pools=4, days=30, seed=1)
        ledger.ingest_sample()
        draft = service.create_and_solve(pat, "exact window", usage["id"], prices["id"])
        forecast = service.create_and_solve(pat, "forecast", usage["id"], prices["id"], horizon_months=1)
        service.submit(pat, forecast["id"])
        yield {"procurement": procurement, "finance": finance, "usage": usage["id"], "prices": prices["id"],
               "draft": draft["id"], "submitted": forecast["id"]}


def page(name: str, token: str | None = None) -> AppTest:
    """The app, run once on page ``name`` (signed in with ``token`` when given)."""
    at = AppTest.from_file(APP, default_timeout=120)
    if token:
        at.session_state["api_token"] = token
    at.run()
    if name != "data":
        at.switch_page(f"pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def clean(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders(env: dict, name: str) -> None:
    at = clean(page(name))
    assert [t.value for t in at.title] == [PAGES[name]]


def test_sign_in_with_a_key_and_a_wrong_one(env: dict) -> None:
    # AppTest drops the sidebar's elements after the first run of an st.navigation app, so the outcome
    # is read from the session (the browser test sees the sidebar's messages)
    at = page("data")
    at.text_input(key="sign_in_token").input("cp_000000000000_wrong")
    at.button(key="FormSubmitter:sign_in_form-Sign in").click().run()
    assert not at.exception and "api_token" not in at.session_state
    at = page("data")
    at.text_input(key="sign_in_token").input(env["finance"])
    at.button(key="FormSubmitter:sign_in_form-Sign in").click().run()
    clean(at)
    assert at.session_state["api_token"] == env["finance"]
    at.switch_page("pages/approvals.py").run()
    assert "Deciding as **fiona** (finance)" in at.caption[0].value


def test_data_generates_a_sample_and_shows_its_reconciliation(env: dict) -> None:
    from ui import service

    before = len(service.datasets())
    at = page("data", env["procurement"])
    at.number_input(key="data_sample_pools").set_value(3)
    at.number_input(key="data_sample_days").set_value(14)
    at.button(key="data_sample_small").click().run()
    clean(at)
    assert len(service.datasets()) == before + 2
    text = " ".join(m.value for m in at.markdown)
    assert "sample-3x14-seed1/usage.csv** (usage) stored as dataset" in text
    assert "by pat," in text  # stored as the signed-in key's actor


def test_usage_page_bills_the_usage_per_week(env: dict) -> None:
    at = page("usage")
    at.radio(key="usage_freq").set_value("W").run()
    clean(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Coverage"] == "0.0%"  # nothing held: all on demand
    assert labels["Cost"].startswith("$")


def test_plan_runs_a_real_small_solve_and_submits_it(env: dict) -> None:
    from ui import service

    at = page("plan", env["procurement"])
    at.selectbox(key="plan_usage").set_value(env["usage"])
    at.selectbox(key="plan_prices").set_value(env["prices"])
    at.number_input(key="plan_horizon").set_value(1)
    at.number_input(key="plan_upfront").set_value(500.0)
    at.text_input(key="plan_name").input("budgeted")
    at.button(key="plan_run").click().run()
    clean(at)
    labels = {m.label: m.value for m in at.metric}
    for figure in ("Expected savings", "Coverage", "Utilization", "Savings P10", "Savings P50", "Savings P90"):
        assert labels[figure].startswith(("$", "-$")) or labels[figure].endswith("%"), figure
    shown = service.plan(at.session_state["plan_pick"])
    assert shown["name"] == "budgeted" and shown["status"] == "done" and shown["created_by"] == "pat"
    assert shown["policy"]["upfront_budget"] == 500.0
    assert sum(p["upfront_cost"] for p in shown["result"]["purchases"]) <= 500.0 + 1e-6
    assert labels["Expected savings"] == f"${shown['result']['summary']['expected_savings']:,.2f}"
    at.button(key="plan_submit").click().run()
    clean(at)
    assert service.plan(shown["id"])["approval"] == "submitted"


def test_plan_limits_that_cannot_hold_fail_with_the_conflict(env: dict) -> None:
    at = page("plan")
    at.selectbox(key="plan_usage").set_value(env["usage"])
    at.selectbox(key="plan_prices").set_value(env["prices"])
    at.number_input(key="plan_horizon").set_value(0)
    at.slider(key="plan_coverage").set_value((0.95, 1.0))
    at.number_input(key="plan_util_floor").set_value(0.99)
    at.button(key="plan_run").click().run()
    assert not at.exception
    assert any("cannot all hold" in w.value for w in at.warning), [w.value for w in at.warning]


def test_scenarios_saves_a_whatif_refuses_a_bad_one_and_compares_plans(env: dict) -> None:
    at = page("scenarios", env["procurement"])
    at.selectbox(key="scenario_example").set_value("growth.yaml").run()
    at.button(key="scenario_save").click().run()
    clean(at)
    assert any("Saved scenario growth" in x.value for x in at.main.success)
    at.text_area(key="scenario_yaml_growth.yaml").input("overlays:\n  - kind: growth\n    factor: -2\n")
    at.button(key="scenario_save").click().run()
    assert at.error[0].value == "growth, row 2, column 'pools': growth needs 'pools'"  # the reader's own words
    at.multiselect(key="compare_plans").set_value([env["draft"], env["submitted"]]).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "figure" in d.value.columns).set_index("figure")
    assert len(table.columns) == 2  # the two plans, formatted as `commitplan compare` prints them
    assert table.loc["savings P50"].iloc[0] == "—" and table.loc["savings P50"].iloc[1].startswith("$")


def test_approvals_refuses_procurement_then_finance_approves(env: dict) -> None:
    from ui import service

    at = page("approvals", env["procurement"])
    at.selectbox(key="approvals_plan").set_value(env["submitted"])
    at.text_area(key="approvals_comment").input("fine")
    at.button(key="approvals_approve").click().run()
    assert "refused (forbidden)" in at.error[0].value
    at = page("approvals", env["finance"])
    at.selectbox(key="approvals_plan").set_value(env["submitted"])
    at.button(key="approvals_reject").click().run()
    assert "say why" in at.error[0].value  # a rejection needs a comment
    at.text_area(key="approvals_comment").input("within budget")
    at.button(key="approvals_approve").click().run()
    clean(at)
    assert service.plan(env["submitted"])["approval"] == "approved"
    trail = [(e["action"], e["actor"], e["outcome"]) for e in service.audit(env["submitted"])]
    assert trail[-3:] == [("plan.submit", "pat", "ok"), ("plan.approve", "pat", "refused"),
                          ("plan.approve", "fiona", "ok")]  # a rejection without a reason never reaches the store
    at.button(key="approvals_verify").click().run()
    assert any("The hash chain is intact" in x.value for x in at.main.success), [w.value for w in at.warning]


def test_savings_shows_the_commitments_that_saved_least(env: dict) -> None:
    at = page("savings")
    at.number_input(key="savings_rows").set_value(5).run()
    clean(at)
    assert len(at.dataframe[-1].value) == 5


def test_allocation_by_month_and_a_bad_rules_file(env: dict) -> None:
    at = page("allocation")
    at.text_input(key="alloc_month").input("2026-05").run()
    clean(at)
    assert {m.label: m.value for m in at.metric}["Unallocated share"].endswith("%")
    picked = at.selectbox(key="alloc_rules").value
    at.text_area(key=f"alloc_text_{picked}").input("owners: [oops").run()
    assert at.error and picked in at.error[0].value


def test_anomalies_thresholds_from_the_controls(env: dict) -> None:
    at = page("anomalies")
    assert len(at.dataframe[0].value) > 0
    at.number_input(key="anom_dollars").set_value(1e9).run()
    clean(at)
    assert any("No anomalies at these thresholds." in x.value for x in at.main.success)
