"""``commitplan savings``, ``allocate`` and ``anomalies`` end to end: a bill ingested by the CLI,
each command's --json checked against the module it fronts and against the bill itself."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.test_anomalies import HEADER, _row
from tests.test_ingest import FOCUS_SAMPLE, column_sum, rows_of

runner = CliRunner()
FOCUS12_AWS = Path(__file__).parent / "data" / "focus12" / "focus12_aws.csv"
RULES = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "allocation" / "rules.yaml"


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def ledger_of(tmp_path: Path, bill: Path) -> Path:
    ledger = tmp_path / "l.duckdb"
    run("ingest", str(bill), "--ledger", str(ledger))
    return ledger


def test_savings_json_is_the_modules_figures(tmp_path):
    from billing.savings import commitment_savings, monthly_savings

    ledger = ledger_of(tmp_path, FOCUS12_AWS)
    body = json.loads(run("savings", "--ledger", str(ledger), "--json"))
    assert body["months"] == [m.to_json() for m in monthly_savings(ledger)]
    assert len(body["commitments"]) == len(commitment_savings(ledger)) > 80
    (month,) = body["months"]
    usage = [r for r in rows_of(FOCUS12_AWS) if r["ChargeCategory"] == "Usage" and r["CommitmentDiscountStatus"] != "Unused"]
    assert month["on_demand_equivalent"] == pytest.approx(float(column_sum(usage, "ListCost")), abs=1e-6)
    assert "Savings by month" in run("savings", "--ledger", str(ledger))


def test_allocate_json_foots_to_the_ledger(tmp_path):
    ledger = ledger_of(tmp_path, FOCUS_SAMPLE)
    body = json.loads(run("allocate", "--ledger", str(ledger), "--rules", str(RULES), "--json"))
    total = round(column_sum(rows_of(FOCUS_SAMPLE), "EffectiveCost"), 2)
    assert Decimal(str(body["ledger_total"])) == total
    cents = sum(Decimal(str(o["total"])) for o in body["owners"]) + Decimal(str(body["unallocated"]["total"]))
    assert cents == total
    bad = runner.invoke(app, ["allocate", "--ledger", str(ledger), "--rules", str(FOCUS_SAMPLE)])
    assert bad.exit_code == 2 and "error" in bad.output


def test_anomalies_json_lists_the_spike_from_its_first_day(tmp_path):
    lines = [HEADER]
    for d in range(60):
        day = dt.datetime(2024, 3, 1) + dt.timedelta(days=d)
        cost = 1000.0 + (800.0 if d == 50 else 0.0)
        lines.append(_row(cost, day, day + dt.timedelta(days=1), "us-east-1", "EC2", "111", "shop", {"team": "a"}))
    bill = tmp_path / "bill.csv"
    bill.write_text("".join(lines))
    ledger = ledger_of(tmp_path, bill)
    found = json.loads(run("anomalies", "--ledger", str(ledger), "--json"))
    assert found and {a["date"] for a in found} == {"2024-04-20"}
    assert all({"date", "amount", "dimension", "value"} <= set(a) for a in found)
    total = [a for a in found if a["dimension"] == "total"][0]
    assert total["amount"] == pytest.approx(1800.0) and total["likely_owner"] == "a"
    assert json.loads(run("anomalies", "--ledger", str(ledger), "--json", "--threshold-dollars", "1000")) == []
    assert "2024-04-20" in run("anomalies", "--ledger", str(ledger))


def test_pipeline_commands_walk_an_item_to_verified(tmp_path):
    from tests.test_savings import _small

    ledger, plan, bill = _small(tmp_path)
    items = json.loads(run("pipeline", "add", "--ledger", str(ledger), "--plan", str(plan), "--json"))
    assert [i["stage"] for i in items] == ["opportunity", "opportunity"]
    refused = runner.invoke(app, ["pipeline", "purchased", "--ledger", str(ledger), "1", "--commitment", "x"])
    assert refused.exit_code == 2 and "accept it first" in refused.output
    run("pipeline", "accept", "--ledger", str(ledger), "1")
    run("pipeline", "purchased", "--ledger", str(ledger), "1", "--commitment", bill.commitment_ids[0])
    checks = json.loads(run("pipeline", "verify", "--ledger", str(ledger), "--json"))
    assert [(c["item_id"], c["stage"], c["days_in_a_row"]) for c in checks] == [(1, "verified", 14)]
    listed = json.loads(run("pipeline", "list", "--ledger", str(ledger), "--json"))
    assert [i["stage"] for i in listed] == ["verified", "opportunity"]
