"""End to end from a billing export: ingest → pools → price catalog → plan → hour-by-hour bill.

The GCP sample's N2 cores run 8, 10, 12, 8, 10, 12 per hour; a 3-year CUD costs 0.014225 against
0.031611 on demand, so the single-pool optimum is the newsvendor quantile: the most cores used in
at least 0.45 of the hours, 10 (four hours of six use 10 or more, two use 12)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.test_ingest import DATA, GCP_SAMPLE

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_gcp_export_to_a_plan_the_bill_confirms(tmp_path: Path):
    ledger, usage, book, plan = (tmp_path / n for n in ("l.duckdb", "usage.csv", "book.csv", "plan.json"))
    run("ingest", str(GCP_SAMPLE), "--ledger", str(ledger))
    run("pools", "--ledger", str(ledger), "--out", str(usage))
    run("prices", "import", str(DATA / "gcp-pricing" / "pricing.yml"), "--out", str(book))
    run("plan", "--usage", str(usage), "--prices", str(book), "--out", str(plan))
    purchases = {p["offering"]: p["quantity"] for p in json.loads(plan.read_text())["purchases"]}

    cores = np.array([8, 10, 12, 8, 10, 12])
    on_demand, cud = 0.031611, 0.014225
    ratio = cud / on_demand
    newsvendor = max(q for q in range(0, 13) if (cores >= q).mean() >= ratio)
    assert purchases["gcp-cud-n2-us-central1-vcpu-3y"] == newsvendor == 10

    summary = json.loads(plan.read_text())["summary"]
    billed = json.loads(run("bill", "--usage", str(usage), "--prices", str(book), "--plan", str(plan), "--json"))
    assert billed["total_cost"] == pytest.approx(summary["expected_cost"], abs=1e-9)
